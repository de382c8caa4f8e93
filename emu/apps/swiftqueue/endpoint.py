"""SwiftQueue as an App-contract endpoint: one marking sender and its receiver between two hosts of any network.

    from emu.apps import install
    ep = install(net, "swiftqueue", src="s0", dst="d0", scheme="swiftqueue", rate_bps=2e6, duration_s=20.0)
    ...
    ep.result()   # {"p50_s": ..., "p99_s": ..., "app_bps": ..., "loss_frac": ..., "l_share": ..., ...}

The scheme is the marking policy (``emu.apps.swiftqueue.policies.make_policy``: ``swiftqueue``, ``perflow_l4s``,
``perflow_classic``, ``oracle``, ...). The sender starts at ``start_s``, sends ``fps`` frames a second for
``duration_s`` and is ``done`` ``DRAIN_S`` later (its last packets and ACKs have arrived). The path between the two
hosts should contain a dual-queue (L4S) bottleneck, e.g. ``access_bottleneck(..., queue="dualpi2")``: the policy
chooses between its L and C queues by ECN codepoint; on any other path the marks are carried but change nothing.

Metrics (``result``), over the media packets sent in ``[start_s + warmup_s, start_s + duration_s)``: one-way latency
quantiles ``p50_s``/``p95_s``/``p99_s`` over *all* of them, a packet lost or later than the playout deadline
``deadline_s`` scoring ``deadline_s`` (so ``p99_s == deadline_s`` means >= 1 % missed); ``p99_delivered_s`` and
``mean_s`` over the delivered ones only; ``loss_frac`` (fraction not delivered), ``deadline_miss_frac`` (lost or
later than ``deadline_s``), ``app_bps`` (delivered media bytes before the end of the session, per second of the window),
``l_share`` (fraction marked ECT(1)), ``reordered`` (fraction of media packets that arrived after a higher sequence
number), ``frame_p99_s`` (frame delay through the receiver's jitter buffer), ``app_rate_bps`` (the offered rate),
plus the policy's counters (``infer_calls``/``infer_s``/``gated_frames`` for the predictive policies,
``oracle_forks``/``oracle_c_frames`` for the oracle).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from emu.apps.base import Endpoint, InstallContext
from emu.apps.swiftqueue.app import KIND_MEDIA, SwiftQueueReceiver, SwiftQueueSender
from emu.apps.swiftqueue.policies import Policy, make_policy

DRAIN_S = 1.0   # after the last frame: time for its packets and their ACKs to arrive before the pair is done


def _check(name: str, value: Any, lo: float, hi: float = float("inf"), integer: bool = False) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not (lo <= value <= hi) or value != value:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}: must be {kind} in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SwiftQueueConfig:
    """One SwiftQueue pair: the media flow (a 30 fps video call by default, our choice, WebRTC-like), the session,
    and where the learned policies find their model card."""

    rate_bps: float = 1.0e6           # mean media rate (fixed: the app is not congestion controlled)
    fps: float = 30.0                 # frames per second (a 30 fps video call)
    max_payload_bytes: int = 1200     # WebRTC's usual RTP payload limit
    header_bytes: int = 40            # IP 20 + UDP 8 + RTP 12
    frame_sigma: float = 0.25         # lognormal spread of frame sizes (our choice)
    key_frame_every: int = 60         # a key frame every 2 s at 30 fps (our choice)
    key_frame_scale: float = 3.0      # key frames are this much larger (our choice)
    probe_bytes: int = 64             # size of a probe datagram (headers + timestamps), when a policy probes
    duration_s: float = 30.0          # session length: frames are sent for this long after start_s
    warmup_s: float = 3.0             # packets sent in the first warmup_s of the session are not counted
    ghosts: bool = False              # 1-byte probes into both queues with every packet (oracle bound, analysis)
    models_dir: Optional[str] = None  # folder of the model card (None: $EMU_MODELS_DIR/swiftqueue or packaged)
    margin_s: Optional[float] = None  # mark ECT(1) unless C is predicted faster by more (None: the card's margin)
    gate: bool = True                 # the card's cascade gate (False: run the model on every frame)
    # Playout deadline of a media packet (one-way): later is as good as lost. 0.4 s is the one-way delay above which
    # ITU-T G.114 advises against for network planning (recalled, not checked against the text).
    deadline_s: float = 0.4
    # A marking policy of your own: a Policy subclass or a zero-argument factory returning a Policy, built once per
    # endpoint; it replaces the scheme's policy and the row's ``policy`` column names it (docs/extending.md).
    policy: Optional[Any] = None

    def __post_init__(self) -> None:
        _check("rate_bps", self.rate_bps, 1e3, 1e9)
        _check("fps", self.fps, 1.0, 240.0)
        _check("max_payload_bytes", self.max_payload_bytes, 16, 9000, integer=True)
        _check("header_bytes", self.header_bytes, 0, 200, integer=True)
        _check("frame_sigma", self.frame_sigma, 0.0, 2.0)
        _check("key_frame_every", self.key_frame_every, 1, 1 << 30, integer=True)
        _check("key_frame_scale", self.key_frame_scale, 1.0, 100.0)
        _check("probe_bytes", self.probe_bytes, 1, 9000, integer=True)
        _check("duration_s", self.duration_s, 1.0, 1e6)
        _check("warmup_s", self.warmup_s, 0.0, self.duration_s - 0.5)
        _check("deadline_s", self.deadline_s, 0.001, 60.0)
        if self.margin_s is not None:
            _check("margin_s", self.margin_s, 0.0, 1.0)
        for name in ("ghosts", "gate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be true or false, got {getattr(self, name)!r}")
        if self.policy is not None and not callable(self.policy):
            raise ValueError(f"policy: must be a Policy subclass or a factory returning one, got {self.policy!r}")
        if self.models_dir is not None and (not isinstance(self.models_dir, str) or not self.models_dir):
            raise ValueError(f"models_dir: must be a folder path or None, got {self.models_dir!r}")


def _padded(a: np.ndarray, n: int, fill: float = np.nan) -> np.ndarray:
    """The first ``n`` entries of a per-sequence-number array (``fill`` beyond what it holds yet)."""
    return a[:n] if len(a) >= n else np.concatenate((a, np.full(n - len(a), fill)))


def _quantile(a: np.ndarray, q: float) -> float:
    return float(np.quantile(a, q)) if a.size else float("nan")


class SwiftQueueEndpoint(Endpoint):
    """A SwiftQueue sender on ``ctx.src`` marking by ``ctx.scheme`` and its receiver on ``ctx.dst``."""

    app = "swiftqueue"

    def __init__(self, ctx: InstallContext) -> None:
        super().__init__(ctx)
        cfg: SwiftQueueConfig = self.config
        if cfg.policy is not None:
            self.policy = cfg.policy()
            if not isinstance(self.policy, Policy):
                raise ValueError(f"app {ctx.name!r}: policy() returned {type(self.policy).__name__}, not a Policy")
        else:
            self.policy = make_policy(ctx.scheme, cfg.models_dir, cfg.margin_s, cfg.gate)
        self.stop_s = self.start_s + cfg.duration_s
        expected = int(cfg.duration_s * (cfg.rate_bps / 8.0 / 600.0 + cfg.fps * 2)) + 64
        self.receiver = SwiftQueueReceiver(ctx.sim, ctx.dst, name=ctx.name, ghosts=cfg.ghosts, expected_pkts=expected)
        self.sender = SwiftQueueSender(ctx.sim, ctx.src, self.receiver, cfg, self.policy, name=ctx.name,
                                       stop_s=self.stop_s, ghosts=cfg.ghosts, expected_pkts=expected)

    def start(self) -> None:
        self.policy.start(self)
        self.sender.start(self.start_s)

    @property
    def done(self) -> bool:
        return self.sim.now_s >= self.stop_s + DRAIN_S

    def result(self) -> dict[str, Any]:
        cfg: SwiftQueueConfig = self.config
        s, rx = self.sender, self.receiver
        t0, t1 = self.start_s + cfg.warmup_s, self.stop_s
        n = s.n_sent
        send = s.send_s[:n]
        lat = _padded(rx.lat_s, n)
        window = (send >= t0) & (send < t1) & (s.kind[:n] == KIND_MEDIA)
        got = window & np.isfinite(lat)
        lat_w = lat[got]
        # Tail with losses (issue: lost packets are misses): every media packet sent in the window counts; a lost
        # one or one later than the playout deadline scores the deadline.
        late = got & (lat > cfg.deadline_s)
        scored = np.where(got & ~late, lat, cfg.deadline_s)[window]
        app_bytes = float(s.size[:n][got & (_padded(rx.arr_s, n) < t1)].sum()) if n else 0.0
        # Frame delay through the jitter buffer: a frame is playable once complete and all earlier frames are.
        fdel = []
        play = -math.inf
        for fid, t_send in enumerate(s.frame_send_s):
            if not t0 <= t_send < t1:
                continue
            done = rx.frame_done_s.get(fid)
            if done is None:
                continue
            play = max(play, done)
            fdel.append(play - t_send)
        out = {
            "p50_s": _quantile(scored, 0.50),
            "p95_s": _quantile(scored, 0.95),
            "p99_s": _quantile(scored, 0.99),
            "p99_delivered_s": _quantile(lat_w, 0.99),
            "mean_s": float(lat_w.mean()) if lat_w.size else float("nan"),
            "app_bps": app_bytes * 8.0 / (t1 - t0),
            "loss_frac": float((~got[window]).mean()) if window.any() else float("nan"),
            "deadline_miss_frac": float((~got[window] | late[window]).mean()) if window.any() else float("nan"),
            "l_share": float(s.queue[:n][window].mean()) if window.any() else float("nan"),
            "reordered": float(rx.reordered_pkts / max(1, rx.rx_pkts)),
            "frame_p99_s": _quantile(np.asarray(fdel), 0.99),
            "app_rate_bps": float(cfg.rate_bps),
        }
        out.update(self.policy.stats())
        out["policy"] = type(self.policy).__name__
        return out


def install(ctx: InstallContext) -> SwiftQueueEndpoint:
    return SwiftQueueEndpoint(ctx)
