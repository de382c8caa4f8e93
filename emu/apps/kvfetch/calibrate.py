"""Measure the receiver compute model on this machine: ``python -m emu.apps.kvfetch.calibrate [--json]``.

Prints prefill throughput of the committed model (tokens/s, a held-out context of ``--context-tokens``), arithmetic
decoding throughput of the CacheGen levels and dequantisation throughput of the uniform baselines (elements/s),
each the median of ``--repeats`` runs with torch limited to ``--threads`` threads. The defaults in
``emu.apps.kvfetch.eval`` (``PREFILL_TOKENS_PER_S`` …) were set from this script; pass ``--prefill-tok-s`` to
``emu eval kvfetch`` to use another machine's number.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def measure(context_tokens: int = 2048, repeats: int = 5, threads: int = 2) -> dict:
    import torch

    from emu.apps.kvfetch.codec import CacheGenCodec, UniformCodec, cachegen_levels, chunk_bounds, decode_chunk
    from emu.apps.kvfetch.data import held_out_stream
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
    out = {"context_tokens": context_tokens, "threads": threads,
           "prefill_tokens_per_s": context_tokens / float(np.median(times))}
    bounds = chunk_bounds(context_tokens, 512)
    for name, codec in [*cachegen_levels(model.cfg.n_layers).items(), ("quant8", UniformCodec(8))]:
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
