"""``emu eval kvfetch``: fetch one long context's KV cache across a real bandwidth trace with every scheme.

What runs (everything from one seed):

1. ``contexts`` held-out contexts of ``context_tokens`` tokens (plus ``cont_tokens`` of continuation for
   perplexity) are cut from the held-out token stream at seeded offsets; the model's real KV cache of each is
   extracted.
2. Each context is cut into chunks of ``chunk_tokens`` and every chunk is encoded with every option: the CacheGen
   levels (``level1`` … ``level3``, bins per layer from the released table), 8- and 4-bit uniform quantisation,
   and text (the chunk's UTF-8 bytes). Sizes are the real encoded sizes.
3. For each of ``trials`` request times spread over the trace, each scheme fetches the context across
   server -- router -- client (router->client = the trace, ``rtt_s`` base RTT, Cubic): ``cachegen`` (adaptive,
   ``BudgetController``), ``code_rule`` (the released controller's rule), ``quant8``, ``quant4``, ``text`` and
   each fixed level. All schemes see the same request times (paired comparison).
4. Quality of what each fetch delivered: the chosen chunks are decoded (text chunks recomputed from their tokens
   after the decoded chunks before them) and the model continues the held-out text from that cache:
   ``ppl_increase_pct`` against the original cache, next-token accuracy.

Receiver compute model (``ComputeModel``; [DESIGN], calibrated on this project's CPU, see docs/kvfetch.md):
recompute (prefill) at ``prefill_tokens_per_s``, arithmetic decoding at ``ac_decode_elements_per_s``,
dequantisation at ``dequant_elements_per_s``; TTFT = request → last chunk processed (the receiver processes
chunks in order as they arrive, overlapping the transfer of later chunks) + prefill of ``query_tokens``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from emu.rng import SeedTree

# Calibration (docs/kvfetch.md "Receiver compute model"): ``python -m emu.apps.kvfetch.calibrate`` on this
# project's 2-core CPU with the committed model, torch 2.13 with 2 threads, median of 5 runs. Measured prefill:
# 10,152 tokens/s; the default is that times ``served_model_scale`` (0.094): LongChat-7B's recompute cost per KV
# element on this hardware. Decoding: the slowest CacheGen level (level3, 39.6 M elements/s; level1 45.7 M);
# dequantisation: the slower uniform baseline (4-bit, 1.14 G elements/s).
PREFILL_TOKENS_PER_S = 956.0           # recompute of text (served-model scale)
AC_DECODE_ELEMENTS_PER_S = 40e6        # constriction range decoding + dequantisation
DEQUANT_ELEMENTS_PER_S = 1.1e9         # uint8/nibble unpack + scale (numpy)
DEFAULT_TRACE = "lumos5g/4G/4g_trace_driving_50015_dr"   # Verizon 4G LTE, driving: mean 40, p5 9, p95 80 Mbit/s

MIN_CONTEXT, MAX_CONTEXT = 256, 8192


def _num(name: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.floating))
    if isinstance(value, bool) or not ok or not (lo <= value <= hi) or (not integer and not math.isfinite(value)):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}: must be {kind} in [{lo:g}, {hi:g}], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ComputeModel:
    """Seconds the receiver spends per chunk (decode or recompute) and on the query."""

    prefill_tokens_per_s: float = PREFILL_TOKENS_PER_S
    ac_decode_elements_per_s: float = AC_DECODE_ELEMENTS_PER_S
    dequant_elements_per_s: float = DEQUANT_ELEMENTS_PER_S

    def __post_init__(self) -> None:
        _num("prefill_tokens_per_s", self.prefill_tokens_per_s, 1.0, 1e9)
        _num("ac_decode_elements_per_s", self.ac_decode_elements_per_s, 1.0, 1e12)
        _num("dequant_elements_per_s", self.dequant_elements_per_s, 1.0, 1e12)

    def seconds(self, option: str, n_tokens: int, n_elements: int) -> float:
        if option == "text":
            return n_tokens / self.prefill_tokens_per_s
        if option.startswith("level"):
            return n_elements / self.ac_decode_elements_per_s
        if option.startswith("quant"):
            return n_elements / self.dequant_elements_per_s
        return 0.0


@dataclass(frozen=True, kw_only=True)
class KVFetchEvalConfig:
    trace: Optional[str] = DEFAULT_TRACE   # None: a constant ``rate_bps`` link
    rate_bps: float = 40e6
    context_tokens: int = 2048
    chunk_tokens: int = 512                # apps.md §4.4: the released 1500-token chunks scaled to the small model
    slo_s: float = 1.0
    rtt_s: float = 0.04
    trials: int = 12
    contexts: int = 1
    cont_tokens: int = 256
    query_tokens: int = 32
    prior_bps: float = 20e6                # throughput assumed before the first measurement [DESIGN]
    delta: bool = False                    # CacheGen levels with the paper's delta-to-anchor encoding
    compute: ComputeModel = field(default_factory=ComputeModel)
    model_dir: Optional[str] = None

    def __post_init__(self) -> None:
        _num("context_tokens", self.context_tokens, MIN_CONTEXT, MAX_CONTEXT, integer=True)
        _num("chunk_tokens", self.chunk_tokens, 16, MAX_CONTEXT, integer=True)
        _num("slo_s", self.slo_s, 1e-3, 600.0)
        _num("rtt_s", self.rtt_s, 1e-4, 5.0)
        _num("rate_bps", self.rate_bps, 1e3, 1e12)
        _num("trials", self.trials, 1, 10_000, integer=True)
        _num("contexts", self.contexts, 1, 64, integer=True)
        _num("cont_tokens", self.cont_tokens, 2, 4096, integer=True)
        _num("query_tokens", self.query_tokens, 1, 4096, integer=True)
        _num("prior_bps", self.prior_bps, 1e3, 1e12)

    def validate_files(self) -> dict:
        """Check the trace and model files (fail before any work, naming the file); return the model card."""
        from emu.apps.kvfetch.weights import MODEL_DIR, check_model_files

        if self.trace is not None:
            from emu.links.tracefile import load_trace, resolve_trace_path

            load_trace(resolve_trace_path(self.trace))
        return check_model_files(Path(self.model_dir) if self.model_dir else MODEL_DIR)


SCHEMES_FIXED = ("quant8", "quant4", "text")


@dataclass
class Prepared:
    """One context: its tokens, original KV and every option's encoded chunks."""

    ids: np.ndarray
    cont: np.ndarray
    kv: np.ndarray
    bounds: list[tuple[int, int]]
    encoded: dict[str, list]          # option -> [EncodedChunk | bytes (text)]
    decoded: dict[str, list]          # option -> [np.ndarray] per chunk (KV options)
    nbytes: dict[str, list[int]]


