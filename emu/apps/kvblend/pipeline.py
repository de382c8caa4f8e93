"""What the receiver loads and computes per layer for each scheme, on the served model's scale (no torch).

**Served model.** CacheBlend's paper serves Mistral-7B (32 layers, GQA with 8 KV heads of 128 dims = 1024 KV
channels). Our model (``emu/models/kvfetch``, 6 layers, 192 KV channels) produces the real caches; their real
sizes go on the wire. The receiver's recompute is timed with the project's calibration method
(``emu.apps.kvfetch.calibrate``): the prefill throughput measured on this CPU with our model, times
``prefill_flops_per_kv_element(ours) / prefill_flops_per_kv_element(served)``. The hardware is this CPU; the
recompute cost per KV element is the served model's. With GQA the 7B model spends ~4x more FLOPs per KV element
than LongChat-7B (kvfetch's served model), so recompute is relatively dearer here than in kvfetch.

**Pipeline** (the paper's layer-wise loading, LMCache v1's layer-wise retrieval). The receiver runs the served
model's ``n_layers`` layers in order. Layer ``j`` can start when layer ``j - 1`` is done and, if it reuses cached
KV, when that layer's KV has arrived; the store sends layer after layer, so loading layer ``j + 1`` overlaps
computing layer ``j``. Each served layer carries ``1 / n_layers`` of our cache's real bytes (the 7B's layers all
hold the same amount of KV). TTFT = request → last layer done + the query's prefill.

Per scheme (``n`` context tokens, ``n0`` in the first chunk, ``c`` the check layer, ``r`` the ratio):

=================  ==============================  =================================================
scheme             KV loaded per layer             compute per layer (× one full layer of ``n``)
=================  ==============================  =================================================
full_recompute     none                            1
prefix_reuse       first chunk (``n0`` tokens)     (n − n0) / n
full_reuse         every token                     0
cacheblend         every token, layers ≥ c         1 for layers ≤ c; int(n·r) / n after
=================  ==============================  =================================================

With a coded cache (``kv_codec``), every layer that loads KV also decodes it (``decode_s_per_token``, kvfetch's
measured arithmetic-decoding speed per element, as for any model). Selection needs the cached KV of the check layer (its deviation); layers before it are recomputed from the
tokens and need no cached KV (the released code's layer 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from emu.validate import check_int, check_number

# Mistral-7B-v0.1 / Instruct-v0.2 (the model of CacheBlend's released examples): parameters, layers, d_model,
# KV channels per layer (8 KV heads × 128; grouped-query attention).
MISTRAL_7B = {"params": 7.24e9, "n_layers": 32, "d_model": 4096, "kv_channels": 1024}

# The committed model's prefill throughput on this project's 2-core CPU, torch with 2 threads, 2048-token
# context, median of 5 (``python -m emu.apps.kvfetch.calibrate``; docs/kvfetch.md "Receiver compute model").
MEASURED_PREFILL_TOKENS_PER_S = 10_152.0
# Our model (emu/models/kvfetch/lm.card.json): parameters, layers, d_model, KV channels per layer.
OUR_MODEL = {"params": 3_443_136, "n_layers": 6, "d_model": 192, "kv_channels": 192}
CALIBRATION_CONTEXT_TOKENS = 2048

SCHEMES = ("cacheblend", "cacheblend_adaptive", "full_recompute", "prefix_reuse", "full_reuse")


def served_prefill_tok_s(measured_tok_s: float = MEASURED_PREFILL_TOKENS_PER_S, ours: Optional[dict] = None,
                         served: Optional[dict] = None, context_tokens: int = CALIBRATION_CONTEXT_TOKENS) -> float:
    """Recompute throughput (tokens/s) of the served model on this hardware, by kvfetch's calibration method."""
    from emu.apps.kvfetch.calibrate import prefill_flops_per_kv_element

    ours = OUR_MODEL if ours is None else ours
    served = MISTRAL_7B if served is None else served
    scale = prefill_flops_per_kv_element(**ours, context_tokens=context_tokens) / \
        prefill_flops_per_kv_element(**served, context_tokens=context_tokens)
    return measured_tok_s * scale


