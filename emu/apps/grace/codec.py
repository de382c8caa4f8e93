"""Real bytes for the neural codec: latents -> independently decodable packets -> latents (zero-filled).

Packetisation (apps.md §3.2 [DESIGN]; GRACE's released code has no reversible mapping):

1. The frame's integer latent y_hat (M x h x w) is flattened into n elements.
2. A permutation pi of 0..n-1 is drawn from a PCG64 generator seeded by (session seed, frame id): the receiver
   knows both, so the mapping is reversible without side information.
3. Packet j of K carries the elements pi[j*n//K : (j+1)*n//K], arithmetic-coded on its own (a fresh range coder
   per packet, ``constriction.stream.queue.RangeEncoder``) with the factorised prior's integer tables of each
   element's channel: the entropy model depends on nothing else, so any packet decodes without the others.
4. The receiver decodes the packets it has, inverts pi for their elements and zero-fills the rest (zero is the
   mode of every learned density and what training dropped to). Any non-empty subset decodes; the empty set
   decodes too (to "no correction": the codec's output for an all-zero latent).

K is the smallest count whose packets all fit ``payload_bytes``, starting from the entropy estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from emu.apps.grace.net import GraceCodec

MAX_PACKETS = 255


def permutation(session_seed: int, frame_id: int, n: int) -> np.ndarray:
    """The seeded, reversible element -> packet order of frame ``frame_id``."""
    seq = np.random.SeedSequence(entropy=int(session_seed), spawn_key=(int(frame_id),))
    return np.random.Generator(np.random.PCG64(seq)).permutation(n)


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (1, 3, H, W) -> uint8 (H, W, 3), rounded and clamped."""
    return x[0].clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).contiguous().numpy()


@dataclass
class EncodedFrame:
    """One P-frame as packets: ``packets[j]`` are the bytes of packet j; ``symbols`` the full integer latent."""

    frame_id: int
    q: int
    packets: list[bytes]
    symbols: np.ndarray             # int32 (M, h, w)
    est_bits: float

    @property
    def n_packets(self) -> int:
        return len(self.packets)

    @property
    def size_bytes(self) -> int:
        return sum(len(p) for p in self.packets)