def prepare_context(model, tokenizer, ids: np.ndarray, cont: np.ndarray, config: KVFetchEvalConfig) -> Prepared:
    from emu.apps.kvfetch.codec import CacheGenCodec, UniformCodec, cachegen_levels, chunk_bounds, decode_chunk
    from emu.apps.kvfetch.quality import original_kv

    kv = original_kv(model, ids)
    bounds = chunk_bounds(len(ids), config.chunk_tokens)
    codecs: dict[str, Any] = {name: CacheGenCodec(level, delta=config.delta)
                              for name, level in cachegen_levels(model.cfg.n_layers).items()}
    codecs["quant8"] = UniformCodec(8)
    codecs["quant4"] = UniformCodec(4)
    encoded, decoded, nbytes = {}, {}, {}
    for name, codec in codecs.items():
        chunks = [codec.encode(kv[:, :, s:e]) for s, e in bounds]
        encoded[name] = chunks
        decoded[name] = [decode_chunk(c.data) for c in chunks]
        nbytes[name] = [c.nbytes for c in chunks]
    texts = [tokenizer.decode(ids[s:e].tolist()).encode("utf-8") for s, e in bounds]
    encoded["text"] = texts
    nbytes["text"] = [len(t) for t in texts]
    return Prepared(ids, cont, kv, bounds, encoded, decoded, nbytes)


def make_menu(prep: Prepared, config: KVFetchEvalConfig, n_layers: int, channels: int):
    from emu.apps.kvfetch.controller import ChunkMenu

    gpu = {}
    for option in prep.nbytes:
        gpu[option] = [config.compute.seconds(option, e - s, n_layers * 2 * (e - s) * channels)
                       for s, e in prep.bounds]
    levels = tuple(sorted((o for o in prep.nbytes if o.startswith("level")), reverse=True))
    q = config.query_tokens / config.compute.prefill_tokens_per_s
    return ChunkMenu(nbytes=prep.nbytes, gpu_s=gpu, levels=levels, query_prefill_s=q)


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


