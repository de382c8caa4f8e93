"""KV store and inference server as an app endpoint: one request whose chunk caches are fetched layer by layer
while the server recomputes (no torch).

::

    server (dst) ──request (stream ``<name>.req``, 200 B)──► KV store (src)
    store: writes the needed layers' KV of every chunk on ``<name>.data``, layer after layer
    server: layer j's computation starts when layer j-1 is done and layer j's KV has arrived (if it needs any);
            at the check layer's arrival the controller picks the recompute ratio (cacheblend schemes)
            TTFT = request → last layer done + query prefill

Schemes (``pipeline.py`` has the per-layer plans): ``cacheblend`` (fixed ``ratio``), ``cacheblend_adaptive``
(``controller.RatioController``: ratio ≥ ``quality_floor`` so that recompute hides behind loading, or full
recompute when fetching would be slower), ``full_recompute`` (no fetch), ``prefix_reuse`` (the first chunk's
cache only), ``full_reuse`` (every cache, no recompute). The bytes are our model's real fp16 caches
(``kv_bytes_per_token``); the compute is the served 7B model's (``prefill_tok_s``).

    install(net, "kvblend", src="s0", dst="d0", scheme="cacheblend_adaptive", chunks=8, chunk_tokens=128)

``memory`` (an ``emu.apps.kvfetch.controller.BandwidthMemory``) is the throughput estimate of one connection: requests given the
same object remember what earlier fetches measured (``emu eval kvblend`` passes one per scheme across its
trials, in time order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from emu.apps.base import Endpoint, InstallContext
from emu.apps.kvblend.controller import RatioController, RatioPolicy
from emu.apps.kvfetch.controller import PRIOR_BPS, BandwidthMemory
from emu.apps.kvblend.pipeline import (SCHEMES, SERVED_PREFILL_TOKENS_PER_S, Plan, Workload, pipeline_done_s,
                                       plan, selected_frac, with_ratio)
from emu.validate import check_int, check_number

REQUEST_BYTES = 200
KV_BYTES_PER_TOKEN = 4608       # the kvfetch model: 6 layers × (K + V) × 192 channels × 2 bytes (fp16)


@dataclass(frozen=True, kw_only=True)
class KVBlendConfig:
    chunks: int = 8
    chunk_tokens: int = 128
    query_tokens: int = 32
    ratio: float = 0.15                  # LMCache's blend_recompute_ratio (apps2.md §2.1)
    quality_floor: float = 0.15          # r_min of the paper's loading controller [RECALL]
    check_layer: int = 1                 # the released code's check layer
    kv_bytes_per_token: int = KV_BYTES_PER_TOKEN
    prefill_tok_s: float = SERVED_PREFILL_TOKENS_PER_S
    served_layers: int = 32              # Mistral-7B
    prior_bps: float = PRIOR_BPS
    rtt_hint_s: float = 0.04             # round trip assumed by the fetch-or-recompute estimate
    decode_s_per_token: float = 0.0      # > 0 for a coded cache (``codec.py``)
    memory: Optional[BandwidthMemory] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_int("chunks", self.chunks, lo=1, hi=4096)
        check_int("chunk_tokens", self.chunk_tokens, lo=1, hi=1 << 16)
        check_int("query_tokens", self.query_tokens, lo=1, hi=1 << 16)
        check_number("ratio", self.ratio, lo=0.0, hi=1.0)
        check_number("quality_floor", self.quality_floor, lo=0.0, hi=1.0)
        check_int("served_layers", self.served_layers, lo=2, hi=1024)
        check_int("check_layer", self.check_layer, lo=0, hi=self.served_layers - 1)
        check_int("kv_bytes_per_token", self.kv_bytes_per_token, lo=1, hi=1 << 30)
        check_number("prefill_tok_s", self.prefill_tok_s, lo=1e-3, hi=1e9)
        check_number("prior_bps", self.prior_bps, lo=1e3, hi=1e12)
        check_number("rtt_hint_s", self.rtt_hint_s, lo=0.0, hi=10.0)
        check_number("decode_s_per_token", self.decode_s_per_token, lo=0.0, hi=10.0)
        if self.memory is not None and not isinstance(self.memory, BandwidthMemory):
            raise ValueError(f"memory: must be a BandwidthMemory or None, got {type(self.memory).__name__}")

    def workload(self) -> Workload:
        return Workload(chunk_tokens=(self.chunk_tokens,) * self.chunks, query_tokens=self.query_tokens,
                        kv_bytes_per_token=self.kv_bytes_per_token, prefill_tok_s=self.prefill_tok_s,
                        n_layers=self.served_layers, check_layer=self.check_layer,
                        decode_s_per_token=self.decode_s_per_token)


class KVBlendFetch(Endpoint):
    """One request: fetch (or not) the chunk caches and run the layer pipeline (see the module doc)."""

    app = "kvblend"

    def __init__(self, ctx: InstallContext) -> None:
        super().__init__(ctx)
        cfg: KVBlendConfig = ctx.config
        self.workload = cfg.workload()
        memory = cfg.memory if cfg.memory is not None else BandwidthMemory(cfg.prior_bps)
        policy = RatioPolicy(ratio=cfg.ratio, adaptive=ctx.scheme == "cacheblend_adaptive",
                             quality_floor=cfg.quality_floor)
        self.controller = RatioController(policy, memory)
        self.mode = ctx.scheme           # what this request does (the adaptive scheme may fall back)
        self.plan: Optional[Plan] = None
        self.ratio = math.nan
        self.ttft_s = math.nan
        self.fetch_s = math.nan
        self.delivered_bytes = 0
        self.throughput_bps = math.nan
        self._ends: list[tuple[int, int]] = []    # (layer, stream offset where its KV ends)
        self._ready: list[float] = []
        self._first: Optional[tuple[float, int]] = None
        self._half: Optional[tuple[float, int]] = None     # first arrival at or past half of the bytes
        self.data: Any = None
        self.request: Any = None

    # -- client (inference server) ---------------------------------------------------------------------------

    def start(self) -> None:
        self.sim.call_at(self.start_s, self._begin)

    def _begin(self, _: Any = None) -> None:
        from emu.transport.stream import open_stream

        w = self.workload
        cfg: KVBlendConfig = self.config
        if self.scheme in ("cacheblend", "cacheblend_adaptive"):
            self.mode = self.controller.fetch_or_recompute(w, cfg.rtt_hint_s, self.sim.now_s)
            if self.mode == "cacheblend" and not self.controller.policy.adaptive:
                self.ratio = self.controller.policy.ratio
        self.plan = plan(self.mode, w, None if math.isnan(self.ratio) else self.ratio)
        self._ready = [0.0] * w.n_layers
        if self.plan.total_bytes == 0:
            self.ttft_s = pipeline_done_s(self.plan.compute_s, tuple(self._ready)) + w.query_s
            self.fetch_s = 0.0
            return
        offset = 0
        for j, b in enumerate(self.plan.load_bytes):
            if b:
                offset += b
                self._ends.append((j, offset))
        self.data, _ = open_stream(self.sim, self.ctx.src, self.ctx.dst, on_data=self._on_data,
                                   flow=f"{self.name}.data")
        self.request, _ = open_stream(self.sim, self.ctx.dst, self.ctx.src, on_data=self._on_request,
                                      flow=f"{self.name}.req")
        self.request.write(REQUEST_BYTES)

    def _on_data(self, total: int, now_s: float) -> None:
        if self._first is None:
            self._first = (now_s, total)
        if self._half is None and total * 2 >= self.plan.total_bytes:
            self._half = (now_s, total)
        while self._ends and total >= self._ends[0][1]:
            layer, _ = self._ends.pop(0)
            self._ready[layer] = now_s - self.start_s
            if layer == self.plan.select_layer and math.isnan(self.ratio):
                self.ratio = self.controller.choose_ratio(self.workload, now_s)
        if not self._ends and math.isnan(self.ttft_s):
            self._finish(total, now_s)

    @staticmethod
    def _rate(since: tuple[float, int], total: int, now_s: float) -> Optional[float]:
        t0, b0 = since
        return (total - b0) * 8.0 / (now_s - t0) if now_s - t0 > 1e-4 and total > b0 else None

    def _finish(self, total: int, now_s: float) -> None:
        w = self.workload
        p = self.plan
        if p.select_layer is not None:
            p = with_ratio(p, w, self.ratio)
        self.ttft_s = pipeline_done_s(p.compute_s, tuple(self._ready)) + w.query_s
        self.fetch_s = now_s - self.start_s
        self.delivered_bytes = total
        rate = self._rate(self._first, total, now_s)
        self.throughput_bps = rate if rate is not None else math.nan
        # The connection remembers the second half's delivery rate: past slow start, closer to the path's.
        tail = self._rate(self._half, total, now_s)
        self.controller.finished(tail if tail is not None else rate, now_s)

    # -- KV store -----------------------------------------------------------------------------------------------

    def _on_request(self, total: int, now_s: float) -> None:
        if total >= REQUEST_BYTES and self.data.written_bytes == 0:
            self.data.write(self.plan.total_bytes)

    # -- results ----------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return not math.isnan(self.ttft_s)

    def recompute_frac(self) -> float:
        """Share of the context tokens recomputed after the check layer (1 for full recompute)."""
        w = self.workload
        if self.mode == "full_recompute":
            return 1.0
        if self.mode == "full_reuse":
            return 0.0
        if self.mode == "prefix_reuse":
            return (w.n_context - w.chunk_tokens[0]) / w.n_context
        return selected_frac(w.n_context, self.ratio) if not math.isnan(self.ratio) else math.nan

    def result(self) -> dict[str, Any]:
        return {"ttft_s": self.ttft_s, "fetch_s": self.fetch_s, "bytes": float(self.plan.total_bytes
                                                                               if self.plan else math.nan),
                "recompute_frac": self.recompute_frac(), "ratio": self.ratio,
                "throughput_bps": self.throughput_bps, "mode": self.mode}


def install(ctx: InstallContext) -> KVBlendFetch:
    if ctx.scheme not in SCHEMES:
        raise ValueError(f"app 'kvblend': unknown scheme {ctx.scheme!r}; valid: {', '.join(SCHEMES)}")
    return KVBlendFetch(ctx)