class NeuralCodec:
    """Inference wrapper: ``encode`` a frame against a reference into packets; ``decode`` any subset."""

    def __init__(self, model: GraceCodec, session_seed: int = 0, use_mask: bool = True) -> None:
        import constriction

        self.use_mask = use_mask    # pass the loss mask to the decoder (False: decode as if all arrived)
        model.check_tables()
        self.model = model.eval()
        self.config = model.config
        self.session_seed = int(session_seed)
        freq = model.freq.numpy().astype(np.float64)
        self._probs = freq / float(1 << self.config.cdf_bits)            # (Q, M, A): exact dyadic values
        self._logp = -np.log2(self._probs)
        # One fixed model per (rate point, channel), built once from the integer tables.
        self._models = [[constriction.stream.model.Categorical(self._probs[q, c], perfect=False)
                         for c in range(self._probs.shape[1])] for q in range(self._probs.shape[0])]
        self._constriction = constriction
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}

    # -- transforms ---------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def latent(self, frame: np.ndarray, ref: torch.Tensor, q: int) -> np.ndarray:
        """The integer latent (int32, M x h x w) of ``frame`` (uint8 H x W x 3) against ``ref``."""
        r = self.config.symbol_range
        y = self.model.analyse(to_tensor(frame), ref, q)
        return torch.round(y).clamp_(-r, r)[0].to(torch.int32).numpy()

    @torch.inference_mode()
    def reconstruct(self, symbols: np.ndarray, ref: torch.Tensor, q: int,
                    mask: np.ndarray | None = None) -> torch.Tensor:
        """Decoded frame (1, 3, H, W), clamped to [0, 1], from a (zero-filled) integer latent and its element
        mask (bool, True = received; None = all)."""
        y = torch.from_numpy(np.ascontiguousarray(symbols, dtype=np.float32)).unsqueeze(0)
        m = None
        if mask is not None and self.use_mask and not mask.all():
            m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).unsqueeze(0)
        return self.model.synthesise(y, ref, q, m).clamp_(0.0, 1.0)

    def estimate_bits(self, symbols: np.ndarray, q: int) -> float:
        r = self.config.symbol_range
        m = symbols.shape[0]
        flat = symbols.reshape(m, -1) + r
        return float(self._logp[q][np.arange(m)[:, None], flat].sum())

    # -- packets ------------------------------------------------------------------------------------------------

    def _perm(self, frame_id: int, n: int) -> np.ndarray:
        key = (frame_id, n)
        perm = self._perm_cache.get(key)
        if perm is None:
            if len(self._perm_cache) > 512:
                self._perm_cache.clear()
            perm = self._perm_cache[key] = permutation(self.session_seed, frame_id, n)
        return perm

    @staticmethod
    def _slices(n: int, k: int) -> list[tuple[int, int]]:
        return [(j * n // k, (j + 1) * n // k) for j in range(k)]

    @staticmethod
    def _by_channel(elements: np.ndarray, plane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A packet's elements grouped by channel (stable order): (elements, channels, group starts)."""
        channels = elements // plane
        order = np.argsort(channels, kind="stable")
        elements, channels = elements[order], channels[order]
        starts = np.flatnonzero(np.r_[True, channels[1:] != channels[:-1]]) if len(channels) else np.zeros(0, int)
        return elements, channels, starts

    def code_packets(self, symbols: np.ndarray, q: int, frame_id: int, k: int) -> list[bytes]:
        """Code ``symbols`` into exactly ``k`` independently decodable packets."""
        r = self.config.symbol_range
        flat = symbols.reshape(-1)
        n = flat.size
        plane = n // symbols.shape[0]
        perm = self._perm(frame_id, n)
        models = self._models[q]
        out = []
        for lo, hi in self._slices(n, k):
            elements, channels, starts = self._by_channel(perm[lo:hi], plane)
            values = (flat[elements] + r).astype(np.int32)
            bounds = list(starts) + [len(elements)]
            enc = self._constriction.stream.queue.RangeEncoder()
            for a, b in zip(bounds[:-1], bounds[1:]):
                enc.encode(values[a:b], models[channels[a]])
            out.append(enc.get_compressed().tobytes())
        return out

    def packetise(self, symbols: np.ndarray, q: int, frame_id: int, payload_bytes: int,
                  min_packets: int = 1) -> EncodedFrame:
        """Packets of at most ``payload_bytes`` each (K from the entropy estimate, grown until all fit)."""
        est = self.estimate_bits(symbols, q)
        k = max(min_packets, math.ceil(est / 8.0 * 1.03 / payload_bytes))
        while True:
            packets = self.code_packets(symbols, q, frame_id, k)
            if max(len(p) for p in packets) <= payload_bytes or k >= MAX_PACKETS:
                return EncodedFrame(frame_id, q, packets, symbols, est)
            k += max(1, k // 8)

    def depacketise(self, received: dict[int, bytes], k: int, q: int, frame_id: int,
                    shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Symbols (zero-filled) and the element mask (bool, True = received) from packets ``received``
        (index -> bytes) of a K-packet frame."""
        r = self.config.symbol_range
        n = int(np.prod(shape))
        plane = n // shape[0]
        perm = self._perm(frame_id, n)
        flat = np.zeros(n, dtype=np.int32)
        mask = np.zeros(n, dtype=bool)
        slices = self._slices(n, k)
        models = self._models[q]
        for j, data in received.items():
            if not 0 <= j < k:
                raise ValueError(f"packet index {j} out of range for a {k}-packet frame")
            lo, hi = slices[j]
            elements, channels, starts = self._by_channel(perm[lo:hi], plane)
            bounds = list(starts) + [len(elements)]
            dec = self._constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32))
            for a, b in zip(bounds[:-1], bounds[1:]):
                flat[elements[a:b]] = dec.decode(models[channels[a]], b - a) - r
            mask[elements] = True
        return flat.reshape(shape), mask.reshape(shape)

    def mask_symbols(self, symbols: np.ndarray, k: int, frame_id: int,
                     got: set[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """What the receiver decodes when it got packets ``got`` (None: all): zero-filled symbols and the element
        mask, without entropy decoding (the sender follows the receiver's state from its reports)."""
        if got is None or len(got) == k:
            return symbols, np.ones(symbols.shape, dtype=bool)
        flat = symbols.reshape(-1)
        n = flat.size
        perm = self._perm(frame_id, n)
        out = np.zeros(n, dtype=np.int32)
        mask = np.zeros(n, dtype=bool)
        for j in got:
            lo, hi = self._slices(n, k)[j]
            out[perm[lo:hi]] = flat[perm[lo:hi]]
            mask[perm[lo:hi]] = True
        return out.reshape(symbols.shape), mask.reshape(symbols.shape)


# -- model-card metrics ---------------------------------------------------------------------------------------------


def card_metrics(model: GraceCodec, clip_name: str = "carphone", n_frames: int = 40, use_mask: bool = True) -> dict:
    """Held-out quality per rate point (P-frame chain from the true first frame, no loss) and single-frame
    decodes with i.i.d. element drops 0 / 20 / 50 % (reference = previous true frame), plus CPU timings."""
    import time

    from emu.apps.grace.data import load_clip
    from emu.apps.grace.metrics import psnr, ssim

    clip = load_clip(clip_name, max_frames=n_frames)
    codec = NeuralCodec(model, use_mask=use_mask)
    frames = clip.frames
    pixels = frames.shape[1] * frames.shape[2]
    out: dict = {"clip": clip_name, "frames": len(frames), "fps": clip.fps, "rate_points": []}
    gen = np.random.Generator(np.random.PCG64(12345))
    t_enc = t_dec = 0.0
    n_t = 0
    for q in range(model.config.n_rates):
        ref = to_tensor(frames[0])
        bits, ps, ss = [], [], []
        for t in range(1, len(frames)):
            t0 = time.perf_counter()
            sym = codec.latent(frames[t], ref, q)
            enc = codec.packetise(sym, q, t, 200)
            t1 = time.perf_counter()
            got, _ = codec.depacketise(dict(enumerate(enc.packets)), enc.n_packets, q, t, sym.shape)
            rec = codec.reconstruct(got, ref, q)
            t2 = time.perf_counter()
            t_enc += t1 - t0
            t_dec += t2 - t1
            n_t += 1
            if not np.array_equal(got, sym):
                raise AssertionError("entropy round trip is not exact")
            bits.append(enc.size_bytes * 8)
            img = to_uint8(rec)
            ps.append(psnr(img, frames[t]))
            ss.append(ssim(img, frames[t]))
            ref = rec
        drops = {}
        for p in (0.0, 0.2, 0.5):
            vals = []
            for t in range(1, len(frames)):
                ref = to_tensor(frames[t - 1])
                sym = codec.latent(frames[t], ref, q)
                keep = gen.random(sym.shape) >= p
                vals.append(ssim(to_uint8(codec.reconstruct(sym * keep, ref, q, keep)), frames[t]))
            drops[f"{p:.1f}"] = round(float(-10 * np.log10(1 - np.mean(vals))), 3)
        out["rate_points"].append({
            "q": q, "lambda": model.config.lambdas[q],
            "bpp": round(float(np.mean(bits)) / pixels, 4),
            "kbps": round(float(np.mean(bits)) * clip.fps / 1000, 1),
            "psnr_db": round(float(np.mean(ps)), 3),
            "ssim_db": round(float(-10 * np.log10(1 - np.mean(ss))), 3),
            "ssim_db_single_frame_by_drop": drops,
        })
    out["timing_ms"] = {"encode": round(1000 * t_enc / n_t, 2), "decode": round(1000 * t_dec / n_t, 2),
                        "threads": torch.get_num_threads()}
    out["h265_timing_ms"] = h265_timing_ms(frames, clip.fps)
    out["golden_packets_sha256"] = golden_packets_sha256(codec)
    return out


def golden_symbols(config) -> np.ndarray:
    """A fixed integer latent (seeded Laplace draws) for the coder's golden-bytes test."""
    rng = np.random.Generator(np.random.PCG64(2024))
    r = config.symbol_range
    return np.clip(np.round(rng.laplace(0, 0.7, size=(config.latent, 16, 16))), -r, r).astype(np.int32)


def golden_packets_sha256(codec: NeuralCodec) -> str:
    """sha256 of the 4 packets coding ``golden_symbols`` at rate point 1 as frame 5: integers in, bytes out, so
    the same on every platform (pinned in the model card and checked by the tests)."""
    import hashlib

    packets = codec.code_packets(golden_symbols(codec.config), 1, frame_id=5, k=4)
    return hashlib.sha256(b"".join(packets)).hexdigest()


def h265_timing_ms(frames: np.ndarray, fps: float, bitrate_bps: float = 200e3) -> dict:
    """Per-frame x265 encode and HEVC decode times through PyAV (ms), same frames."""
    import time

    from emu.apps.grace.h265 import HevcDecoder, X265Encoder

    enc = X265Encoder(frames.shape[2], frames.shape[1], fps, bitrate_bps)
    dec = HevcDecoder()
    t_enc = t_dec = 0.0
    for f in frames:
        t0 = time.perf_counter()
        data, _ = enc.encode(f)
        t1 = time.perf_counter()
        dec.decode(data)
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
    return {"encode": round(1000 * t_enc / len(frames), 2), "decode": round(1000 * t_dec / len(frames), 2)}