SERVED_PREFILL_TOKENS_PER_S = 223.0   # served_prefill_tok_s() rounded (a test checks it): Mistral-7B's cost


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One request: the context's chunks, the query, what a token's cache weighs, and the receiver's speed."""

    chunk_tokens: tuple[int, ...]          # tokens per chunk, in order
    query_tokens: int = 32
    kv_bytes_per_token: int = 4608         # our model: 6 layers × (K + V) × 192 channels × 2 bytes (fp16)
    prefill_tok_s: float = SERVED_PREFILL_TOKENS_PER_S
    n_layers: int = MISTRAL_7B["n_layers"]  # the served model's layers (pipeline stages)
    check_layer: int = 1
    decode_s_per_token: float = 0.0        # decoding a coded cache: seconds per token of cache (all layers)

    def __post_init__(self) -> None:
        if not isinstance(self.chunk_tokens, tuple) or not self.chunk_tokens:
            raise ValueError("chunk_tokens: must be a non-empty tuple of token counts")
        for t in self.chunk_tokens:
            check_int("chunk_tokens", t, lo=1, hi=1 << 20)
        check_int("query_tokens", self.query_tokens, lo=1, hi=1 << 20)
        check_int("kv_bytes_per_token", self.kv_bytes_per_token, lo=1, hi=1 << 30)
        check_number("prefill_tok_s", self.prefill_tok_s, lo=1e-3, hi=1e9)
        check_int("n_layers", self.n_layers, lo=1, hi=1024)
        check_int("check_layer", self.check_layer, lo=0, hi=self.n_layers - 1)
        check_number("decode_s_per_token", self.decode_s_per_token, lo=0.0, hi=10.0)

    @property
    def n_context(self) -> int:
        return int(sum(self.chunk_tokens))

    @property
    def layer_s(self) -> float:
        """One served layer's full recompute of the context."""
        return self.n_context / self.prefill_tok_s / self.n_layers

    def decode_s(self, tokens: int) -> float:
        """One served layer's share of decoding ``tokens`` tokens of coded cache."""
        return tokens * self.decode_s_per_token / self.n_layers

    @property
    def query_s(self) -> float:
        return self.query_tokens / self.prefill_tok_s

    def layer_bytes(self, tokens: int) -> int:
        """Bytes of one served layer's KV for ``tokens`` tokens (our cache's bytes spread over the layers)."""
        return int(math.ceil(tokens * self.kv_bytes_per_token / self.n_layers))


@dataclass(frozen=True)
class Plan:
    """Per served layer: bytes of cached KV to load (0: none needed) and compute seconds (ratio-dependent
    layers are filled in when the ratio is chosen)."""

    scheme: str
    load_bytes: tuple[int, ...]
    compute_s: tuple[float, ...]
    select_layer: Optional[int] = None    # the layer whose KV arrival triggers the ratio choice (blend)

    @property
    def total_bytes(self) -> int:
        return int(sum(self.load_bytes))


def plan(scheme: str, w: Workload, ratio: Optional[float] = None) -> Plan:
    """The load/compute plan of ``scheme`` (``ratio`` for the cacheblend schemes; None: chosen later)."""
    L, full = w.n_layers, w.layer_s
    all_kv = w.layer_bytes(w.n_context)
    if scheme == "full_recompute":
        return Plan(scheme, (0,) * L, (full,) * L)
    dec = w.decode_s(w.n_context)
    if scheme == "full_reuse":
        return Plan(scheme, (all_kv,) * L, (dec,) * L)
    if scheme == "prefix_reuse":
        n0 = w.chunk_tokens[0]
        return Plan(scheme, (w.layer_bytes(n0),) * L,
                    (full * (w.n_context - n0) / w.n_context + w.decode_s(n0),) * L)
    if scheme in ("cacheblend", "cacheblend_adaptive"):
        c = w.check_layer
        loads = tuple(0 if j < c else all_kv for j in range(L))
        partial = math.nan if ratio is None else full * selected_frac(w.n_context, ratio) + dec
        compute = tuple(full + (dec if j == c else 0.0) if j <= c else partial for j in range(L))
        return Plan(scheme, loads, compute, select_layer=c)
    raise ValueError(f"scheme: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")


def selected_frac(n_context: int, ratio: float) -> float:
    """Fraction of the context recomputed after the check layer (the released ``int(n · ratio)`` tokens)."""
    check_number("ratio", ratio, lo=0.0, hi=1.0)
    return int(n_context * ratio) / n_context


def with_ratio(p: Plan, w: Workload, ratio: float) -> Plan:
    """``p`` (a cacheblend plan) with the layers after the check layer timed at ``ratio``."""
    part = w.layer_s * selected_frac(w.n_context, ratio) + w.decode_s(w.n_context)
    return Plan(p.scheme, p.load_bytes, tuple(part if j > w.check_layer else c for j, c in enumerate(p.compute_s)),
                p.select_layer)


def pipeline_done_s(compute_s: tuple[float, ...], ready_s: tuple[float, ...], start_s: float = 0.0) -> float:
    """When the last layer finishes: layer j starts at max(layer j-1 done, its KV ready)."""
    t = start_s
    for c, r in zip(compute_s, ready_s):
        t = max(t, r) + c
    return t


def estimate_ttft_s(p: Plan, w: Workload, throughput_bps: float, rtt_s: float) -> float:
    """TTFT of plan ``p`` if the layers arrived back to back at ``throughput_bps`` after one round trip."""
    t, ready = rtt_s, []
    for b in p.load_bytes:
        t += b * 8.0 / throughput_bps
        ready.append(t if b else 0.0)
    return pipeline_done_s(p.compute_s, tuple(ready)) + w.query_s
