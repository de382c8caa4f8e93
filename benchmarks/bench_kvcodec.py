"""KV codec speed and compression on CPU: encode/decode MB/s and bits per element against the entropy bound.

    python benchmarks/bench_kvcodec.py                 # table
    python benchmarks/bench_kvcodec.py --json          # one JSON object keyed by codec

KV: the committed model's real cache of ``--context-tokens`` held-out tokens (layers x K|V x tokens x channels),
cut into chunks of ``--chunk-tokens``. MB/s counts the cache as float16 (2 bytes per element), the size a serving
engine holds, so "encode 20 MB/s" means 20 MB of fp16 KV compressed per second. ``bits_total`` includes every
byte of the chunks (headers, frequency tables, scales); ``bits_payload`` is the arithmetic-coded part; ``entropy``
is the empirical entropy of the coded symbols under the same per-(layer, K|V, channel) grouping (the bound a static
per-chunk model can reach, tables not counted). Each timing is the median of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="KV codec speed and compression on CPU")
    parser.add_argument("--context-tokens", type=int, default=2048)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from emu.apps.kvfetch.codec import (CacheGenCodec, Fp16Codec, UniformCodec, bits_per_element, cachegen_levels,
                                        chunk_bounds, decode_chunk)
    from emu.apps.textdata import held_out_stream
    from emu.apps.kvfetch.quality import original_kv
    from emu.apps.kvfetch.weights import load_model

    torch.set_num_threads(args.threads)
    model, tokenizer, _ = load_model()
    kv = original_kv(model, held_out_stream(tokenizer)[:args.context_tokens])
    bounds = chunk_bounds(kv.shape[2], args.chunk_tokens)
    fp16_mb = kv.size * 2 / 1e6
    levels = cachegen_levels(model.cfg.n_layers)
    codecs = {name: CacheGenCodec(level) for name, level in levels.items()}
    codecs.update({f"{name}+delta": CacheGenCodec(level, delta=True) for name, level in levels.items()})
    codecs["level2/tables8"] = CacheGenCodec(levels["level2"], table_bits=8)
    codecs["level2/tables16"] = CacheGenCodec(levels["level2"], table_bits=16)
    codecs["quant8"] = UniformCodec(8)
    codecs["quant4"] = UniformCodec(4)
    codecs["fp16"] = Fp16Codec()
    out = {}
    for name, codec in codecs.items():
        enc_t, dec_t = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            chunks = [codec.encode(kv[:, :, s:e]) for s, e in bounds]
            enc_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            decoded = [decode_chunk(c.data) for c in chunks]
            dec_t.append(time.perf_counter() - t0)
        again = [codec.encode(kv[:, :, s:e]).data for s, e in bounds]
        exact = all(a == c.data for a, c in zip(again, chunks)) and all(
            np.array_equal(decode_chunk(c.data), d) for c, d in zip(chunks, decoded))
        bpe = bits_per_element(chunks)
        err = np.concatenate(decoded, axis=2) - kv
        out[name] = {
            "encode_MBps": fp16_mb / float(np.median(enc_t)),
            "decode_MBps": fp16_mb / float(np.median(dec_t)),
            "bytes": int(sum(c.nbytes for c in chunks)),
            "bits_total": bpe["total"], "bits_payload": bpe["payload"], "bits_tables": bpe["tables"],
            "bits_scales": bpe["scales"], "entropy": bpe["entropy"],
            "ratio_vs_quant8": None,
            "rmse": float(np.sqrt(np.mean(err ** 2))),
            "bit_exact": bool(exact),
        }
    for row in out.values():
        row["ratio_vs_quant8"] = out["quant8"]["bytes"] / row["bytes"]
    meta = {"context_tokens": args.context_tokens, "chunk_tokens": args.chunk_tokens, "elements": int(kv.size),
            "fp16_MB": fp16_mb, "threads": args.threads}
    if args.json:
        print(json.dumps({"_setup": meta, **out}))
        return 0
    print(f"KV of {args.context_tokens} tokens ({fp16_mb:.2f} MB fp16), chunks of {args.chunk_tokens}")
    cols = ("encode_MBps", "decode_MBps", "bits_total", "bits_payload", "entropy", "ratio_vs_quant8", "rmse")
    print(f"{'codec':<18}" + "".join(f"{c:>16}" for c in cols) + "  exact")
    for name, row in out.items():
        ent = row["entropy"]
        print(f"{name:<18}" + "".join(
            f"{(row[c] if not (c == 'entropy' and ent != ent) else float('nan')):>16.3f}" for c in cols)
              + f"  {row['bit_exact']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
