"""``emu eval kvfetch``: fetch one long context's KV cache across a real bandwidth trace with every scheme.

What runs (everything from one seed):

1. ``contexts`` held-out contexts of ``context_tokens`` tokens (plus ``cont_tokens`` of continuation for
   perplexity) are cut from the held-out token stream at seeded offsets; the model's real KV cache of each is
   extracted and every chunk encoded with every option (``menu.py``).
2. For each of ``trials`` request times spread over the trace, each scheme fetches the context across the
   access-bottleneck network (``emu.topologies.access_bottleneck``: the trace started at the request time, ``rtt_s``
   base RTT, Cubic), installed with ``emu.apps.install`` like any app: ``cachegen`` (adaptive,
   ``BudgetController``; one ``BandwidthMemory`` carried across its requests in time order, like one connection,
   so each request starts on what the earlier ones measured), ``code_rule`` (the released controller's rule),
   ``quant8``, ``quant4``, ``text`` and each fixed level. All schemes see the same request times (paired comparison).
3. Quality of what each fetch delivered: the chosen chunks are decoded (text chunks recomputed from their tokens
   after the decoded chunks before them) and the model continues the held-out text from that cache:
   ``ppl_increase_pct`` against the original cache, next-token accuracy.

TTFT = request → last chunk processed (the receiver processes chunks in order as they arrive, overlapping the
transfer of later chunks) + prefill of ``query_tokens`` (``app.py``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from emu.apps.kvfetch.app import SCHEMES, KVFetchConfig
from emu.apps.kvfetch.controller import FORGET_S, HALF_LIFE_S, PRIOR_BPS, BandwidthMemory
from emu.apps.kvfetch.menu import (AC_DECODE_ELEMENTS_PER_S, DEQUANT_ELEMENTS_PER_S, MAX_CONTEXT, MIN_CONTEXT,
                                   PREFILL_TOKENS_PER_S, Prepared)
from emu.apps.requests import request_offsets, run_request
from emu.rng import SeedTree
from emu.validate import check_int, check_number

DEFAULT_TRACE = "lumos5g/4G/4g_trace_driving_50015_dr"   # Verizon 4G LTE, driving: mean 40, p5 9, p95 80 Mbit/s


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class KVFetchEvalConfig:
    trace: Optional[str] = field(default=DEFAULT_TRACE, metadata=_help(
        "downlink capacity trace (Mahimahi or throughput log); replaced by --rate-bps"))
    rate_bps: Optional[float] = field(default=None, metadata=_help(
        "a constant bottleneck rate in bit/s instead of the trace"))
    rtt_s: float = field(default=0.04, metadata=_help("base round-trip time in s"))
    context_tokens: int = field(default=2048, metadata=_help(f"context length, {MIN_CONTEXT}..{MAX_CONTEXT}"))
    chunk_tokens: int = field(default=512, metadata=_help("tokens per streamed chunk"))
    slo_s: float = field(default=1.0, metadata=_help("TTFT target in s"))
    trials: int = field(default=12, metadata=_help("fetches per scheme, spread over the trace"))
    request_gap_s: Optional[float] = field(default=None, metadata=_help(
        "requests this many seconds apart from a seeded start, instead of spread over the trace"))
    contexts: int = field(default=1, metadata=_help("held-out contexts (fetches cycle through them)"))
    cont_tokens: int = field(default=256, metadata=_help("continuation tokens scored for perplexity"))
    query_tokens: int = field(default=32, metadata=_help("query tokens prefilled after the last chunk"))
    prior_bps: float = field(default=PRIOR_BPS, metadata=_help(
        "throughput assumed before the connection has measured anything, in bit/s"))
    half_life_s: float = field(default=HALF_LIFE_S, metadata=_help(
        "the connection's memory: weight 1 - 0.5^(age / half_life_s) on a new measurement"))
    forget_s: float = field(default=FORGET_S, metadata=_help(
        "the connection's memory: half-life of its decay back to the prior without measurements"))
    delta: bool = field(default=False, metadata=_help("CacheGen levels with delta-to-anchor encoding"))
    prefill_tok_s: float = field(default=PREFILL_TOKENS_PER_S, metadata=_help(
        "receiver prefill (text recompute) throughput in tokens/s: calibrated, scaled to LongChat-7B's recompute "
        "cost per KV element (docs/kvfetch.md)"))
    decode_el_s: float = field(default=AC_DECODE_ELEMENTS_PER_S, metadata=_help(
        "receiver arithmetic-decoding throughput in KV elements/s (calibrated on CPU)"))
    dequant_el_s: float = field(default=DEQUANT_ELEMENTS_PER_S, metadata=_help(
        "receiver dequantisation throughput of the 8-/4-bit baselines in KV elements/s"))
    horizon_s: float = field(default=120.0, metadata=_help("simulated time one fetch may take"))
    models_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.rate_bps is not None:
            check_number("rate_bps", self.rate_bps, lo=1e3, hi=1e12)
            object.__setattr__(self, "trace", None)   # a constant link replaces the (default) trace
        elif self.trace is None:
            raise ValueError("trace: give a trace, or a constant link with rate_bps")
        check_number("rtt_s", self.rtt_s, lo=1e-4, hi=5.0)
        check_int("trials", self.trials, lo=1, hi=10_000)
        if self.request_gap_s is not None:
            check_number("request_gap_s", self.request_gap_s, lo=0.0, hi=1e6)
        check_int("contexts", self.contexts, lo=1, hi=64)
        check_int("cont_tokens", self.cont_tokens, lo=2, hi=4096)
        check_number("horizon_s", self.horizon_s, lo=1.0, hi=1e5)
        self.endpoint_config()  # validates the endpoint's fields (context, SLO, compute model)

    def endpoint_config(self, **extra: Any) -> KVFetchConfig:
        """The per-fetch config (every field the endpoint shares with this one)."""
        names = {f.name for f in dataclasses.fields(KVFetchConfig)} - {"menu"}
        return KVFetchConfig(**{n: getattr(self, n) for n in names if hasattr(self, n)}, **extra)

    def check_inputs(self) -> None:
        """Check the trace and model files (fail before any work, naming the file)."""
        from emu.apps.kvfetch.weights import check_model_files

        if self.trace is not None:
            from emu.links.tracefile import load_trace, resolve_trace_path

            load_trace(resolve_trace_path(self.trace))
        check_model_files(self.models_dir)


class QualityCache:
    """Continuation quality of a mix of per-chunk choices (memoised: mixes repeat across trials)."""

    def __init__(self, model, prep: Prepared) -> None:
        from emu.apps.kvfetch.quality import score_continuation

        self.model = model
        self.prep = prep
        self._memo: dict[tuple, Any] = {}
        self.prev = int(prep.ids[-1])
        self.reference, self.ref_top1 = score_continuation(model, prep.kv, prep.cont, self.prev)

    def assemble(self, choices: tuple[str, ...]) -> np.ndarray:
        from emu.apps.kvfetch.quality import recompute_chunks

        prep = self.prep
        parts = [prep.kv[:, :, s:e] if c == "text" else prep.decoded[c][i]
                 for i, (c, (s, e)) in enumerate(zip(choices, prep.bounds))]
        kv = np.concatenate(parts, axis=2)
        text = [b for c, b in zip(choices, prep.bounds) if c == "text"]
        if text and len(text) < len(choices):
            kv = recompute_chunks(self.model, kv, prep.ids, text)
        return kv

    def score(self, choices: tuple[str, ...]):
        from emu.apps.kvfetch.quality import score_continuation

        if choices not in self._memo:
            if all(c == "text" for c in choices):
                self._memo[choices] = self.reference
            else:
                self._memo[choices], _ = score_continuation(self.model, self.assemble(choices), self.prep.cont,
                                                            self.prev, self.ref_top1)
        return self._memo[choices]


def trial_offsets(config: KVFetchEvalConfig, seed: int, duration_s: Optional[float] = None) -> list[float]:
    """Request times (increasing): ``trials`` spread over the trace, or ``request_gap_s`` apart
    (``emu.apps.requests.request_offsets``). ``duration_s``: the trace's period, if already known."""
    return request_offsets(config.trace, config.trials, seed, "kvfetch.trials", gap_s=config.request_gap_s,
                           duration_s=duration_s)


