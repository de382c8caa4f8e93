"""Per-chunk configuration choice while streaming a KV cache (pure logic: no SimPy, no torch).

The sender (KV server) asks its controller for chunk ``i`` when the socket can take more data; the controller
sees a ``Observation`` (time since the request, measured throughput, bytes still queued, the receiver's compute
backlog) and the ``ChunkMenu`` (bytes and compute cost of every option of every chunk), and names an option:
a quantisation level (``"level3"`` best … ``"level0"`` smallest), or ``"text"`` (send the chunk's text, the
receiver recomputes its KV).

Controllers:

- ``BudgetController`` (``cachegen``): the paper's rule as described by secondary sources [3P: "estimate remaining
  time from measured throughput and choose a config that meets the SLO"; paper p. 7 quoted in apps.md §4.1;
  the exact formula is not public, this is a reconstruction, [DESIGN]]. The time left before the SLO, minus what
  is still queued at the measured throughput, the query prefill and the last chunk's decode, is split evenly
  over the chunks left; the best level whose transfer fits that share wins. If none fits, the chunk goes as text
  when the receiver can recompute it within the time left (the network is then free for the next chunk);
  otherwise the option that is estimated to finish first; when that is KV expected before the receiver is through
  its backlog, the chunk's text goes too (``"text+level0"``: a late KV is recomputed, ``app.KVFetch._process``).
  Before any measurement the first chunk is chosen with a prior throughput (``prior_bps``); a later chunk without
  a measurement (all earlier chunks went as text, which measures nothing) probes with the smallest level, unless
  the connection's memory knows the path [DESIGN].
- ``SloSplitController`` (``code``): the released rule (``src/utils.py: config_selection``; apps.md §4.2): level 3,
  2, 1 if ``bytes · 8 / throughput < SLO / n_chunks``, else text. It uses the measured throughput (the released
  runner uses each chunk's true bandwidth from its synthetic trace, an oracle).
- ``FixedController``: always the same option (the fixed-level, 8-bit, 4-bit and text baselines).

``BandwidthMemory`` is one connection's throughput estimate carried across requests (a prior, an age-weighted
average of finished fetches, decay back toward the prior), shared with kvblend's loading controller. Given one,
``BudgetController.begin(now_s)`` chooses a request's first chunk on its recent measurement, or makes the request
hedge when it has none (docs/kvfetch.md, "Connection memory").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

from emu.validate import check_number


@dataclass(frozen=True)
class ChunkMenu:
    """What can be sent for each chunk: ``nbytes[option][i]`` and receiver compute ``gpu_s[option][i]``.

    ``levels`` lists the KV options best quality first (the adaptive controllers choose among these and
    ``"text"``)."""

    nbytes: dict[str, Sequence[int]]
    gpu_s: dict[str, Sequence[float]]
    levels: tuple[str, ...]
    query_prefill_s: float

    def __post_init__(self) -> None:
        counts = {len(v) for v in self.nbytes.values()} | {len(v) for v in self.gpu_s.values()}
        if len(counts) != 1:
            raise ValueError("ChunkMenu: every option needs one entry per chunk")
        if set(self.nbytes) != set(self.gpu_s):
            raise ValueError("ChunkMenu: nbytes and gpu_s must name the same options")
        for name in self.levels:
            if name not in self.nbytes:
                raise ValueError(f"ChunkMenu: level {name!r} has no sizes")

    @property
    def n_chunks(self) -> int:
        return len(next(iter(self.nbytes.values())))

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.nbytes)


HEDGE = "text+"          # an option "text+<level>": the chunk's text and its KV; the receiver uses what is there
PRIOR_BPS = 20e6          # kvfetch's prior (its eval's ``prior_bps``) [DESIGN]
HALF_LIFE_S = 10.0        # [DESIGN]: a few fetches' worth of memory on a cellular trace
FORGET_S = 60.0           # [DESIGN]: kvblend's estimate is halfway back to the prior after a minute without a
                          # measurement; kvfetch's controller hedges once its last measurement is that old


class BandwidthMemory:
    """Throughput estimate of one connection, carried across requests [DESIGN] (used by kvblend's loading
    controller and by ``BudgetController``).

    - The prior (``prior_bps``) until the first measurement.
    - Each finished fetch's measurement is averaged in with weight ``1 - 0.5 ** (age / half_life_s)`` on the new
      value, ``age`` being the time since the previous measurement.
    - Between measurements the estimate decays toward the prior with half-life ``forget_s``: a connection that
      once looked too slow to fetch over (and measures nothing while it recomputes) tries again (``estimate``).
    - ``recent``: the average without decay while the last measurement is younger than ``forget_s``, for a
      controller that probes the path itself once the memory is stale (kvfetch's hedged request).
    """

    def __init__(self, prior_bps: float = PRIOR_BPS, half_life_s: float = HALF_LIFE_S,
                 forget_s: float = FORGET_S) -> None:
        check_number("prior_bps", prior_bps, lo=1e3, hi=1e12)
        check_number("half_life_s", half_life_s, lo=1e-3, hi=1e6)
        check_number("forget_s", forget_s, lo=1e-3, hi=1e9)
        self.prior_bps = float(prior_bps)
        self.half_life_s = float(half_life_s)
        self.forget_s = float(forget_s)
        self.estimate_bps = float(prior_bps)
        self.last_s: Optional[float] = None
        self.samples = 0
        # Added to the times ``update`` is given: an evaluation that runs each request in its own simulation
        # (starting at 0, ``offset`` into the trace) sets it to that offset, so ages are trace time.
        self.clock_offset_s = 0.0

    def update(self, measured_bps: float, now_s: float) -> None:
        if not (measured_bps > 0 and math.isfinite(measured_bps)):
            return
        now_s = now_s + self.clock_offset_s
        if self.last_s is None:
            self.estimate_bps = float(measured_bps)
        else:
            w_new = 1.0 - 0.5 ** (max(0.0, now_s - self.last_s) / self.half_life_s)
            self.estimate_bps = (1.0 - w_new) * self.estimate_bps + w_new * float(measured_bps)
        self.last_s = float(now_s)
        self.samples += 1

    def recent(self, now_s: float) -> Optional[float]:
        """The measured average (no decay) if the last measurement is younger than ``forget_s`` at ``now_s``, else
        None: for a controller that probes the path itself when the memory is stale (``BudgetController``)."""
        if self.last_s is None or now_s + self.clock_offset_s - self.last_s >= self.forget_s:
            return None
        return self.estimate_bps

    def estimate(self, now_s: float) -> float:
        """The estimate at ``now_s`` (the last one, decayed toward the prior since it was made)."""
        if self.last_s is None:
            return self.prior_bps
        age = max(0.0, now_s + self.clock_offset_s - self.last_s)
        keep = 0.5 ** (age / self.forget_s)
        return keep * self.estimate_bps + (1.0 - keep) * self.prior_bps


@dataclass(frozen=True)
class Observation:
    now_s: float                       # time since the request was sent
    throughput_bps: Optional[float]    # measured delivery rate (None before any measurement)
    queued_bytes: int                  # written to the socket but not yet delivered
    gpu_free_s: float                  # when the receiver finishes what it already has (sender's estimate)


class Controller(Protocol):
    name: str
    hedge: bool     # set by ``begin``: send this request as a hedge (``app.KVFetch._start_hedge``)

    def begin(self, now_s: float) -> None: ...

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str: ...


class FixedController:
    def __init__(self, option: str) -> None:
        self.option = option
        self.name = option
        self.hedge = False

    def begin(self, now_s: float) -> None:
        pass

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str:
        return self.option


class BudgetController:
    """Remaining-budget rule with throughput estimation (reconstruction of the paper's controller)."""

    name = "cachegen"

    def __init__(self, slo_s: float, prior_bps: float, memory: Optional[BandwidthMemory] = None) -> None:
        if not slo_s > 0:
            raise ValueError(f"slo_s: must be > 0, got {slo_s!r}")
        if not prior_bps > 0:
            raise ValueError(f"prior_bps: must be > 0, got {prior_bps!r}")
        self.slo_s = slo_s
        self.prior_bps = prior_bps
        self.memory = memory
        self.informed = False      # the start estimate comes from a recent measurement, not the prior alone
        self.hedge = False

    def begin(self, now_s: float) -> None:
        """A new request at ``now_s``: with a ``memory``, its first chunk is chosen on what the connection has
        measured (``memory.recent``, capped at the memory's prior [DESIGN]: docs/kvfetch.md) instead of the fixed
        prior; if the memory has no recent measurement, the request hedges (``hedge``: the text of every chunk
        plus the KV of the later ones, ``app.KVFetch._start_hedge``)."""
        if self.memory is not None:
            recent = self.memory.recent(now_s)
            self.informed = recent is not None
            self.prior_bps = min(recent, self.memory.prior_bps) if recent is not None else self.memory.prior_bps
            self.hedge = not self.informed

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str:
        if not menu.levels:
            return "text"
        if obs.throughput_bps is None and chunk > 0 and not self.informed:
            # Text chunks do not measure the path: after the first chunk, probe with the smallest level (unless
            # the connection's memory already knows the path).
            return menu.levels[-1]
        thr = obs.throughput_bps if obs.throughput_bps else self.prior_bps
        n_left = menu.n_chunks - chunk
        net_free_s = obs.now_s + obs.queued_bytes * 8.0 / thr
        tail_s = menu.query_prefill_s + min(menu.gpu_s[lv][-1] for lv in menu.levels)
        remaining_s = self.slo_s - tail_s - net_free_s
        share_s = remaining_s / n_left
        for level in menu.levels:
            if menu.nbytes[level][chunk] * 8.0 / thr <= share_s:
                return level
        smallest = menu.levels[-1]
        if "text" not in menu.nbytes:    # a menu of KV levels only: the smallest is the fastest
            return smallest
        # No level fits its share: text costs (almost) no network time but receiver compute.
        text_done_s = max(obs.gpu_free_s, net_free_s) + menu.gpu_s["text"][chunk]
        if text_done_s <= self.slo_s - menu.query_prefill_s:
            return "text"
        arrive_s = net_free_s + menu.nbytes[smallest][chunk] * 8.0 / thr
        if text_done_s < arrive_s + menu.gpu_s[smallest][chunk]:
            return "text"
        # KV expected before the receiver is through its backlog: send the text too, so that a late KV (the
        # estimate was high) costs no more than the recompute it replaced [DESIGN].
        return HEDGE + smallest if arrive_s <= obs.gpu_free_s else smallest


RELEASED_CODE_LEVELS = ("level3", "level2", "level1")   # the levels config_selection tries, best first


class SloSplitController:
    """The released code's rule: the SLO split evenly over the chunks; text when no level fits."""

    name = "code"

    def __init__(self, slo_s: float, prior_bps: float) -> None:
        if not slo_s > 0:
            raise ValueError(f"slo_s: must be > 0, got {slo_s!r}")
        self.slo_s = slo_s
        self.prior_bps = prior_bps
        self.hedge = False

    def begin(self, now_s: float) -> None:
        pass

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str:
        thr = obs.throughput_bps if obs.throughput_bps else self.prior_bps
        for level in (lv for lv in menu.levels if lv in RELEASED_CODE_LEVELS):
            if menu.nbytes[level][chunk] * 8.0 / thr < self.slo_s / menu.n_chunks:
                return level
        return "text"
