"""Evaluate Grace++ against its baselines on identical conditions (``emu eval grace``).

Network: ``emu.topologies.access_bottleneck`` with one pair: sender s0 -> left -> bottleneck -> right -> receiver
d0. The bottleneck runs at ``link_rate_bps`` (2 Mbit/s, ten times the video) or follows a capacity ``trace``,
has a 1000-packet DropTail queue, i.i.d. (Bernoulli) packet loss ``loss`` in the forward direction and all the
propagation delay (half the base RTT each way); the reverse path (control messages, transport feedback) is
loss-free. Every scheme streams the same clip at the same target bitrate through the same controller with the
same seed; each scheme is its own run, one call installed with ``emu.apps.install`` and run to its end.

Default clip: the held-out ``carphone`` (never trained on), 128 x 128 at 29.97 fps, first ``max_frames`` frames.
Metrics: ``GraceSession.result`` (quality, delay, non-rendered and stall over frames captured from ``warmup_s``
on; ``kbps`` over the whole clip).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from emu.apps.grace.app import SCHEMES
from emu.apps.grace.endpoint import GraceConfig, GraceSession

SUMMARY_KEYS = ("ssim_db", "frame_delay_p95_s", "non_rendered_frac", "stall_s", "kbps")


@dataclass(frozen=True, kw_only=True)
class GraceEvalConfig:
    trace: Optional[str] = field(default=None, metadata={"help": "forward capacity trace instead of link_rate_bps"})
    loss: float = field(default=0.0, metadata={"help": "i.i.d. packet loss on the forward path, 0..0.9"})
    rtt_s: float = field(default=0.100, metadata={"help": "base round-trip time in seconds"})
    link_rate_bps: float = field(default=2e6, metadata={"help": "bottleneck rate when no trace is given"})
    video: Optional[str] = field(default=None, metadata={"help": "a video file; unset: the held-out carphone clip"})
    max_frames: int = field(default=120, metadata={"help": "frames of the clip to stream (metrics skip the first "
                                                           "warmup_s, the start-up)"})
    bitrate_bps: float = field(default=200e3, metadata={"help": "target video bitrate, headers included"})
    payload_bytes: int = field(default=200, metadata={"help": "media bytes per packet"})
    header_bytes: int = field(default=40, metadata={"help": "IP/UDP/RTP header bytes per packet"})
    decode_deadline_s: float = field(default=0.4, metadata={"help": "Grace: decode a frame by capture + this"})
    give_up_s: float = field(default=1.0, metadata={"help": "H.265: abandon a frame not decodable by capture + this"})
    warmup_s: float = field(default=2.0, metadata={"help": "metrics cover frames captured from here on"})
    models_dir: Optional[str] = None

    def __post_init__(self) -> None:
        for name, lo, hi, lo_open in (("loss", 0.0, 0.9, False), ("rtt_s", 0.0, 5.0, True),
                                      ("link_rate_bps", 10e3, 10e9, False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi \
                    or (lo_open and v == lo):
                bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
                raise ValueError(f"{name}: must be in {bound}, got {v!r}")
        if self.trace is not None and not Path(self.trace).is_file():
            raise FileNotFoundError(f"trace: {self.trace} is not a file")
        self.call_config()  # validates the call's own fields

    def call_config(self) -> GraceConfig:
        """The per-call parameters (``install(..., **params)``) these conditions imply."""
        return GraceConfig(video=self.video, max_frames=self.max_frames, bitrate_bps=self.bitrate_bps,
                           payload_bytes=self.payload_bytes, header_bytes=self.header_bytes,
                           decode_deadline_s=self.decode_deadline_s, give_up_s=self.give_up_s,
                           expected_rtt_s=self.rtt_s, warmup_s=self.warmup_s, models_dir=self.models_dir)


def check_inputs(config: GraceEvalConfig, schemes: tuple[str, ...] = SCHEMES) -> None:
    """Everything a user can get wrong, checked before any work: scheme names, trace, video, cards and weights."""
    from emu.apps.grace.models import MODEL_NAMES, check_model

    bad = [s for s in schemes if s not in SCHEMES]
    if bad:
        raise ValueError(f"scheme: unknown {', '.join(bad)}; valid: {', '.join(SCHEMES)}")
    if config.trace is not None:
        from emu.links.tracefile import load_trace

        load_trace(config.trace)
    from emu.apps.grace.endpoint import load_frames

    load_frames(config.video, config.max_frames)   # decodable, and at least max_frames frames long
    for name in MODEL_NAMES:        # every call reads both cards (compute times)
        check_model(name, config.models_dir)


def run_scheme(scheme: str, config: GraceEvalConfig, seed: int) -> GraceSession:
    """One call with ``scheme`` on a fresh access-bottleneck network, run to its end (one torch thread)."""
    import dataclasses

    import torch

    from emu.apps.install import install
    from emu.links.impairments import BernoulliLossConfig
    from emu.sim import Sim
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=seed)
    topo = access_bottleneck(sim, rate=None if config.trace is not None else config.link_rate_bps,
                             trace=config.trace, rtt_s=config.rtt_s,
                             loss=BernoulliLossConfig(p=config.loss) if config.loss > 0 else None)
    params = {f.name: getattr(config.call_config(), f.name) for f in dataclasses.fields(GraceConfig)}
    call = install(topo.net, "grace", src=topo.senders[0], dst=topo.receivers[0], scheme=scheme, **params)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_until_done(sim, [call], horizon_s=call.end_s)
    finally:
        torch.set_num_threads(threads)
    return call


def evaluate(config: GraceEvalConfig, *, schemes: tuple[str, ...] = SCHEMES, seed: int = 0) -> dict[str, dict]:
    """Run every scheme on the same conditions; return ``{scheme: metrics}`` (headline: ``SUMMARY_KEYS``)."""
    check_inputs(config, schemes)
    return {scheme: run_scheme(scheme, config, seed).result() for scheme in schemes}
