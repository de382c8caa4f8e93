"""``emu eval kvblend``: CacheBlend against its baselines, over a real bandwidth trace.

What runs (everything from one seed):

1. ``contexts`` windows of ``chunks · chunk_tokens + cont_tokens`` consecutive held-out tokens (``probe``); every
   chunk is prefilled alone by the committed kvfetch model (K before RoPE), the continuation is the query.
2. For each of ``trials`` request times spread over the trace, each scheme serves one request across
   ``access_bottleneck`` (KV store = ``s0``, inference server = ``d0``, the trace on the bottleneck, ``rtt_s``):
   ``cacheblend`` (fixed ``ratio``), ``cacheblend_adaptive`` (ratio ≥ ``quality_floor`` chosen to hide behind
   loading; one ``BandwidthMemory`` carried across its requests in time order, like one connection),
   ``full_recompute``, ``prefix_reuse``, ``full_reuse``. All schemes see the same request times.
   ``kv_codec`` picks how the store keeps the caches: fp16, or a CacheGen level of kvfetch's codec (real
   encoded sizes; the receiver decodes each layer before using it, at kvfetch's measured decoding speed).
3. The quality of what each request computed: the blend pass at the ratio that request used (or full reuse,
   prefix reuse, full prefill) on the trial's context, scored on the continuation against a full prefill:
   ``quality_loss_pct`` (continuation NLL increase), ``top1_agreement``, ``kl_nats``.

Timing model (``pipeline.py``): the served model is Mistral-7B (32 layers); the recompute throughput
``prefill_tok_s`` is kvfetch's calibration scaled to its cost per KV element; the bytes are our model's real
fp16 caches. TTFT = request → last layer done + query prefill (``cont_tokens`` tokens).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from emu.apps.kvblend.app import KV_BYTES_PER_TOKEN
from emu.apps.kvfetch.controller import HALF_LIFE_S, PRIOR_BPS, BandwidthMemory
from emu.apps.kvblend.pipeline import SCHEMES, SERVED_PREFILL_TOKENS_PER_S
from emu.apps.requests import request_offsets, run_request as serve_request
from emu.validate import check_choice, check_int, check_number

DEFAULT_TRACE = "lumos5g/4G/4g_trace_driving_50015_dr"   # Verizon 4G LTE, driving: mean 40, p5 9 Mbit/s
MEASURES = ("value", "key", "random")
KV_CODECS = ("fp16", "level0", "level1", "level2", "level3")   # codec.py (kvfetch's CacheGen levels)


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class KVBlendEvalConfig:
    trace: Optional[str] = field(default=DEFAULT_TRACE, metadata=_help(
        "bottleneck capacity trace (Mahimahi or throughput log); replaced by --rate-bps"))
    rate_bps: Optional[float] = field(default=None, metadata=_help("a constant bottleneck rate in bit/s instead"))
    chunks: int = field(default=8, metadata=_help("chunks of the context, each cached on its own"))
    chunk_tokens: int = field(default=128, metadata=_help("tokens per chunk"))
    cont_tokens: int = field(default=32, metadata=_help("the query: prefilled in the TTFT, scored for quality"))
    # LMCache's default blend_recompute_ratio (apps2.md §2.1); the released examples use 0.16 and 0.18.
    ratio: float = field(default=0.15, metadata=_help("cacheblend's fixed recompute ratio"))
    quality_floor: float = field(default=0.15, metadata=_help("cacheblend_adaptive's lowest ratio"))
    check_layer: int = field(default=1, metadata=_help("layer whose KV deviation selects the tokens"))
    measure: str = field(default="value", metadata=_help("deviation: value (released code), key (LMCache v1), "
                                                         "random"))
    kv_codec: str = field(default="fp16", metadata=_help("how the store keeps the caches: fp16, level0..level3"))
    rtt_s: float = field(default=0.04, metadata=_help("base round-trip time"))
    trials: int = field(default=8, metadata=_help("requests per scheme, spread over the trace"))
    contexts: int = field(default=2, metadata=_help("held-out contexts (requests cycle through them)"))
    prefill_tok_s: float = SERVED_PREFILL_TOKENS_PER_S
    prior_bps: float = PRIOR_BPS
    half_life_s: float = HALF_LIFE_S
    models_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.rate_bps is not None:
            check_number("rate_bps", self.rate_bps, lo=1e3, hi=1e12)
            object.__setattr__(self, "trace", None)   # a constant link replaces the (default) trace
        elif self.trace is None:
            raise ValueError("trace: give a trace, or a constant link with rate_bps")
        check_int("chunks", self.chunks, lo=1, hi=64)
        check_int("chunk_tokens", self.chunk_tokens, lo=2, hi=2048)
        check_int("cont_tokens", self.cont_tokens, lo=2, hi=1024)
        if self.chunks * self.chunk_tokens + self.cont_tokens > 8192:
            raise ValueError(f"chunks: {self.chunks} chunks of {self.chunk_tokens} tokens plus {self.cont_tokens} "
                             "continuation tokens exceed 8192 tokens")
        check_number("ratio", self.ratio, lo=0.0, hi=1.0)
        check_number("quality_floor", self.quality_floor, lo=0.0, hi=1.0)
        check_int("check_layer", self.check_layer, lo=0, hi=4)   # our model has 6 layers
        check_choice("measure", self.measure, MEASURES)
        check_choice("kv_codec", self.kv_codec, KV_CODECS)
        check_number("rtt_s", self.rtt_s, lo=1e-4, hi=5.0)
        check_int("trials", self.trials, lo=1, hi=10_000)
        check_int("contexts", self.contexts, lo=1, hi=256)
        check_number("prefill_tok_s", self.prefill_tok_s, lo=1e-3, hi=1e9)
        check_number("prior_bps", self.prior_bps, lo=1e3, hi=1e12)
        check_number("half_life_s", self.half_life_s, lo=1e-3, hi=1e6)

    def validate_files(self) -> None:
        """Check the trace and the model files before any work (errors name the file)."""
        from emu.apps.kvfetch.weights import check_model_files

        if self.trace is not None:
            from emu.links.tracefile import load_trace, resolve_trace_path

            load_trace(resolve_trace_path(self.trace))
        check_model_files(self.models_dir)


def trial_offsets(config: KVBlendEvalConfig, seed: int) -> list[float]:
    """Request times: ``trials`` spread evenly over the trace with a seeded jitter, increasing
    (``emu.apps.requests.request_offsets``; 10 s apart on a constant link)."""
    return request_offsets(config.trace, config.trials, seed, "kvblend.trials")


def run_request(config: KVBlendEvalConfig, scheme: str, offset_s: float, seed: int,
                memory: Optional[BandwidthMemory], kv_bytes_per_token: int = KV_BYTES_PER_TOKEN,
                decode_s_per_token: float = 0.0) -> dict[str, Any]:
    """One request of ``scheme`` starting ``offset_s`` into the trace; the endpoint's result."""
    ep = serve_request(
        "kvblend", scheme, trace=config.trace, rate_bps=config.rate_bps, trace_offset_s=offset_s,
        rtt_s=config.rtt_s, seed=seed, horizon_s=600.0, memory=memory, chunks=config.chunks,
        chunk_tokens=config.chunk_tokens, query_tokens=config.cont_tokens, ratio=config.ratio,
        quality_floor=config.quality_floor, check_layer=config.check_layer, kv_bytes_per_token=kv_bytes_per_token,
        prefill_tok_s=config.prefill_tok_s, prior_bps=config.prior_bps, rtt_hint_s=config.rtt_s,
        decode_s_per_token=decode_s_per_token)
    return ep.result()


