"""Evaluate Grace++ against its baselines on identical conditions (``emu eval grace``).

Network: host ``tx`` -> host ``rx``, one link each way with half the base RTT of propagation delay. The forward
link runs at ``link_rate_bps`` (2 Mbit/s, ten times the video) or follows a capacity ``trace`` (Mahimahi or
throughput log), has a 1000-packet DropTail queue and i.i.d. (Bernoulli) packet loss ``loss``; the reverse link
(control messages, transport feedback) is loss-free. Every scheme streams the same clip at the same target bitrate
through the same controller with the same seed (each scheme is its own run).

Default clip: the held-out ``carphone`` (never trained on), 128 x 128 at 29.97 fps, first ``max_frames`` frames.
Metrics (quality, delay, non-rendered, stall) cover the frames captured from ``warmup_s`` (2 s) on: before that,
every scheme is delivering its first key frame (about 25 packets at 200 bytes) and catching up after it; the
time to the first rendered frame is reported as ``startup_s``. ``kbps`` covers the whole session.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from emu.apps.grace.app import FEC_REDUNDANCY, SCHEMES, ComputeTimes, SessionConfig

PACING_GAIN = 2.5   # WebRTC's pacer runs at 2.5 x the target bitrate (kDefaultPaceMultiplier)
SUMMARY_KEYS = ("ssim_db", "frame_delay_p95_s", "non_rendered_frac", "stall_s", "kbps")


@dataclass(frozen=True, kw_only=True)
class GraceEvalConfig:
    video: str | None = None        # a video file; None: the held-out carphone clip
    max_frames: int = 120
    loss: float = 0.0                  # i.i.d. packet loss on the forward link, [0, 0.9]
    trace: str | None = None        # forward capacity trace; None: constant link_rate_bps
    rtt_s: float = 0.100
    link_rate_bps: float = 2e6
    bitrate_bps: float = 200e3         # target video bitrate (the controller's maximum), IP headers included
    payload_bytes: int = 200           # media bytes per packet (see docs/grace.md: 128 px frames)
    header_bytes: int = 40             # IPv4 20 + UDP 8 + RTP 12
    decode_deadline_s: float = 0.4     # Grace: decode a frame by capture + this at the latest
    give_up_s: float = 1.0             # H.265: abandon a frame not decodable by capture + this
    warmup_s: float = 2.0              # metrics cover frames captured from here on (start-up: first key frame)
    models_dir: str | None = None   # default: models/grace in the checkout

    def __post_init__(self) -> None:
        def number(name: str, lo: float, hi: float, lo_open: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v > hi or v < lo \
                    or (lo_open and v == lo):
                bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
                raise ValueError(f"{name}: must be in {bound}, got {v!r}")

        number("loss", 0.0, 0.9)
        number("rtt_s", 0.0, 5.0, lo_open=True)
        number("link_rate_bps", 10e3, 10e9)
        number("bitrate_bps", 20e3, 20e6)
        number("decode_deadline_s", 0.0, 10.0, lo_open=True)
        number("give_up_s", 0.0, 60.0, lo_open=True)
        number("warmup_s", 0.0, 60.0)
        for name, lo, hi in (("max_frames", 2, 100_000), ("payload_bytes", 32, 1400), ("header_bytes", 0, 200)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name}: must be an integer in [{lo}, {hi}], got {v!r}")
        for name in ("video", "trace"):
            v = getattr(self, name)
            if v is not None and not Path(v).is_file():
                raise FileNotFoundError(f"{name}: {v} is not a file")


@dataclass
class SchemeRun:
    """One scheme's run: per-frame arrays and the summary."""

    scheme: str
    capture_s: np.ndarray
    rendered_s: np.ndarray
    ssim: np.ndarray                 # per frame, NaN where not rendered
    summary: dict


def check_inputs(config: GraceEvalConfig, schemes: tuple[str, ...] = SCHEMES) -> None:
    """Everything a user can get wrong, checked before any work: scheme names, trace, video, weights."""
    bad = [s for s in schemes if s not in SCHEMES]
    if bad:
        raise ValueError(f"scheme: unknown {', '.join(bad)}; valid: {', '.join(SCHEMES)}")
    if config.trace is not None:
        from emu.links.tracefile import load_trace

        load_trace(config.trace)
    if config.video is not None:
        from emu.apps.grace.data import check_video

        check_video(config.video)
    from emu.apps.grace.weights import check_weights, read_card

    for name in ("grace", "grace_nomask"):
        if name in schemes:
            models_dir = Path(config.models_dir) if config.models_dir else None
            read_card(name, models_dir)
            check_weights(name, models_dir)


