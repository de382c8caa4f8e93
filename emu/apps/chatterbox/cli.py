"""``emu eval chatterbox`` and ``emu train chatterbox-tokens``."""
from __future__ import annotations

import argparse
import json

TRAINERS = {"chatterbox-tokens": "emu.apps.chatterbox.cli:train_tokens"}


def train_tokens(args: argparse.Namespace) -> int:
    from emu.apps.chatterbox.corpus import build_responses

    from pathlib import Path

    out = Path(args.out) / "responses.json" if args.out else None
    card = build_responses(seed=args.seed, out_path=out)
    print(json.dumps(card, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from emu.apps.chatterbox.eval import ChatterboxEvalConfig, evaluate

    if args.trace is not None:
        from emu.links.tracefile import load_trace

        load_trace(args.trace)  # a malformed trace fails here, naming file and line, before any work
    config = ChatterboxEvalConfig(loss=args.loss, burst=args.burst, rtt_s=args.rtt_ms / 1000.0, trace=args.trace,
                                  n_responses=args.responses, timeline_file=args.timeline)
    result = evaluate(config, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    keys = ("stall_ratio", "token_delay_p99_s", "ttft_s", "bytes_per_token")
    print(f"{'scheme':<12}" + "".join(f"{k:>20}" for k in keys))
    for scheme, row in result.items():
        print(f"{scheme:<12}" + "".join(f"{row[k]:>20.4f}" for k in keys))
    return 0


def add_eval_parser(sub) -> None:
    chat = sub.add_parser("chatterbox", help="LLM token streaming: stream vs duplicate vs chatterbox")
    chat.add_argument("--trace", default=None, help="downlink capacity trace (Mahimahi or throughput log)")
    chat.add_argument("--loss", type=float, default=0.0, help="downlink packet loss rate, 0..0.5")
    chat.add_argument("--burst", type=float, default=1.0,
                      help="mean loss-burst length in packets (Gilbert-Elliott); 1 = independent losses")
    chat.add_argument("--rtt-ms", type=float, default=100.0, help="base round-trip time in ms")
    chat.add_argument("--responses", type=int, default=10, help="responses streamed per scheme")
    chat.add_argument("--timeline", default=None, help='replay a file of time_s<TAB>"token" lines instead')
    chat.add_argument("--seed", type=int, default=0)
    chat.add_argument("--json", action="store_true", help="print one JSON object keyed by scheme")
    chat.set_defaults(func=_eval)
