"""``emu eval kvfetch`` and ``emu train lm`` (no torch at import: the parser is built for every ``emu`` command).

    emu eval kvfetch                                   # default real trace (lumos5g 4G driving), 2048 tokens
    emu eval kvfetch --trace ../shared/traces/nyc-cellular-2019/trace-3114405-bus --slo-s 3 --json
    emu train lm                                       # rebuild models/kvfetch/ (CPU, ~27 min on 2 idle cores)
"""
from __future__ import annotations

import argparse
import json

TRAINERS = {"lm": "emu.apps.kvfetch.cli:train_lm"}

KEYS = ("ttft_s", "bytes", "ppl_increase_pct", "slo_met")


def train_lm(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emu.apps.kvfetch.train import train_lm as train

    card = train(seed=args.seed, out_dir=Path(args.out) if args.out else None)
    card["data"].pop("held_out_names", None)
    print(json.dumps(card, indent=2))
    return 0


def config_from_args(args: argparse.Namespace):
    """The eval config; raises ValueError / FileNotFoundError naming the bad input before any work is done."""
    from emu.apps.kvfetch.eval import ComputeModel, KVFetchEvalConfig

    trace = None if args.trace in ("none", "") else args.trace
    rates = {}
    if args.prefill_tok_s is not None:
        rates["prefill_tokens_per_s"] = args.prefill_tok_s
    if args.decode_el_s is not None:
        rates["ac_decode_elements_per_s"] = args.decode_el_s
    compute = ComputeModel(**rates)
    config = KVFetchEvalConfig(trace=trace, rate_bps=args.rate_mbps * 1e6, context_tokens=args.context_tokens,
                               chunk_tokens=args.chunk_tokens, slo_s=args.slo_s, rtt_s=args.rtt_ms / 1000.0,
                               trials=args.trials, contexts=args.contexts, delta=args.delta, compute=compute,
                               model_dir=args.model_dir)
    config.validate_files()
    return config


def _eval(args: argparse.Namespace) -> int:
    from emu.apps.kvfetch.eval import evaluate

    config = config_from_args(args)
    result = evaluate(config, seed=args.seed)
    setup = result.pop("_setup")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"trace {setup['trace'] or 'constant'}; {setup['context_tokens']} tokens in chunks of "
          f"{setup['chunk_tokens']}; SLO {setup['slo_s']} s; {setup['trials']} fetches per scheme; "
          f"fp16 KV {setup['fp16_bytes'] / 1e6:.2f} MB; reference ppl {setup['reference_ppl']:.2f}")
    print(f"{'scheme':<10}{'ttft_s':>10}{'bytes':>12}{'ppl_increase_pct':>18}{'slo_met':>9}  choices")
    for scheme, row in result.items():
        choices = " ".join(f"{k}:{v}" for k, v in sorted(row["choices"].items()))
        print(f"{scheme:<10}{row['ttft_s']:>10.3f}{row['bytes']:>12.0f}{row['ppl_increase_pct']:>18.3f}"
              f"{row['slo_met']:>9.2f}  {choices}")
    return 0


def add_eval_parser(sub) -> None:
    from emu.apps.kvfetch.eval import DEFAULT_TRACE, MAX_CONTEXT, MIN_CONTEXT

    p = sub.add_parser("kvfetch", help="KV-cache streaming (CacheGen): adaptive vs quantisation vs text recompute")
    p.add_argument("--trace", default=DEFAULT_TRACE,
                   help=f"downlink capacity trace (Mahimahi or throughput log; relative paths are also looked up "
                        f"in ../shared/traces); 'none' for a constant --rate-mbps link (default {DEFAULT_TRACE})")
    p.add_argument("--rate-mbps", type=float, default=40.0, help="constant link rate when --trace none")
    p.add_argument("--context-tokens", type=int, default=2048, help=f"context length, {MIN_CONTEXT}..{MAX_CONTEXT}")
    p.add_argument("--chunk-tokens", type=int, default=512, help="tokens per streamed chunk")
    p.add_argument("--slo-s", type=float, default=1.0, help="TTFT target in seconds")
    p.add_argument("--rtt-ms", type=float, default=40.0, help="base round-trip time in ms")
    p.add_argument("--trials", type=int, default=12, help="fetches per scheme, spread over the trace")
    p.add_argument("--contexts", type=int, default=1, help="held-out contexts (fetches cycle through them)")
    p.add_argument("--prefill-tok-s", type=float, default=None,
                   help="receiver prefill throughput in tokens/s (default: calibrated, scaled to LongChat-7B's "
                        "recompute cost per KV element; docs/kvfetch.md)")
    p.add_argument("--decode-el-s", type=float, default=None,
                   help="receiver arithmetic-decoding throughput in KV elements/s (default: calibrated on CPU)")
    p.add_argument("--delta", action="store_true", help="CacheGen levels with delta-to-anchor encoding")
    p.add_argument("--model-dir", default=None, help="model folder (default models/kvfetch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by scheme")
    p.set_defaults(func=_eval)