def quality_variant(config: KVBlendEvalConfig, mode: str, ratio: float) -> tuple:
    if mode == "full_recompute":
        return ("full_prefill",)
    if mode in ("full_reuse", "prefix_reuse"):
        return (mode,)
    return ("cacheblend", float(ratio), config.check_layer, config.measure)


def evaluate(config: Optional[KVBlendEvalConfig] = None, *, schemes: tuple[str, ...] = SCHEMES,
             seed: int = 0) -> dict[str, dict]:
    """Run ``schemes``; return ``{scheme: metrics}`` (see the module doc)."""
    import torch

    from emu.apps.kvblend.probe import Probe, ProbeConfig
    from emu.apps.kvfetch.weights import load_model

    config = config if config is not None else KVBlendEvalConfig()
    for s in schemes:
        if s not in SCHEMES:
            raise ValueError(f"schemes: unknown {s!r}; valid: {', '.join(SCHEMES)}")
    config.validate_files()
    torch.set_num_threads(1)   # passes of a few hundred tokens: a second thread mostly spin-waits on shared cores
    model, tokenizer, _ = load_model(config.models_dir)
    probe = Probe.build(model, tokenizer, ProbeConfig(chunks=config.chunks, chunk_tokens=config.chunk_tokens,
                                                      cont_tokens=config.cont_tokens, samples=config.contexts),
                        seed=seed)
    offsets = trial_offsets(config, seed)
    bytes_per_token, decode_s_per_token = KV_BYTES_PER_TOKEN, 0.0
    if config.kv_codec != "fp16":
        from emu.apps.kvfetch.menu import AC_DECODE_ELEMENTS_PER_S

        sizes = [sum(probe.coded(k, config.kv_codec)[1]) for k in range(config.contexts)]
        tokens = sum(sum(c.n_tokens for c in s.caches) for s in probe.samples)
        bytes_per_token = int(math.ceil(sum(sizes) / tokens))
        elements_per_token = 2 * model.cfg.n_layers * model.cfg.kv_channels
        decode_s_per_token = elements_per_token / AC_DECODE_ELEMENTS_PER_S
    out: dict[str, dict] = {}
    for scheme in schemes:
        memory = BandwidthMemory(config.prior_bps, config.half_life_s) if scheme == "cacheblend_adaptive" else None
        rows = []
        for k, t0 in enumerate(offsets):
            res = run_request(config, scheme, t0, seed, memory, bytes_per_token, decode_s_per_token)
            q = probe.run(quality_variant(config, res["mode"], res["ratio"]), indices=[k % config.contexts],
                          codec=config.kv_codec)
            rows.append({**res, **q})
        ttft = np.array([r["ttft_s"] for r in rows])
        ratios = [r["ratio"] for r in rows if not math.isnan(r["ratio"])]
        out[scheme] = {
            "ttft_s": float(ttft.mean()),
            "ttft_p50_s": float(np.quantile(ttft, 0.5)),
            "ttft_p95_s": float(np.quantile(ttft, 0.95)),
            "quality_loss_pct": float(np.mean([r["quality_loss_pct"] for r in rows])),
            "top1_agreement": float(np.mean([r["top1_agreement"] for r in rows])),
            "kl_nats": float(np.mean([r["kl_nats"] for r in rows])),
            "recompute_frac": float(np.mean([r["recompute_frac"] for r in rows])),
            "bytes": float(np.mean([r["bytes"] for r in rows])),
            "ratio": float(np.mean(ratios)) if ratios else math.nan,
            "recompute_fallbacks": int(sum(r["mode"] == "full_recompute" for r in rows))
            if scheme.startswith("cacheblend") else 0,
            "trials": len(rows),
            "ttft_per_trial_s": [float(x) for x in ttft],
        }
    return out