def compute_times(card: dict | None) -> ComputeTimes:
    """Codec compute times from a model card's measured ``timing_ms`` (defaults where absent)."""
    t = ComputeTimes()
    if not card:
        return t
    timing = (card.get("metrics") or {}).get("timing_ms") or {}
    h265 = (card.get("metrics") or {}).get("h265_timing_ms") or {}
    return ComputeTimes(
        grace_encode_s=timing.get("encode", t.grace_encode_s * 1000) / 1000,
        grace_decode_s=timing.get("decode", t.grace_decode_s * 1000) / 1000,
        h265_encode_s=h265.get("encode", t.h265_encode_s * 1000) / 1000,
        h265_decode_s=h265.get("decode", t.h265_decode_s * 1000) / 1000,
    )


class Evaluator:
    """Loads the clip and the codecs once; ``run(scheme)`` streams the clip with one scheme."""

    def __init__(self, config: GraceEvalConfig, seed: int = 0, schemes: tuple[str, ...] = SCHEMES) -> None:
        from emu.apps.grace.data import load_clip, load_video

        check_inputs(config, schemes)
        self.config = config
        self.seed = seed
        if config.video is None:
            self.clip = load_clip("carphone", max_frames=config.max_frames)
        else:
            self.clip = load_video(config.video, max_frames=config.max_frames)
        if len(self.clip) < 2:
            raise ValueError(f"video: {config.video} has fewer than 2 frames")
        self.models: dict[str, Any] = {}
        card = None
        models_dir = Path(config.models_dir) if config.models_dir else None
        if any(s.startswith("grace") for s in schemes):
            from emu.apps.grace.weights import load_model, read_card

            for name in ("grace", "grace_nomask"):
                if name in schemes:
                    self.models[name] = load_model(name, models_dir)
            card = read_card("grace" if "grace" in schemes else "grace_nomask", models_dir)
        self.times = compute_times(card)
        self.session = SessionConfig(
            fps=self.clip.fps, n_frames=len(self.clip), bitrate_bps=config.bitrate_bps,
            payload_bytes=config.payload_bytes, header_bytes=config.header_bytes, rtt_s=config.rtt_s,
            decode_deadline_s=config.decode_deadline_s, give_up_s=config.give_up_s, times=self.times,
            session_seed=seed)
        self._intra = None

    def _intra_frame(self):
        if self._intra is None:
            from emu.apps.grace.app import intra_frame

            self._intra = intra_frame(self.clip.frames[0], self.clip.fps, self.config.bitrate_bps)
        return self._intra

    def run(self, scheme: str) -> SchemeRun:
        import torch

        from emu.apps.grace import app
        from emu.links.impairments import BernoulliLossConfig
        from emu.net import Network
        from emu.sim import Sim

        if scheme not in SCHEMES:
            raise ValueError(f"scheme: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")
        cfg = self.config
        session = self.session
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            sim = Sim(seed=self.seed)
            net = Network(sim)
            tx, rx = net.host("tx"), net.host("rx")
            loss = BernoulliLossConfig(p=cfg.loss) if cfg.loss > 0 else None
            if cfg.trace is not None:
                net.link(tx, rx, trace=cfg.trace, reverse_rate=cfg.link_rate_bps, delay=cfg.rtt_s / 2, loss=loss)
            else:
                net.link(tx, rx, rate=cfg.link_rate_bps, delay=cfg.rtt_s / 2, loss=loss)
            controller = app.RandomLossRtc(mss_bytes=cfg.payload_bytes, start_rate_bps=cfg.bitrate_bps,
                                           max_rate_bps=cfg.bitrate_bps,
                                           min_rate_bps=min(50e3, cfg.bitrate_bps), l4s=False,
                                           pacing_gain=PACING_GAIN)
            frames = self.clip.frames
            extra: dict = {}
            if scheme.startswith("grace"):
                from emu.apps.grace.codec import NeuralCodec

                codec = NeuralCodec(self.models[scheme], session_seed=self.seed)
                cache = app.DecodeCache()
                sender = app.GraceSender(sim, tx, "rx", session, frames, controller, codec=codec, cache=cache,
                                         intra=self._intra_frame())
                receiver = app.GraceReceiver(sim, rx, "tx", session, codec=codec, cache=cache)
            else:
                red = FEC_REDUNDANCY.get(scheme, 0.0)
                retx = scheme == "h265_retx"
                sender = app.H265Sender(sim, tx, "rx", session, frames, controller, redundancy=red,
                                        retransmit=retx)
                receiver = app.H265Receiver(sim, rx, "tx", session, fec=red > 0, retransmit=retx)
            duration_s = len(frames) / session.fps
            sim.run(until_s=duration_s + max(cfg.give_up_s, cfg.decode_deadline_s) + 2 * cfg.rtt_s + 1.0)
        finally:
            torch.set_num_threads(threads)
        if scheme.startswith("grace"):
            extra = {"resync_decodes": int(sender.resync_decodes),
                     "rate_point_mean": float(np.mean(sender.rate_points[1:])),
                     "packets_per_frame": float(np.mean(receiver.packets_sent[1:])),
                     "packets_used_frac": float(np.sum(receiver.packets_used[1:]) /
                                                max(1, np.sum(receiver.packets_sent[1:])))}
        else:
            extra = {"idr_frames": len(sender.idr_frames), "retransmissions": int(sender.retransmissions),
                     "plis": int(receiver.plis_sent),
                     "frames_recovered_by_fec": int(receiver.frames_recovered_by_fec)}
        return self._summarise(scheme, sender, receiver, duration_s, extra)

    def _summarise(self, scheme: str, sender, receiver, duration_s: float, extra: dict) -> SchemeRun:
        from emu.apps.grace.metrics import (
            ms_ssim_batch,
            playback,
            psnr_batch,
            ssim_batch,
            ssim_to_db,
        )

        frames = self.clip.frames
        n = len(frames)
        fps = self.session.fps
        capture = np.arange(n) / fps
        rendered = receiver.rendered_s.copy()
        # Measured window: frames captured from warmup_s on (the first key frame and the decoder's catch-up
        # after it are a start-up transient in every scheme; its length is reported as startup_s).
        w0 = min(n - 1, int(math.ceil(self.config.warmup_s * fps - 1e-9)))
        window = np.arange(w0, n)
        shown = [f for f in sorted(receiver.images) if f >= w0]
        ssim = np.full(n, np.nan)
        if shown:
            imgs = np.stack([receiver.images[f] for f in shown])
            ref = frames[shown]
            s = ssim_batch(imgs, ref)
            ssim[shown] = s
            ms = ms_ssim_batch(imgs, ref)
            ps = psnr_batch(imgs, ref)
        else:
            s = ms = ps = np.array([np.nan])
        # What the viewer sees in every frame slot: the newest frame rendered so far (by frame order).
        disp_idx = np.full(n, -1)
        last = -1
        for f in range(n):
            if not np.isnan(rendered[f]):
                last = f
            disp_idx[f] = last
        valid = disp_idx[window] >= 0
        disp_ssim = ssim_batch(np.stack([receiver.images[i] for i in disp_idx[window][valid]]),
                               frames[window][valid]) if valid.any() else np.array([0.0])
        pb = playback(capture[window], rendered[window], end_s=capture[-1] + 1.0 / fps, frame_interval_s=1.0 / fps)
        first = np.nanmin(rendered) if not np.all(np.isnan(rendered)) else float("nan")
        sent_bytes = sender.rtc.sock.sent_bytes
        sent_pkts = sender.rtc.sent_pkts
        summary = {
            "ssim_db": ssim_to_db(float(np.nanmean(s))) if shown else float("nan"),
            "ms_ssim": float(np.mean(ms)) if shown else float("nan"),
            "psnr_db": float(np.mean(ps)) if shown else float("nan"),
            "ssim_db_displayed": ssim_to_db(float(np.mean(disp_ssim))),
            "startup_s": float(first - capture[0]),
            "frame_delay_p50_s": pb.frame_delay_p50_s,
            "frame_delay_p95_s": pb.frame_delay_p95_s,
            "frame_delay_mean_s": pb.frame_delay_mean_s,
            "non_rendered_frac": pb.non_rendered_frac,
            "stall_s": pb.stall_s,
            "stall_count": pb.stall_count,
            "kbps": sent_bytes * 8 / duration_s / 1000,
            "payload_kbps": float(np.sum(sender.frame_bytes)) * 8 / duration_s / 1000,
            "packet_loss": 1.0 - receiver.rtc.rx_pkts / max(1, sent_pkts),
            "frames": n,
            "measured_frames": len(window),
        }
        summary.update(extra)
        return SchemeRun(scheme, capture, rendered, ssim, summary)


def evaluate(config: GraceEvalConfig | None = None, seed: int = 0, schemes: tuple[str, ...] = SCHEMES,
             **overrides: Any) -> dict[str, dict]:
    """Run every scheme on the same conditions; return ``{scheme: summary}`` (see ``SUMMARY_KEYS``)."""
    if config is None:
        config = GraceEvalConfig(**overrides)
    elif overrides:
        config = replace(config, **overrides)
    ev = Evaluator(config, seed=seed, schemes=schemes)
    return {scheme: ev.run(scheme).summary for scheme in schemes}
