"""The loading controller: which ratio to recompute so that recompute hides behind loading (pure logic).

CacheBlend's paper [RECALL, apps2.md §2.2] picks a recompute ratio ``r ≥ r_min`` (≈ 15 %, the quality floor)
such that recomputing one layer takes no longer than loading the next one, so the selective recompute costs no
extra delay. ``RatioController`` does that on the receiver, when the check layer's cached KV has arrived (the
selection is made there, once). It uses the throughput the connection has shown (``BandwidthMemory``: what
earlier fetches measured, or the prior before any). The fetch's own delivery rate at the check layer is not used:
the check layer's KV is the first to arrive, in TCP slow start, and its rate is far below the path's (in
``emu eval kvblend`` on the 4G trace it made the controller pick ratios of 0.35-0.6 where 0.2 hid):

    load_layer_s = layer_bytes · 8 / throughput
    r = clamp(hide_margin · load_layer_s / full_layer_s, quality_floor, max_ratio)   rounded down to ``ratio_step``

Before fetching it checks the whole plan: if loading the caches is estimated to take longer than recomputing
the context from its text, the request is served by full recompute instead (the paper's controller also picks
the storage device; here the choice is "fetch or recompute").

``BandwidthMemory`` (in ``emu.apps.kvfetch.controller``, shared with the KV-fetch controllers) is the
throughput estimate carried across requests on one connection [DESIGN]:

- the prior (``prior_bps``) until the first measurement;
- each finished fetch's measurement is averaged in with weight ``1 - 0.5 ** (age / half_life_s)`` on the new
  value, ``age`` being the time since the previous measurement: a fetch that follows closely moves the estimate
  a little, one after a pause mostly replaces it;
- between measurements the estimate decays toward the prior with half-life ``forget_s``, so a connection that
  once looked too slow to fetch over (and therefore measures nothing while it recomputes) tries again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from emu.apps.kvblend.pipeline import Workload, estimate_ttft_s, plan, with_ratio
from emu.apps.kvfetch.controller import BandwidthMemory
from emu.validate import check_number

@dataclass(frozen=True, kw_only=True)
class RatioPolicy:
    """Fixed (``adaptive=False``: always ``ratio``) or bandwidth-aware recompute ratio."""

    ratio: float = 0.15            # the fixed ratio (LMCache's default blend_recompute_ratio, apps2.md §2.1)
    adaptive: bool = False
    quality_floor: float = 0.15    # r_min of the paper
    max_ratio: float = 1.0
    ratio_step: float = 0.01
    # Share of the estimated per-layer load time the recompute may take [DESIGN]. The estimate is often off by
    # 2x on a cellular trace (it is 10-30 s old); at 1.0 the adaptive ratio cost +23 % mean TTFT against the
    # fixed 15 % on the 4G trace of docs/kvblend.md (+7 % on the second), at 0.5 +3 % and +1 %.
    hide_margin: float = 0.5

    def __post_init__(self) -> None:
        check_number("ratio", self.ratio, lo=0.0, hi=1.0)
        check_number("quality_floor", self.quality_floor, lo=0.0, hi=1.0)
        check_number("max_ratio", self.max_ratio, lo=0.0, hi=1.0)
        check_number("ratio_step", self.ratio_step, lo=1e-4, hi=1.0)
        check_number("hide_margin", self.hide_margin, lo=0.0, hi=10.0, lo_open=True)
        if self.max_ratio < self.quality_floor:
            raise ValueError(f"max_ratio: must be >= quality_floor={self.quality_floor}, got {self.max_ratio}")


class RatioController:
    """Chooses fetch-or-recompute at the request and the ratio at the check layer (see the module doc)."""

    def __init__(self, policy: RatioPolicy, memory: Optional[BandwidthMemory] = None) -> None:
        self.policy = policy
        self.memory = memory if memory is not None else BandwidthMemory()

    def fetch_or_recompute(self, w: Workload, rtt_s: float, now_s: float) -> str:
        """``"cacheblend"`` or ``"full_recompute"`` for a new request (adaptive only; fixed always fetches)."""
        if not self.policy.adaptive:
            return "cacheblend"
        thr = self.memory.estimate(now_s)
        blend = estimate_ttft_s(with_ratio(plan("cacheblend", w), w, self.policy.quality_floor), w, thr, rtt_s)
        recompute = estimate_ttft_s(plan("full_recompute", w), w, thr, rtt_s)
        return "full_recompute" if recompute < blend else "cacheblend"

    def choose_ratio(self, w: Workload, now_s: float) -> float:
        pol = self.policy
        if not pol.adaptive:
            return pol.ratio
        layer_bytes = w.layer_bytes(w.n_context)
        thr = self.memory.estimate(now_s)
        hide = pol.hide_margin * layer_bytes * 8.0 / thr / w.layer_s
        r = min(pol.max_ratio, max(pol.quality_floor, hide))
        steps = math.floor(r / pol.ratio_step + 1e-9)
        return max(pol.quality_floor, min(pol.max_ratio, round(steps * pol.ratio_step, 10)))

    def finished(self, measured_bps: Optional[float], now_s: float) -> None:
        if measured_bps is not None:
            self.memory.update(measured_bps, now_s)

