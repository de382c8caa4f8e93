"""Measure the receiver compute model on this machine: ``python -m emu.apps.kvfetch.calibrate [--json]``.

Prints prefill throughput of the committed model (tokens/s, a held-out context of ``--context-tokens``), arithmetic
decoding throughput of the CacheGen levels and dequantisation throughput of the uniform baselines (elements/s),
each the median of ``--repeats`` runs with torch limited to ``--threads`` threads, and the prefill throughput
scaled to the served model (below). The defaults in ``emu.apps.kvfetch.menu`` (``PREFILL_TOKENS_PER_S`` …) were
set from this script; pass ``--prefill-tok-s`` / ``--decode-el-s`` to ``emu eval kvfetch`` for other numbers.

**Served-model scaling.** Our model is 3.4 M parameters; recomputing its KV is ~10x cheaper *per KV element* than
for the model CacheGen's released code evaluates (LongChat-7B-16k: Llama-7B, 32 layers, d_model 4096, multi-head
attention). A receiver that recomputed text at our model's raw speed would make text recompute look far cheaper
than it is for any served LLM. The emulated receiver therefore recomputes at ``prefill_flops_per_kv_element(ours)
/ prefill_flops_per_kv_element(LongChat-7B)`` times the measured throughput: the hardware is this CPU, the
recompute cost per KV element is the 7B model's. Arithmetic decoding and dequantisation cost the same per element
for any model, so they are used as measured.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


# LongChat-7B-16k (Llama-7B architecture): parameters, layers, d_model, KV channels per layer (K or V; no GQA).
LONGCHAT_7B = {"params": 6.74e9, "n_layers": 32, "d_model": 4096, "kv_channels": 4096}


def prefill_flops_per_kv_element(params: float, n_layers: int, d_model: int, kv_channels: int,
                                 context_tokens: int) -> float:
    """Prefill FLOPs per token (2 per parameter for the matmuls, plus QKᵀ and AV over the average prefix of
    ``context_tokens / 2``: 2 · 2 · n_layers · d_model · context / 2) divided by the KV elements a token adds
    (2 · n_layers · kv_channels)."""
    flops = 2.0 * params + 2.0 * n_layers * d_model * context_tokens
    return flops / (2.0 * n_layers * kv_channels)


def served_model_scale(cfg, params: int, context_tokens: int = 2048) -> float:
    """Factor from our model's measured prefill throughput to LongChat-7B's recompute cost per KV element."""
    ours = prefill_flops_per_kv_element(params, cfg.n_layers, cfg.d_model, cfg.kv_channels, context_tokens)
    served = prefill_flops_per_kv_element(**LONGCHAT_7B, context_tokens=context_tokens)
    return ours / served


def measure(context_tokens: int = 2048, repeats: int = 5, threads: int = 2) -> dict:
    import torch

    from emu.apps.kvfetch.codec import CacheGenCodec, UniformCodec, cachegen_levels, chunk_bounds, decode_chunk
    from emu.apps.textdata import held_out_stream
    from emu.apps.kvfetch.model import cache_to_numpy, prefill
    from emu.apps.kvfetch.weights import load_model

    torch.set_num_threads(threads)
    model, tokenizer, _ = load_model()
    ids = held_out_stream(tokenizer)[:context_tokens]
    prefill(model, ids[:256])
    times = []
    cache = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        cache, _ = prefill(model, ids)
        times.append(time.perf_counter() - t0)
    kv = cache_to_numpy(cache)
    tok_s = context_tokens / float(np.median(times))
    scale = served_model_scale(model.cfg, model.n_params(), context_tokens)
    out = {"context_tokens": context_tokens, "threads": threads, "prefill_tokens_per_s": tok_s,
           "served_model_scale": scale, "prefill_tokens_per_s_served": tok_s * scale}
    bounds = chunk_bounds(context_tokens, 512)
    codecs = [(name, CacheGenCodec(level)) for name, level in cachegen_levels(model.cfg.n_layers).items()]
    for name, codec in [*codecs, ("quant8", UniformCodec(8)), ("quant4", UniformCodec(4))]:
        blobs = [codec.encode(kv[:, :, s:e]).data for s, e in bounds]
        dt = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in blobs:
                decode_chunk(b)
            dt.append(time.perf_counter() - t0)
        out[f"decode_elements_per_s_{name}"] = kv.size / float(np.median(dt))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context-tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.context_tokens, args.repeats, args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>32}: {v:,.1f}" if isinstance(v, float) else f"{k:>32}: {v}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
