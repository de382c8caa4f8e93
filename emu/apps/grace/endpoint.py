"""The Grace++ endpoint: one video call (a sender host streaming a clip to a receiver host) with one scheme.

``install(net, "grace", src=SENDER, dst=RECEIVER, scheme="grace", video=None, bitrate_bps=200e3)`` puts one call
on any network. It captures the clip's frames from ``start_s`` at the clip's rate, encodes and sends them with the
scheme's sender and decodes them at the receiver (``app.py``), on flows ``<name>`` (media), ``<name>.fb``
(transport feedback) and ``<name>.ctrl`` (NACK, PLI, Grace's packet reports). The call is ``done`` at ``end_s``:
the last frame's capture plus its decode deadline and a margin (two round trips and one second). ``result()``
scores what the receiver rendered (``metrics.py``): quality, frame delay, non-rendered frames and stalls over the
frames captured ``warmup_s`` after the start (the first key frame is a start-up transient in every scheme; its
length is ``startup_s``), and the sender's wire rate over the whole clip; after ``end_s`` the metrics are frozen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from emu.apps.base import Endpoint, InstallContext
from emu.apps.grace.app import FEC_REDUNDANCY, SCHEMES, ComputeTimes, SessionConfig

PACING_GAIN = 2.5   # WebRTC's pacer runs at 2.5 x the target bitrate (kDefaultPaceMultiplier)
END_MARGIN_S = 1.0


@dataclass(frozen=True, kw_only=True)
class GraceConfig:
    """One call's parameters (the network's rate, RTT and loss belong to the network)."""

    video: Optional[str] = None        # a video file; None: the held-out carphone clip
    max_frames: int = 120
    bitrate_bps: float = 200e3         # target video bitrate (the controller's maximum), IP headers included
    payload_bytes: int = 200           # media bytes per packet (see docs/grace.md: 128 px frames)
    header_bytes: int = 40             # IPv4 20 + UDP 8 + RTP 12
    decode_deadline_s: float = 0.4     # Grace: decode a frame by capture + this at the latest
    give_up_s: float = 1.0             # H.265: abandon a frame not decodable by capture + this
    expected_rtt_s: float = 0.1        # the round trip the NACK/PLI timers assume (set it to the path's RTT)
    warmup_s: float = 2.0              # metrics cover frames captured from here on (start-up: first key frame)
    models_dir: Optional[str] = None   # folder of the codec cards (default: $EMU_MODELS_DIR/grace or packaged)

    def __post_init__(self) -> None:
        def number(name: str, lo: float, hi: float, lo_open: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v > hi or v < lo \
                    or (lo_open and v == lo):
                bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
                raise ValueError(f"{name}: must be in {bound}, got {v!r}")

        number("bitrate_bps", 20e3, 20e6)
        number("decode_deadline_s", 0.0, 10.0, lo_open=True)
        number("give_up_s", 0.0, 60.0, lo_open=True)
        number("expected_rtt_s", 0.0, 5.0, lo_open=True)
        number("warmup_s", 0.0, 60.0)
        for name, lo, hi in (("max_frames", 2, 100_000), ("payload_bytes", 32, 1400), ("header_bytes", 0, 200)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name}: must be an integer in [{lo}, {hi}], got {v!r}")
        if self.video is not None and not Path(self.video).is_file():
            raise FileNotFoundError(f"video: {self.video} is not a file")


def compute_times(card: Any, cards: Iterable[Any]) -> ComputeTimes:
    """Per-frame compute times: the neural codec's from ``card``'s measured ``timing_ms``; x265's and HEVC's the
    best (lowest) ``h265_timing_ms`` among ``cards``. Every card times x265 on the same frames, so the lowest is
    the measurement least disturbed by other load on a shared machine (benchmarks take the best pass too)."""
    t = ComputeTimes()
    timing = card.metrics.get("timing_ms") or {}
    h265 = [c.metrics.get("h265_timing_ms") or {} for c in cards]

    def best(key: str, default_s: float) -> float:
        values = [m[key] for m in h265 if isinstance(m.get(key), (int, float))]
        return min(values) / 1000 if values else default_s

    return ComputeTimes(
        grace_encode_s=timing.get("encode", t.grace_encode_s * 1000) / 1000,
        grace_decode_s=timing.get("decode", t.grace_decode_s * 1000) / 1000,
        h265_encode_s=best("encode", t.h265_encode_s),
        h265_decode_s=best("decode", t.h265_decode_s),
    )


def load_frames(video: Optional[str], max_frames: int):
    """The clip a call streams: ``video`` or the held-out carphone clip, first ``max_frames`` frames (a video with
    fewer decodable frames, e.g. a truncated file, is an error naming it)."""
    from emu.apps.grace.data import load_clip, load_video

    clip = load_clip("carphone", max_frames=max_frames) if video is None else load_video(video, max_frames=max_frames)
    if len(clip) < max_frames:   # a short or truncated file: never stream fewer frames than asked for, silently
        raise ValueError(f"video: {video if video is not None else 'the carphone clip'} has {len(clip)} decodable "
                         f"frames, fewer than max_frames = {max_frames}; set max_frames to at most {len(clip)} to "
                         "stream it")
    return clip


class GraceSession(Endpoint):
    """A video call from ``ctx.src`` (sender) to ``ctx.dst`` (receiver) with one of ``SCHEMES``."""

    app = "grace"

    def __init__(self, ctx: InstallContext) -> None:
        from emu.apps.grace.models import MODEL_NAMES, check_model, load_model

        super().__init__(ctx)
        cfg: GraceConfig = ctx.config
        if ctx.scheme not in SCHEMES:
            raise ValueError(f"scheme: unknown {ctx.scheme!r}; valid: {', '.join(SCHEMES)}")
        self.clip = load_frames(cfg.video, cfg.max_frames)
        cards = {name: check_model(name, cfg.models_dir) for name in MODEL_NAMES}
        times = compute_times(cards[ctx.scheme if ctx.scheme in cards else "grace"], cards.values())
        self.model = load_model(ctx.scheme, cfg.models_dir) if ctx.scheme.startswith("grace") else None
        seed = int(ctx.sim.rng(f"{ctx.name}.packets").integers(2**31))  # the sender's packet permutations
        self.session = SessionConfig(
            fps=self.clip.fps, n_frames=len(self.clip), bitrate_bps=cfg.bitrate_bps,
            payload_bytes=cfg.payload_bytes, header_bytes=cfg.header_bytes, rtt_s=cfg.expected_rtt_s,
            decode_deadline_s=cfg.decode_deadline_s, give_up_s=cfg.give_up_s, times=times, session_seed=seed,
            start_s=self.start_s)
        self.end_s = self.start_s + len(self.clip) / self.clip.fps + max(cfg.give_up_s, cfg.decode_deadline_s) \
            + 2 * cfg.expected_rtt_s + END_MARGIN_S
        self.sender: Any = None
        self.receiver: Any = None
        self._final: Optional[dict] = None

    def start(self) -> None:
        from emu.apps.grace import app

        cfg: GraceConfig = self.config
        ctx = self.ctx
        controller = app.RandomLossRtc(mss_bytes=cfg.payload_bytes, start_rate_bps=cfg.bitrate_bps,
                                       max_rate_bps=cfg.bitrate_bps, min_rate_bps=min(50e3, cfg.bitrate_bps),
                                       l4s=False, pacing_gain=PACING_GAIN)
        frames = self.clip.frames
        session = self.session
        if self.scheme.startswith("grace"):
            from emu.apps.grace.codec import NeuralCodec

            codec = NeuralCodec(self.model, session_seed=session.session_seed)
            cache = app.DecodeCache()
            self.receiver = app.GraceReceiver(self.sim, ctx.dst, ctx.src.name, session, codec=codec, cache=cache,
                                              flow=self.name)
            intra = app.intra_frame(frames[0], self.clip.fps, cfg.bitrate_bps)
            self.sender = app.GraceSender(self.sim, ctx.src, ctx.dst.name, self.receiver.rtc.port, session, frames,
                                          controller, codec=codec, cache=cache, intra=intra, flow=self.name)
        else:
            red = FEC_REDUNDANCY.get(self.scheme, 0.0)
            retx = self.scheme == "h265_retx"
            self.receiver = app.H265Receiver(self.sim, ctx.dst, ctx.src.name, session, fec=red > 0, retransmit=retx,
                                             flow=self.name)
            self.sender = app.H265Sender(self.sim, ctx.src, ctx.dst.name, self.receiver.rtc.port, session, frames,
                                         controller, redundancy=red, retransmit=retx, flow=self.name)
        self.receiver.connect(self.sender)
        self.sim.call_at(self.end_s, self._finish)

    def _finish(self, _: Any = None) -> None:
        self._final = self._summary()

    @property
    def done(self) -> bool:
        return self._final is not None or self.sim.now_s >= self.end_s

    def result(self) -> dict[str, Any]:
        return dict(self._final) if self._final is not None else self._summary()

    # -- metrics --------------------------------------------------------------------------------------------------

    def _extra(self) -> dict[str, Any]:
        sender, receiver = self.sender, self.receiver
        if self.scheme.startswith("grace"):
            sent = np.sum(receiver.packets_sent[1:])
            return {"resync_decodes": int(sender.resync_decodes),
                    "rate_point_mean": float(np.mean(sender.rate_points[1:])),
                    "packets_per_frame": float(np.mean(receiver.packets_sent[1:])),
                    "packets_used_frac": float(np.sum(receiver.packets_used[1:]) / max(1, sent))}
        return {"idr_frames": len(sender.idr_frames), "retransmissions": int(sender.retransmissions),
                "plis": int(receiver.plis_sent), "frames_recovered_by_fec": int(receiver.frames_recovered_by_fec)}

    def _summary(self) -> dict[str, Any]:
        from emu.apps.grace.metrics import ms_ssim_batch, playback, psnr_batch, ssim_batch, ssim_to_db

        sender, receiver = self.sender, self.receiver
        frames = self.clip.frames
        n = len(frames)
        fps = self.session.fps
        duration_s = n / fps
        capture = self.start_s + np.arange(n) / fps
        rendered = receiver.rendered_s.copy()
        # Measured window: frames captured from warmup_s on.
        w0 = min(n - 1, int(math.ceil(self.config.warmup_s * fps - 1e-9)))
        window = np.arange(w0, n)
        shown = [f for f in sorted(receiver.images) if f >= w0]
        if shown:
            imgs = np.stack([receiver.images[f] for f in shown])
            ref = frames[shown]
            s = ssim_batch(imgs, ref)
            ms = ms_ssim_batch(imgs, ref)
            ps = psnr_batch(imgs, ref)
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
        nan = float("nan")
        summary = {
            "ssim_db": ssim_to_db(float(np.nanmean(s))) if shown else nan,
            "ms_ssim": float(np.mean(ms)) if shown else nan,
            "psnr_db": float(np.mean(ps)) if shown else nan,
            "ssim_db_displayed": ssim_to_db(float(np.mean(disp_ssim))),
            "startup_s": float(first - capture[0]),
            "frame_delay_p50_s": pb.frame_delay_p50_s,
            "frame_delay_p95_s": pb.frame_delay_p95_s,
            "frame_delay_mean_s": pb.frame_delay_mean_s,
            "non_rendered_frac": pb.non_rendered_frac,
            "stall_s": pb.stall_s,
            "stall_count": pb.stall_count,
            "kbps": sender.rtc.sock.sent_bytes * 8 / duration_s / 1000,
            "payload_kbps": float(np.sum(sender.frame_bytes)) * 8 / duration_s / 1000,
            "packet_loss": 1.0 - receiver.rtc.rx_pkts / max(1, sender.rtc.sent_pkts),
            "frames": n,
            "measured_frames": len(window),
        }
        summary.update(self._extra())
        return summary


def install(ctx: InstallContext) -> GraceSession:
    return GraceSession(ctx)
