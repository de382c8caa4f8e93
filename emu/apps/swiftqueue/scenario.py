"""The SwiftQueue evaluation scenario: a trace-driven DualPI2 bottleneck shared by L4S and Classic cross traffic
and one SwiftQueue endpoint. Its config (``ScenarioConfig``) is what ``emu eval swiftqueue`` takes (one flag per
field).

Topology: ``emu.topologies.access_bottleneck`` with one sender/receiver pair per source (pair 0 is the app)::

    s0 (app) ─┐                                                                  ┌─ d0 (app)
    s1..      ├─ 1 Gbps ─ left ══ trace, DualPI2 (Linux), rtt_s / 2 ══ right ─ 1 Gbps ─┼─ d1..
              ┘           (reverse: 1 Gbps DropTail, rtt_s / 2)                        └─

- **Bottleneck**: ``left->right`` follows the capacity trace (any format ``emu.links.tracefile`` reads), starting
  ``trace_offset_s`` into it (rotated, so it still loops), with all the propagation delay (``rtt_s / 2`` each way).
  The queue is ``DualPI2Queue`` with the Linux ``sch_dualpi2`` preset (WRR scheduler, classic protection 10 %,
  1 ms step marking for L). Why Linux and not the RFC 9332 time-shifted FIFO: under the TS-FIFO a Classic packet
  waits for every L packet that arrives up to ``tshift`` (50 ms) after it, so the C queue can never be the faster
  one for a packet and per-packet selection has nothing to choose; under WRR a packet in a short C queue is served
  after at most ~8 L packets however long the L queue is, which is the situation SwiftQueue exploits.
- **Cross traffic**: ``l4s_bulk`` long-lived Prague and ``classic_bulk`` long-lived Cubic flows (the ``bulk`` app,
  unlimited, each started at a random time in [0, 0.5) s); ``l4s_onoff``/``classic_onoff`` on/off TCP sources
  (``_OnOff``: each ON period is a fresh connection, slow start included, transferring an exponential number of
  bytes of mean ``onoff_on_s`` x trace mean rate, followed by an exponential OFF period of mean ``onoff_off_s``;
  a ``bulk`` transfer is one connection of a fixed size, so these keep their own loop); ``l4s_udp`` unresponsive
  on/off ECT(1) UDP sources (``emu.apps.traffic.OnOffSource``). Classic flows are Not-ECT (dropped by the PI2
  AQM), L4S flows ECT(1). Cross flows are named ``x.<kind><i>`` (``x.lb0``, ``x.lo1.3``, ...).
- **Named scenarios** (``scenario``: ``mixed``, ``household``, ``alternating``; ``SCENARIOS``): the cross-traffic mix
  and the app's rate, as fractions of the trace's mean rate; fields given explicitly override the preset.
- **App**: one SwiftQueue endpoint (``emu.apps.install(net, "swiftqueue", ...)``, scheme = marking policy) at a
  fixed rate: by default ``app_rate_frac`` of the trace's mean rate, clamped to [0.2, 4] Mbit/s.

Every random draw comes from ``sim.rng(name)`` (per-source names), so two runs with the same seed and different
marking policies see the same trace, the same frame sizes and the same on/off schedule.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from emu.apps.install import install
from emu.apps.swiftqueue.endpoint import DRAIN_S
from emu.apps.traffic import OnOffSource, Sink
from emu.packet import ECT1
from emu.queues.dualpi2 import DualPI2Config, DualPI2Queue
from emu.sim import Sim
from emu.topologies import AccessBottleneck, access_bottleneck, run_until_done
from emu.transport.stream import open_stream

DEFAULT_TRACE = "mahimahi/Verizon-LTE-short.down"
APP_RATE_MIN_BPS = 0.2e6
APP_RATE_MAX_BPS = 4e6
QUEUE_PRESETS = ("linux", "rfc9332")
CROSS_PREFIX = "x."
UDP_PORT = 9000
EPISODES = ("exponential", "uniform")
UNIFORM_SPREAD = 0.5    # "uniform" episodes: U((1 - spread) x mean, (1 + spread) x mean)
# Cross-traffic kinds in build order: (field of the count, name prefix, congestion control or "udp").
CROSS_KINDS = (("l4s_bulk", "lb", "prague"), ("classic_bulk", "cb", "cubic"), ("l4s_onoff", "lo", "prague"),
               ("classic_onoff", "co", "cubic"), ("l4s_udp", "lu", "udp"))


# Named scenarios: the values of the scenario fields (rates as fractions of the trace's mean rate, so one preset
# fits every trace). Why each is realistic, with sources: docs/swiftqueue.md "Scenarios".
SCENARIOS: dict[str, dict[str, Any]] = {
    # The first round's scenario: a mid-size app (15 % of the mean) among Prague, Cubic and short unresponsive
    # L4S bursts.
    "mixed": dict(app_rate_frac=0.15, l4s_bulk=1, classic_bulk=0, l4s_onoff=2, classic_onoff=2, l4s_udp=1,
                  udp_rate_frac=0.5, udp_on_s=0.3, udp_off_s=1.5, onoff_on_s=1.0, onoff_off_s=2.0,
                  episodes="exponential"),
    # A home on fixed-wireless 4G/5G: Prague bulk and on/off downloads, two slow-adapting ECT(1) real-time streams
    # (cloud gaming / calls, minutes-long sessions seen here as seconds-long ON periods), light Cubic on/off web
    # traffic, and a small 30 fps app (1.5 % of the mean).
    "household": dict(app_rate_frac=0.015, l4s_bulk=1, classic_bulk=0, l4s_onoff=2, classic_onoff=1, l4s_udp=2,
                      udp_rate_frac=0.3, udp_on_s=3.0, udp_off_s=3.0, onoff_on_s=1.0, onoff_off_s=4.0,
                      episodes="exponential"),
    # Independent, bounded episodes (durations uniform in [1, 3] s): an unresponsive ECT(1) stream at 0.6 x the mean
    # rate (ON 1-3 s, OFF 2-6 s) overloads L whenever it meets a dip, and one Cubic source's transfers of
    # U(0.5, 1.5) x 1 s of the mean rate (1-3 s at its share beside the Prague bulk flow; OFF 2-6 s) congest C, with
    # independent phases: per-flow L4S and per-flow Classic each lose at different times (docs/swiftqueue.md).
    "alternating": dict(app_rate_frac=0.015, l4s_bulk=1, classic_bulk=0, l4s_onoff=0, classic_onoff=1, l4s_udp=1,
                        udp_rate_frac=0.6, udp_on_s=2.0, udp_off_s=4.0, onoff_on_s=1.0, onoff_off_s=4.0,
                        episodes="uniform"),
}


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
    """One SwiftQueue run (the eval config of ``emu eval swiftqueue``). ``trace`` is a path (relative paths are
    also looked up in the shared traces folder)."""

    trace: str = field(default=DEFAULT_TRACE, metadata={"help": "bottleneck capacity trace"})
    models_dir: Optional[str] = field(default=None, metadata={"help": "folder of the SwiftQueue model card"})
    duration_s: float = field(default=30.0, metadata={"help": "simulated seconds per scheme (--predictors: of "
                                                               "the exploratory run)"})
    warmup_s: float = field(default=3.0, metadata={"help": "app packets sent before this are not counted"})
    trace_offset_s: float = field(default=0.0, metadata={"help": "start this far into the trace"})
    rtt_s: float = field(default=0.030, metadata={"help": "base RTT, all on the bottleneck (a metro path)"})
    app_rate_bps: Optional[float] = field(default=None, metadata={"help": "fixed app rate; None: "
                                                                           "app_rate_frac x trace mean, clamped"})
    scenario: str = field(default="mixed", metadata={"help": "named cross-traffic scenario: mixed, household, "
                                                               "alternating (docs/swiftqueue.md); the fields below "
                                                               "left unset take its values"})
    app_rate_frac: Optional[float] = field(default=None, metadata={"help": "app rate / trace mean rate"})
    l4s_bulk: Optional[int] = field(default=None, metadata={"help": "long-lived Prague flows"})
    classic_bulk: Optional[int] = field(default=None, metadata={"help": "long-lived Cubic flows"})
    l4s_onoff: Optional[int] = field(default=None, metadata={"help": "on/off Prague sources"})
    classic_onoff: Optional[int] = field(default=None, metadata={"help": "on/off Cubic sources"})
    l4s_udp: Optional[int] = field(default=None, metadata={"help": "unresponsive on/off ECT(1) UDP sources"})
    udp_rate_frac: Optional[float] = field(default=None, metadata={"help": "their rate while ON / trace mean "
                                                                           "rate"})
    udp_on_s: Optional[float] = field(default=None, metadata={"help": "their mean ON period"})
    udp_off_s: Optional[float] = field(default=None, metadata={"help": "their mean OFF period"})
    onoff_on_s: Optional[float] = field(default=None, metadata={"help": "mean on/off TCP transfer = this x trace "
                                                                        "mean rate"})
    onoff_off_s: Optional[float] = field(default=None, metadata={"help": "mean OFF period of the on/off TCP "
                                                                         "sources"})
    episodes: Optional[str] = field(default=None, metadata={"help": "ON/OFF periods and on/off transfer sizes: "
                                                                    "exponential, or uniform in [0.5, 1.5] x the "
                                                                    "mean (bounded episodes)"})
    queue_preset: str = field(default="linux", metadata={"help": "DualPI2 preset: linux (WRR) or rfc9332 "
                                                                  "(TS-FIFO)"})
    ghosts: bool = field(default=False, metadata={"help": "1-byte probes into both queues with every app "
                                                           "packet (analysis)"})
    margin_s: Optional[float] = field(default=None, metadata={"help": "mark ECT(1) unless C is predicted faster "
                                                                       "by more than this; None: the card's"})

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario: must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        explicit = {}
        for name, value in SCENARIOS[self.scenario].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
            else:
                explicit[name] = getattr(self, name)
        object.__setattr__(self, "_explicit", explicit)
        if not isinstance(self.trace, str) or self.trace == "":
            raise ValueError(f"trace: must be a trace file path, got {self.trace!r}")
        if self.models_dir is not None and (not isinstance(self.models_dir, str) or not self.models_dir):
            raise ValueError(f"models_dir: must be a folder path or None, got {self.models_dir!r}")
        _num("duration_s", self.duration_s, 1.0, 3600.0)
        _num("warmup_s", self.warmup_s, 0.0, self.duration_s - 0.5)
        _num("trace_offset_s", self.trace_offset_s, 0.0, 1e6)
        _num("rtt_s", self.rtt_s, 0.0, 2.0)
        if self.app_rate_bps is not None:
            _num("app_rate_bps", self.app_rate_bps, 1e4, 1e9)
        _num("app_rate_frac", self.app_rate_frac, 0.0, 1.0, lo_open=True)
        for name, _, _ in CROSS_KINDS:
            _int(name, getattr(self, name), 0, 64)
        _num("udp_rate_frac", self.udp_rate_frac, 0.0, 10.0, lo_open=True)
        _num("udp_on_s", self.udp_on_s, 0.0, 60.0, lo_open=True)
        _num("udp_off_s", self.udp_off_s, 0.0, 600.0, lo_open=True)
        _num("onoff_on_s", self.onoff_on_s, 0.0, 60.0, lo_open=True)
        _num("onoff_off_s", self.onoff_off_s, 0.0, 600.0, lo_open=True)
        if self.episodes not in EPISODES:
            raise ValueError(f"episodes: must be one of {', '.join(EPISODES)}, got {self.episodes!r}")
        if self.queue_preset not in QUEUE_PRESETS:
            raise ValueError(f"queue_preset: must be one of {', '.join(QUEUE_PRESETS)}, got {self.queue_preset!r}")
        if not isinstance(self.ghosts, bool):
            raise ValueError(f"ghosts: must be true or false, got {self.ghosts!r}")
        if self.margin_s is not None:
            _num("margin_s", self.margin_s, 0.0, 1.0)

    def replace(self, **changes: Any) -> "ScenarioConfig":
        """A copy with ``changes``; scenario fields not set explicitly follow the (possibly new) scenario."""
        kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in SCENARIOS["mixed"]}
        return ScenarioConfig(**{**kept, **self._explicit, **changes})


def app_rate_for(config: ScenarioConfig, mean_rate_bps: float) -> float:
    if config.app_rate_bps is not None:
        return float(config.app_rate_bps)
    return float(min(max(config.app_rate_frac * mean_rate_bps, APP_RATE_MIN_BPS), APP_RATE_MAX_BPS))


def _draw(episodes: str, rng: np.random.Generator, mean: float) -> float:
    """One ON/OFF period or transfer size of the given mean: exponential, or uniform in ``[0.5, 1.5] x mean``."""
    if episodes == "uniform":
        return float(rng.uniform((1.0 - UNIFORM_SPREAD) * mean, (1.0 + UNIFORM_SPREAD) * mean))
    return float(rng.exponential(mean))


class _EpisodeSource(OnOffSource):
    """``OnOffSource`` with ON and OFF periods uniform in ``[0.5, 1.5] x`` their means (bounded episodes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_left_s = _draw("uniform", self.rng, self.on_mean_s)

    def _next_gap_s(self) -> float:
        self._on_left_s -= self._gap_s
        if self._on_left_s >= 0:
            return self._gap_s
        off_s = _draw("uniform", self.rng, self.off_mean_s)
        self._on_left_s = _draw("uniform", self.rng, self.on_mean_s)
        return self._gap_s + off_s


class _OnOff:
    """On/off cross traffic: each ON period is a fresh stream transferring an exponential number of bytes."""

    def __init__(self, sim: Sim, src: Any, dst: Any, cc: str, name: str, mean_bytes: float, off_mean_s: float,
                 stop_s: float, episodes: str = "exponential") -> None:
        self.sim, self.src, self.dst, self.cc, self.name = sim, src, dst, cc, name
        self.draw = functools.partial(_draw, episodes)
        self.mean_bytes = mean_bytes
        self.off_mean_s = off_mean_s
        self.stop_s = stop_s
        self.rng = sim.rng(f"swiftqueue.cross.{name}")
        self.transfers = 0
        self.senders: list = []
        sim.call_at(self.draw(self.rng, off_mean_s), self._on)

    def _on(self, _: Any = None) -> None:
        now = self.sim.now_s
        if now >= self.stop_s:
            return
        size = max(1448, int(self.draw(self.rng, self.mean_bytes)))
        # A partial, not a lambda: simulation copies (the oracle's forks) must not share callbacks with the original.
        sender, _ = open_stream(self.sim, self.src, self.dst, cc=self.cc,
                                flow=f"{CROSS_PREFIX}{self.name}.{self.transfers}",
                                on_data=functools.partial(self._progress, size), start_s=now)
        sender.write(size)
        self.senders.append(sender)
        self.transfers += 1

    def _progress(self, size: int, total: int, now_s: float) -> None:
        if total >= size:
            self.sim.call_in(self.draw(self.rng, self.off_mean_s), self._on)


@dataclass
class ScenarioRun:
    """One built (and, after ``run``, simulated) scenario: the sim, the network and the app endpoint."""

    config: ScenarioConfig
    sim: Sim
    topo: AccessBottleneck
    endpoint: Any
    app_rate_bps: float
    mean_rate_bps: float

    @property
    def sender(self) -> Any:
        return self.endpoint.sender

    @property
    def receiver(self) -> Any:
        return self.endpoint.receiver

    @property
    def queue(self) -> DualPI2Queue:
        return self.topo.bottleneck.queue


def cross_names(config: ScenarioConfig) -> list[tuple[str, str]]:
    """``(name, cc)`` of every cross-traffic source, in build order (pair i + 1 of the topology)."""
    return [(f"{prefix}{i}", cc) for count_field, prefix, cc in CROSS_KINDS
            for i in range(getattr(config, count_field))]


def build(config: ScenarioConfig, scheme: str, seed: int = 0, *, gate: bool = True,
          policy: Optional[Callable[[], Any]] = None) -> ScenarioRun:
    """Build the run (nothing simulated yet); the app's marking policy is ``scheme``, or ``policy()`` when a policy
    factory is given (``SwiftQueueConfig.policy``: it replaces the scheme's policy)."""
    sim = Sim(seed=seed)
    preset = DualPI2Config.linux() if config.queue_preset == "linux" else DualPI2Config.rfc9332()
    # The AQM draws from "bottleneck.queue", as the committed models' training data did (same seed, same data).
    queue = DualPI2Queue(preset, rng=sim.rng("bottleneck.queue"))
    cross = cross_names(config)
    topo = access_bottleneck(sim, pairs=1 + len(cross), trace=config.trace, trace_offset=config.trace_offset_s,
                             rtt_s=config.rtt_s, queue=queue)
    mean_rate = topo.bottleneck.schedule.mean_rate_bps
    stop_s = config.duration_s
    for i, (name, cc) in enumerate(cross, start=1):
        src, dst = topo.senders[i], topo.receivers[i]
        if cc == "udp":
            source = _EpisodeSource if config.episodes == "uniform" else OnOffSource
            source(sim, src, dst.name, flow=f"{CROSS_PREFIX}{name}", rate_bps=config.udp_rate_frac * mean_rate,
                        on_mean_s=config.udp_on_s, off_mean_s=config.udp_off_s, ecn=ECT1, size_bytes=1200,
                        dport=UDP_PORT, stop_s=stop_s)
            Sink(sim, dst, port=UDP_PORT)
        elif name[1] == "b":
            start = float(sim.rng(f"swiftqueue.cross.{name}").uniform(0.0, 0.5))
            install(topo.net, "bulk", src=src, dst=dst, name=f"{CROSS_PREFIX}{name}", scheme=cc, start_s=start)
        else:
            _OnOff(sim, src, dst, cc, name, config.onoff_on_s * mean_rate / 8.0, config.onoff_off_s, stop_s,
                   config.episodes)
    app_rate = app_rate_for(config, mean_rate)
    endpoint = install(topo.net, "swiftqueue", src=topo.senders[0], dst=topo.receivers[0], scheme=scheme,
                       start_s=0.0, rate_bps=app_rate, duration_s=config.duration_s, warmup_s=config.warmup_s,
                       ghosts=config.ghosts, models_dir=config.models_dir, margin_s=config.margin_s, gate=gate,
                       policy=policy)
    return ScenarioRun(config, sim, topo, endpoint, app_rate, mean_rate)


def run(config: ScenarioConfig, scheme: str, seed: int = 0, *, gate: bool = True,
        policy: Optional[Callable[[], Any]] = None) -> ScenarioRun:
    """Build and simulate until the app is done (``duration_s`` plus the endpoint's drain time)."""
    r = build(config, scheme, seed, gate=gate, policy=policy)
    run_until_done(r.sim, [r.endpoint], horizon_s=config.duration_s + DRAIN_S)
    return r


def cross_bps(r: ScenarioRun) -> float:
    """Delivered bytes of every cross flow (not their ACKs), per second, over ``[warmup_s, duration_s)``."""
    cfg = r.config
    rec = r.sim.records
    arrays = rec.delivered_arrays()
    cross_ids = np.array([i for i, nm in enumerate(rec.flow_names) if nm.startswith(CROSS_PREFIX)
                          and not nm.endswith(".ack")], dtype=np.int64)
    arrived = arrays["delivered_s"]
    in_win = (arrived >= cfg.warmup_s) & (arrived < cfg.duration_s)
    return float(arrays["size_bytes"][in_win & np.isin(arrays["flow_id"], cross_ids)].sum()) * 8.0 \
        / (cfg.duration_s - cfg.warmup_s)


def summarize(r: ScenarioRun) -> dict:
    """Per-run metrics: the endpoint's (``SwiftQueueEndpoint.result``) plus ``cross_bps`` (after ``app_bps``) and
    ``trace_mean_bps`` (after ``app_rate_bps``)."""
    out: dict = {}
    for key, value in r.endpoint.result().items():
        out[key] = value
        if key == "app_bps":
            out["cross_bps"] = cross_bps(r)
        elif key == "app_rate_bps":
            out["trace_mean_bps"] = r.mean_rate_bps
    return out