def trial_offsets(config: KVFetchEvalConfig, seed: int) -> list[float]:
    """Request times: one per ``trials``, spread evenly over the trace with a seeded jitter."""
    rng = SeedTree(seed).rng("kvfetch.trials")
    if config.trace is None:
        return [0.0] * config.trials
    from emu.links.tracefile import load_trace, resolve_trace_path

    duration = load_trace(resolve_trace_path(config.trace)).period_s
    usable = max(1.0, duration - 20.0)
    step = usable / config.trials
    return [float(k * step + rng.uniform(0, step)) for k in range(config.trials)]


def evaluate(config: Optional[KVFetchEvalConfig] = None, seed: int = 0, **overrides: Any) -> dict[str, dict]:
    """Run every scheme; return ``{scheme: metrics}`` (see module doc)."""
    import torch

    from emu.apps.kvfetch.app import run_fetch
    from emu.apps.kvfetch.controller import BudgetController, FixedController, SloSplitController
    from emu.apps.kvfetch.data import held_out_stream
    from emu.apps.kvfetch.weights import load_model

    if config is None:
        config = KVFetchEvalConfig(**overrides)
    elif overrides:
        config = replace(config, **overrides)
    config.validate_files()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, tokenizer, _ = load_model(Path(config.model_dir) if config.model_dir else None)
    stream = held_out_stream(tokenizer)
    need = config.context_tokens + config.cont_tokens
    if need > len(stream):
        raise ValueError(f"context_tokens: {config.context_tokens} + {config.cont_tokens} continuation tokens exceed "
                         f"the held-out text ({len(stream)} tokens)")
    rng = SeedTree(seed).rng("kvfetch.contexts")
    preps, menus, qualities = [], [], []
    for _ in range(config.contexts):
        start = int(rng.integers(0, len(stream) - need + 1))
        ids, cont = stream[start:start + config.context_tokens], stream[start + config.context_tokens:start + need]
        prep = prepare_context(model, tokenizer, ids, cont, config)
        preps.append(prep)
        menus.append(make_menu(prep, config, model.cfg.n_layers, model.cfg.kv_channels))
        qualities.append(QualityCache(model, prep))
    offsets = trial_offsets(config, seed)
    levels = menus[0].levels
    schemes: dict[str, Any] = {
        "cachegen": lambda: BudgetController(config.slo_s, config.prior_bps),
        "code_rule": lambda: SloSplitController(config.slo_s, config.prior_bps),
        **{name: (lambda n=name: FixedController(n)) for name in SCHEMES_FIXED},
        **{name: (lambda n=name: FixedController(n)) for name in sorted(levels)},
    }
    out: dict[str, dict] = {}
    for scheme, make in schemes.items():
        rows = []
        for k, t0 in enumerate(offsets):
            c = k % config.contexts
            res = run_fetch(menus[c], make(), trace=config.trace, rate_bps=config.rate_bps, rtt_s=config.rtt_s,
                            start_s=t0, seed=seed)
            q = qualities[c].score(tuple(res.choices))
            ref = qualities[c].reference
            rows.append({
                "ttft_s": res.ttft_s, "fetch_s": res.fetch_s, "bytes": res.total_bytes,
                "ppl": q.ppl, "ppl_increase_pct": 100.0 * (q.ppl / ref.ppl - 1.0),
                "acc": q.accuracy, "acc_drop_pts": 100.0 * (ref.accuracy - q.accuracy),
                "agree": q.agree / q.n, "slo_met": res.ttft_s <= config.slo_s, "choices": res.choices,
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
            "bytes": float(np.mean([r["bytes"] for r in rows])),
            "ppl": float(np.mean([r["ppl"] for r in rows])),
            "ppl_increase_pct": float(np.mean([r["ppl_increase_pct"] for r in rows])),
            "acc_drop_pts": float(np.mean([r["acc_drop_pts"] for r in rows])),
            "agree": float(np.mean([r["agree"] for r in rows])),
            "slo_met": float(np.mean([r["slo_met"] for r in rows])),
            "choices": counts,
            "trials": len(rows),
            "ttft_per_trial_s": [float(x) for x in ttft],
        }
    out["_setup"] = {
        "trace": config.trace, "context_tokens": config.context_tokens, "chunk_tokens": config.chunk_tokens,
        "slo_s": config.slo_s, "rtt_s": config.rtt_s, "trials": config.trials, "contexts": config.contexts,
        "seed": seed, "reference_ppl": float(np.mean([q.reference.ppl for q in qualities])),
        "fp16_bytes": float(np.mean([p.kv.size * 2 for p in preps])),
        "compute": config.compute.__dict__,
    }
    return out
