"""The SwiftQueue scenario: a trace-driven DualPI2 bottleneck shared by L4S and Classic cross traffic and the app.

Topology (one ``Sim``)::

    app_tx ─┐                                                           ┌─ app_rx
    l0..    ├─ 1 Gbps ─ left ══ trace-driven, DualPI2 (Linux preset) ══ right ─ 1 Gbps ─┼─ ..
    c0..    ┘           (reverse: 1 Gbps DropTail)                                      └─

- **Bottleneck**: ``left->right`` follows the capacity trace (any format ``emu.links.tracefile`` reads), starting
  ``trace_offset_s`` into it (the trace is rotated, so it still loops), with ``one_way_delay_s`` of propagation.
  The queue is ``DualPI2Queue`` with the Linux ``sch_dualpi2`` preset (WRR scheduler, classic protection 10 %,
  1 ms step marking for L). Why Linux and not the RFC 9332 time-shifted FIFO: under the TS-FIFO a Classic packet
  waits for every L packet that arrives up to ``tshift`` (50 ms) after it, so the C queue can never be the faster
  one for a packet and per-packet selection has nothing to choose; under WRR a packet in a short C queue is served
  after at most ~8 L packets however long the L queue is, which is the situation SwiftQueue exploits.
- **Cross traffic** (all TCP-like streams, ``emu.transport.stream``): ``l4s_bulk`` long-lived Prague flows,
  ``classic_bulk`` long-lived Cubic flows, and ``l4s_onoff``/``classic_onoff`` on/off sources: each ON period is
  a fresh connection (slow start included) transferring an exponential number of bytes of mean
  ``onoff_on_s`` x trace mean rate, followed by an exponential OFF period of mean ``onoff_off_s``. Classic
  flows are Not-ECT (dropped by the PI2 AQM), L4S flows ECT(1).
- **App**: ``SwiftQueueSender``/``SwiftQueueReceiver`` (``emu.apps.swiftqueue.app``) at a fixed rate: by default
  ``app_rate_frac`` of the trace's mean rate, clamped to [0.2, 4] Mbit/s.

Every random draw comes from ``sim.rng(name)`` (per-source names), so two runs with the same seed and different
marking policies see the same trace, the same frame sizes and the same on/off schedule.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from emu.apps.traffic import OnOffSource, Sink
from emu.apps.swiftqueue.app import KIND_MEDIA, AppConfig, SwiftQueueReceiver, SwiftQueueSender
from emu.links.schedule import CapacitySchedule, OpportunitySchedule, RateSchedule, rotate_schedule
from emu.links.tracefile import load_trace, resolve_trace_path
from emu.net import Network
from emu.packet import ECT1
from emu.queues.dualpi2 import DualPI2Config, DualPI2Queue
from emu.sim import Sim
from emu.transport.stream import open_stream

APP_RATE_MIN_BPS = 0.2e6
APP_RATE_MAX_BPS = 4e6
QUEUE_PRESETS = ("linux", "rfc9332")


def _num(name: str, value: Any, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not (value > lo if lo_open else value >= lo) or not value <= hi:
        lo_s = f"({lo}" if lo_open else f"[{lo}"
        raise ValueError(f"{name}: must be a number in {lo_s}, {hi}], got {value!r}")


def _int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name}: must be an integer in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ScenarioConfig:
    """One SwiftQueue run. ``trace`` is a path (relative paths are also looked up in ../shared/traces)."""

    trace: str
    duration_s: float = 30.0              # simulated seconds
    warmup_s: float = 3.0                 # latencies of app packets sent before this are not counted
    trace_offset_s: float = 0.0           # start this far into the trace (it is rotated, so it still loops)
    one_way_delay_s: float = 0.015        # bottleneck propagation; base RTT = 2 x this (30 ms, a metro path)
    app_rate_bps: Optional[float] = None  # fixed app rate; None: app_rate_frac x trace mean, clamped
    app_rate_frac: float = 0.15           # our choice: a video call taking a modest share of the link
    l4s_bulk: int = 1                     # long-lived Prague flows
    classic_bulk: int = 0                 # long-lived Cubic flows
    l4s_onoff: int = 2                    # on/off Prague sources
    classic_onoff: int = 2                # on/off Cubic sources
    l4s_udp: int = 1                      # unresponsive on/off ECT(1) UDP sources (other real-time L4S apps)
    udp_rate_frac: float = 0.5            # their rate while ON, x trace mean rate
    udp_on_s: float = 0.3                 # their mean ON period
    udp_off_s: float = 1.5                # their mean OFF period
    onoff_on_s: float = 1.0               # mean ON transfer = this x trace mean rate (bytes = rate * s / 8)
    onoff_off_s: float = 2.0              # mean OFF period
    queue_preset: str = "linux"           # DualPI2 preset: "linux" (WRR) or "rfc9332" (TS-FIFO)
    ghosts: bool = False                  # 1-byte probes into both queues with every app packet (oracle)
    app: AppConfig = field(default_factory=AppConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.trace, (str, Path)) or str(self.trace) == "":
            raise ValueError(f"trace: must be a trace file path, got {self.trace!r}")
        _num("duration_s", self.duration_s, 1.0, 3600.0)
        _num("warmup_s", self.warmup_s, 0.0, self.duration_s - 0.5)
        _num("trace_offset_s", self.trace_offset_s, 0.0, 1e6)
        _num("one_way_delay_s", self.one_way_delay_s, 0.0, 1.0)
        if self.app_rate_bps is not None:
            _num("app_rate_bps", self.app_rate_bps, 1e4, 1e9)
        _num("app_rate_frac", self.app_rate_frac, 0.0, 1.0, lo_open=True)
        for name in ("l4s_bulk", "classic_bulk", "l4s_onoff", "classic_onoff", "l4s_udp"):
            _int(name, getattr(self, name), 0, 64)
        _num("udp_rate_frac", self.udp_rate_frac, 0.0, 10.0, lo_open=True)
        _num("udp_on_s", self.udp_on_s, 0.0, 60.0, lo_open=True)
        _num("udp_off_s", self.udp_off_s, 0.0, 600.0, lo_open=True)
        _num("onoff_on_s", self.onoff_on_s, 0.0, 60.0, lo_open=True)
        _num("onoff_off_s", self.onoff_off_s, 0.0, 600.0, lo_open=True)
        if self.queue_preset not in QUEUE_PRESETS:
            raise ValueError(f"queue_preset: must be one of {', '.join(QUEUE_PRESETS)}, got {self.queue_preset!r}")
        if not isinstance(self.app, AppConfig):
            raise ValueError(f"app: must be an AppConfig, got {type(self.app).__name__}")

    def replace(self, **changes: Any) -> "ScenarioConfig":
        return dataclasses.replace(self, **changes)


def app_rate_for(config: ScenarioConfig, mean_rate_bps: float) -> float:
    if config.app_rate_bps is not None:
        return float(config.app_rate_bps)
    return float(min(max(config.app_rate_frac * mean_rate_bps, APP_RATE_MIN_BPS), APP_RATE_MAX_BPS))


class _OnOff:
    """On/off cross traffic: each ON period is a fresh stream transferring an exponential number of bytes."""

    def __init__(self, sim: Sim, net: Network, src: Any, dst: Any, cc: str, name: str, mean_bytes: float,
                 off_mean_s: float, stop_s: float) -> None:
        self.sim, self.net, self.src, self.dst, self.cc, self.name = sim, net, src, dst, cc, name
        self.mean_bytes = mean_bytes
        self.off_mean_s = off_mean_s
        self.stop_s = stop_s
        self.rng = sim.rng(f"swiftqueue.cross.{name}")
        self.transfers = 0
        self.senders: list = []
        sim.call_at(float(self.rng.exponential(off_mean_s)), self._on)

    def _on(self, _: Any = None) -> None:
        now = self.sim.now_s
        if now >= self.stop_s:
            return
        size = max(1448, int(self.rng.exponential(self.mean_bytes)))
        # A partial, not a lambda: simulation copies (the oracle's forks) must not share callbacks with the original.
        sender, _ = open_stream(self.sim, self.src, self.dst, cc=self.cc, flow=f"x.{self.name}.{self.transfers}",
                                on_data=functools.partial(self._progress, size), start_s=now)
        sender.write(size)
        self.senders.append(sender)
        self.transfers += 1

    def _progress(self, size: int, total: int, now_s: float) -> None:
        if total >= size:
            self.sim.call_in(float(self.rng.exponential(self.off_mean_s)), self._on)


@dataclass
class ScenarioRun:
    """What one run left behind: the sim, the app endpoints and the cross-traffic flow ids."""

    config: ScenarioConfig
    sim: Sim
    sender: SwiftQueueSender
    receiver: SwiftQueueReceiver
    queue: DualPI2Queue
    bottleneck: Any
    app_rate_bps: float
    mean_rate_bps: float
    cross_flow_prefix: str = "x."


def build(config: ScenarioConfig, policy: Any, seed: int = 0) -> ScenarioRun:
    """Build the run (nothing simulated yet)."""
    schedule = rotate_schedule(load_trace(resolve_trace_path(config.trace)), config.trace_offset_s)
    mean_rate = schedule.mean_rate_bps
    sim = Sim(seed=seed)
    net = Network(sim)
    left, right = net.router("left"), net.router("right")
    preset = DualPI2Config.linux() if config.queue_preset == "linux" else DualPI2Config.rfc9332()
    queue = DualPI2Queue(preset, rng=sim.rng("bottleneck.queue"))
    bottleneck = net.link(left, right, trace=schedule, delay=config.one_way_delay_s, queue=queue,
                          reverse_rate="1Gbps", reverse_queue="droptail",
                          reverse_queue_params={"limit_pkts": 100_000})
    hosts = []

    def pair(name: str):
        a, b = net.host(f"{name}_tx"), net.host(f"{name}_rx")
        net.link(a, left, rate="1Gbps", queue_params={"limit_pkts": 100_000})
        net.link(right, b, rate="1Gbps", queue_params={"limit_pkts": 100_000})
        hosts.append((a, b))
        return a, b

    app_tx, app_rx = pair("app")
    x_pairs = {}
    for kind, count in (("lb", config.l4s_bulk), ("cb", config.classic_bulk), ("lo", config.l4s_onoff),
                        ("co", config.classic_onoff), ("lu", config.l4s_udp)):
        for i in range(count):
            x_pairs[f"{kind}{i}"] = pair(f"{kind}{i}")
    net.build_routes()
    stop_s = config.duration_s
    for name, (a, b) in x_pairs.items():
        cc = "prague" if name[0] == "l" else "cubic"
        if name[1] == "u":
            OnOffSource(sim, a, b.name, flow=f"x.{name}", rate_bps=config.udp_rate_frac * mean_rate,
                        on_mean_s=config.udp_on_s, off_mean_s=config.udp_off_s, ecn=ECT1, size_bytes=1200,
                        dport=9000, stop_s=stop_s)
            Sink(sim, b, port=9000)
        elif name[1] == "b":
            start = float(sim.rng(f"swiftqueue.cross.{name}").uniform(0.0, 0.5))
            open_stream(sim, a, b, cc=cc, bulk=True, flow=f"x.{name}", start_s=start)
        else:
            _OnOff(sim, net, a, b, cc, name, config.onoff_on_s * mean_rate / 8.0, config.onoff_off_s, stop_s)
    app_rate = app_rate_for(config, mean_rate)
    app_cfg = dataclasses.replace(config.app, rate_bps=app_rate)
    expected = int(config.duration_s * (app_rate / 8.0 / 600.0 + config.app.fps * 2)) + 64
    receiver = SwiftQueueReceiver(sim, app_rx, ghosts=config.ghosts, expected_pkts=expected)
    sender = SwiftQueueSender(sim, app_tx, app_rx, app_cfg, policy, start_s=0.0, stop_s=stop_s,
                              ghosts=config.ghosts, expected_pkts=expected)
    return ScenarioRun(config, sim, sender, receiver, queue, bottleneck, app_rate, mean_rate)


def run(config: ScenarioConfig, policy: Any, seed: int = 0) -> ScenarioRun:
    """Build and simulate ``config.duration_s`` seconds (plus 1 s for the last packets to arrive)."""
    r = build(config, policy, seed)
    if hasattr(policy, "start"):
        policy.start(r)
    r.sim.run(until_s=config.duration_s + 1.0)
    return r


def summarize(r: ScenarioRun) -> dict:
    """Per-run metrics: app one-way latency quantiles, app and cross throughput, loss, reordering, frame delay.

    Measured over app packets sent in ``[warmup_s, duration_s)``; throughputs over the same window.
    """
    cfg = r.config
    s, rx = r.sender, r.receiver
    n = s.n_sent
    send = s.send_s[:n]
    lat = rx.lat_s[:n] if len(rx.lat_s) >= n else np.concatenate((rx.lat_s, np.full(n - len(rx.lat_s), np.nan)))
    window = (send >= cfg.warmup_s) & (send < cfg.duration_s) & (s.kind[:n] == KIND_MEDIA)
    got = window & np.isfinite(lat)
    lat_w = lat[got]
    span = cfg.duration_s - cfg.warmup_s
    rec = r.sim.records
    arrays = rec.delivered_arrays()
    names = rec.flow_names
    cross_ids = np.array([i for i, nm in enumerate(names) if nm.startswith(r.cross_flow_prefix)
                          and not nm.endswith(".ack")], dtype=np.int64)
    arrived = arrays["delivered_s"]
    in_win = (arrived >= cfg.warmup_s) & (arrived < cfg.duration_s)
    cross_bytes = float(arrays["size_bytes"][in_win & np.isin(arrays["flow_id"], cross_ids)].sum())
    app_bytes = float(s.size[:n][got & (rx.arr_s[:n] < cfg.duration_s)].sum()) if n else 0.0
    # Frame delay through the jitter buffer: a frame is playable once complete and all earlier frames are.
    fdel = []
    play = -math.inf
    for fid, t_send in enumerate(s.frame_send_s):
        if not cfg.warmup_s <= t_send < cfg.duration_s:
            continue
        done = rx.frame_done_s.get(fid)
        if done is None:
            continue
        play = max(play, done)
        fdel.append(play - t_send)
    fdel = np.asarray(fdel)
    q = lambda a, p: float(np.quantile(a, p)) if a.size else float("nan")  # noqa: E731
    return {
        "p50_s": q(lat_w, 0.50),
        "p95_s": q(lat_w, 0.95),
        "p99_s": q(lat_w, 0.99),
        "mean_s": float(lat_w.mean()) if lat_w.size else float("nan"),
        "app_bps": app_bytes * 8.0 / span,
        "cross_bps": cross_bytes * 8.0 / span,
        "app_loss": float(1.0 - got.sum() / max(1, window.sum())),
        "l_share": float(s.queue[:n][window].mean()) if window.any() else float("nan"),
        "reordered": float(rx.reordered_pkts / max(1, rx.rx_pkts)),
        "frame_p99_s": q(fdel, 0.99),
        "app_rate_bps": r.app_rate_bps,
        "trace_mean_bps": r.mean_rate_bps,
    }