def run_fetch(config: KVFetchEvalConfig, scheme: str, menu, *, trace_offset_s: float, seed: int,
              memory: Optional[BandwidthMemory] = None, schedule: Any = None):
    """One fetch on its own access-bottleneck network (the trace started ``trace_offset_s`` into it); returns
    the finished endpoint. ``memory``: the connection's, carried from earlier fetches (its clock is trace time);
    ``schedule``: ``config.trace`` already loaded (``emu.links.tracefile.load_trace``), read once for many fetches."""
    trace = config.trace if schedule is None or config.trace is None else schedule
    params = dataclasses.asdict(config.endpoint_config()) | {"menu": menu}
    del params["memory"]
    return run_request("kvfetch", scheme, trace=trace, rate_bps=config.rate_bps, trace_offset_s=trace_offset_s,
                       rtt_s=config.rtt_s, seed=seed, horizon_s=config.horizon_s, what="fetch", memory=memory,
                       **params)


def evaluate(config: KVFetchEvalConfig, *, schemes: tuple[str, ...] = SCHEMES, seed: int = 0) -> dict[str, dict]:
    """Run ``schemes`` on the same contexts and request times; return ``{scheme: metrics}`` (see module doc)."""
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise ValueError(f"schemes: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")
    config.check_inputs()   # bad files fail here, before torch is imported
    import torch

    from emu.apps.kvfetch.menu import make_menu, pick_context, prepare_context
    from emu.apps.kvfetch.weights import load_model
    from emu.apps.textdata import held_out_stream

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, tokenizer, _ = load_model(config.models_dir)
    stream = held_out_stream(tokenizer)
    rng = SeedTree(seed).rng("kvfetch.contexts")
    compute = config.endpoint_config().compute()
    preps, menus, qualities = [], [], []
    for _ in range(config.contexts):
        ids, cont = pick_context(stream, rng, config.context_tokens, config.cont_tokens)
        prep = prepare_context(model, tokenizer, ids, cont, chunk_tokens=config.chunk_tokens, delta=config.delta)
        preps.append(prep)
        menus.append(make_menu(prep, compute, n_layers=model.cfg.n_layers, channels=model.cfg.kv_channels,
                               query_tokens=config.query_tokens))
        qualities.append(QualityCache(model, prep))
    schedule = None
    if config.trace is not None:
        from emu.links.tracefile import load_trace

        schedule = load_trace(config.trace)
    offsets = trial_offsets(config, seed, None if schedule is None else schedule.period_s)
    reference_ppl = float(np.mean([q.reference.ppl for q in qualities]))
    fp16_bytes = float(np.mean([p.kv.size * 2 for p in preps]))
    out: dict[str, dict] = {}
    for scheme in schemes:
        rows = []
        memory = config.endpoint_config().new_memory() if scheme == "cachegen" else None
        for k, t0 in enumerate(offsets):
            c = k % config.contexts
            fetch = run_fetch(config, scheme, menus[c], trace_offset_s=t0, seed=seed, memory=memory,
                              schedule=schedule)
            q = qualities[c].score(tuple(fetch.choices))
            ref = qualities[c].reference
            rows.append({
                "ttft_s": fetch.ttft_s, "fetch_s": fetch.fetch_s, "sent_bytes": fetch.sent_bytes,
                "ppl": q.ppl, "ppl_increase_pct": 100.0 * (q.ppl / ref.ppl - 1.0),
                "acc_drop_pts": 100.0 * (ref.accuracy - q.accuracy),
                "agree": q.agree / q.n, "slo_met": fetch.ttft_s <= config.slo_s, "choices": fetch.choices,
            })
        ttft = np.array([r["ttft_s"] for r in rows])
        counts: dict[str, int] = {}
        for r in rows:
            for ch in r["choices"]:
                counts[ch] = counts.get(ch, 0) + 1
        out[scheme] = {
            "ttft_s": float(ttft.mean()),
            "ttft_p50_s": float(np.quantile(ttft, 0.5)),
            "ttft_p95_s": float(np.quantile(ttft, 0.95)),
            "fetch_s": float(np.mean([r["fetch_s"] for r in rows])),
            "sent_bytes": float(np.mean([r["sent_bytes"] for r in rows])),
            "ppl": float(np.mean([r["ppl"] for r in rows])),
            "ppl_increase_pct": float(np.mean([r["ppl_increase_pct"] for r in rows])),
            "acc_drop_pts": float(np.mean([r["acc_drop_pts"] for r in rows])),
            "agree": float(np.mean([r["agree"] for r in rows])),
            "slo_met": float(np.mean([r["slo_met"] for r in rows])),
            "trials": len(rows),
            "reference_ppl": reference_ppl,
            "fp16_bytes": fp16_bytes,
            "choices": counts,
            "ttft_per_trial_s": [float(x) for x in ttft],
        }
    return out
