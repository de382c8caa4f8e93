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
  otherwise the option that is estimated to finish first. Before any measurement the first chunk is chosen with
  a prior throughput (``prior_bps``); a later chunk without a measurement (all earlier chunks went as text, which
  measures nothing) probes with the smallest level [DESIGN].
- ``SloSplitController`` (``code``): the released rule (``src/utils.py: config_selection``; apps.md §4.2): level 3,
  2, 1 if ``bytes · 8 / throughput < SLO / n_chunks``, else text. It uses the measured throughput (the released
  runner uses each chunk's true bandwidth from its synthetic trace, an oracle).
- ``FixedController``: always the same option (the fixed-level, 8-bit, 4-bit and text baselines).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence


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


@dataclass(frozen=True)
class Observation:
    now_s: float                       # time since the request was sent
    throughput_bps: Optional[float]    # measured delivery rate (None before any measurement)
    queued_bytes: int                  # written to the socket but not yet delivered
    gpu_free_s: float                  # when the receiver finishes what it already has (sender's estimate)


class Controller(Protocol):
    name: str

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str: ...


class FixedController:
    def __init__(self, option: str) -> None:
        self.option = option
        self.name = option

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str:
        return self.option


class BudgetController:
    """Remaining-budget rule with throughput estimation (reconstruction of the paper's controller)."""

    name = "cachegen"

    def __init__(self, slo_s: float, prior_bps: float) -> None:
        if not slo_s > 0:
            raise ValueError(f"slo_s: must be > 0, got {slo_s!r}")
        if not prior_bps > 0:
            raise ValueError(f"prior_bps: must be > 0, got {prior_bps!r}")
        self.slo_s = slo_s
        self.prior_bps = prior_bps

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str:
        if obs.throughput_bps is None and chunk > 0:
            # Text chunks do not measure the path: after the first chunk, probe with the smallest level.
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
        # No level fits its share: text costs (almost) no network time but receiver compute.
        text_done_s = max(obs.gpu_free_s, net_free_s) + menu.gpu_s["text"][chunk]
        if "text" in menu.nbytes and text_done_s <= self.slo_s - menu.query_prefill_s:
            return "text"
        smallest = menu.levels[-1]
        kv_done_s = net_free_s + menu.nbytes[smallest][chunk] * 8.0 / thr + menu.gpu_s[smallest][chunk]
        if "text" in menu.nbytes and text_done_s < kv_done_s:
            return "text"
        return smallest


RELEASED_CODE_LEVELS = ("level3", "level2", "level1")   # the levels config_selection tries, best first


class SloSplitController:
    """The released code's rule: the SLO split evenly over the chunks; text when no level fits."""

    name = "code"

    def __init__(self, slo_s: float, prior_bps: float) -> None:
        if not slo_s > 0:
            raise ValueError(f"slo_s: must be > 0, got {slo_s!r}")
        self.slo_s = slo_s
        self.prior_bps = prior_bps

    def choose(self, chunk: int, obs: Observation, menu: ChunkMenu) -> str:
        thr = obs.throughput_bps if obs.throughput_bps else self.prior_bps
        for level in (lv for lv in menu.levels if lv in RELEASED_CODE_LEVELS):
            if menu.nbytes[level][chunk] * 8.0 / thr < self.slo_s / menu.n_chunks:
                return level
        return "text"
