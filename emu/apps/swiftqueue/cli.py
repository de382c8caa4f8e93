"""``emu eval swiftqueue`` and ``emu train swiftqueue``. Imports no torch at module level.

    emu eval swiftqueue [--trace PATH] [--seed S] [--duration S] [--json]
    emu eval swiftqueue --predictors [--trace PATH] [--seed S] [--json]
    emu train swiftqueue [--seed S] [--out DIR]

Every input is checked before any simulation starts: the trace is parsed (a malformed one names the file and
line), the model card and weight files are read and hash-checked, ranges are validated.
"""
from __future__ import annotations

import argparse
import json
import math

TRAINERS = {"swiftqueue": "emu.apps.swiftqueue.cli:train"}

_KEYS = ("p50_s", "p95_s", "p99_s", "app_bps", "cross_bps")
_PRED_KEYS = ("mae_s", "mae_sharp_s", "mae_l_s", "mae_c_s")


def train(args: argparse.Namespace) -> int:
    from emu.apps.swiftqueue.pipeline import train_all

    card = train_all(seed=args.seed, out_dir=args.out)
    summary = {name: entry.get("metrics", {}) for name, entry in card["models"].items()}
    print(json.dumps({"out": card["_out"], "metrics": summary}, indent=2))
    return 0


def _check_inputs(args: argparse.Namespace, need_models: tuple[str, ...]) -> None:
    """Fail before any work on a bad trace, weights file or parameter."""
    from emu.links.tracefile import load_trace

    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    if not (isinstance(args.duration, (int, float)) and math.isfinite(args.duration) and 5.0 <= args.duration <= 3600):
        raise ValueError(f"--duration: must be in [5, 3600] seconds, got {args.duration}")
    if args.margin_ms is not None and not (math.isfinite(args.margin_ms) and 0.0 <= args.margin_ms <= 1000.0):
        raise ValueError(f"--margin-ms: must be in [0, 1000], got {args.margin_ms}")
    load_trace(args.trace)  # FileNotFoundError / TraceFormatError (file and line)
    if need_models:
        from emu.apps.swiftqueue.weights import load_predictor, read_card

        read_card(args.weights)
        for name in need_models:
            load_predictor(name, args.weights)  # existence, sha256, deserialisation, architecture


def _eval(args: argparse.Namespace) -> int:
    from emu.apps.swiftqueue.eval import EXTRA_POLICIES, POLICIES

    policies = POLICIES
    if args.policies:
        policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
        bad = [p for p in policies if p not in POLICIES + EXTRA_POLICIES]
        if bad or not policies:
            raise ValueError(f"--policies: unknown {', '.join(bad) or '(empty)'}; valid: "
                             f"{', '.join(POLICIES + EXTRA_POLICIES)}")
    if args.predictors:
        names = ("last", "ewma", "linear", "gru", "transformer")
        _check_inputs(args, tuple(n for n in names if n in ("linear", "gru", "transformer")))
        from emu.apps.swiftqueue.eval import predictor_accuracy

        result = predictor_accuracy(args.trace, seed=args.seed, duration_s=args.duration, predictors=names,
                                    models=args.weights)
        if args.json:
            print(json.dumps(result))
            return 0
        print(f"{'predictor':<12}" + "".join(f"{k:>14}" for k in _PRED_KEYS) + f"{'n':>8}{'n_sharp':>9}")
        for name, row in result.items():
            print(f"{name:<12}" + "".join(f"{row[k]:>14.5f}" for k in _PRED_KEYS) + f"{row['n']:>8}{row['n_sharp']:>9}")
        return 0
    learned = {"swiftqueue": "transformer", "gru": "gru", "linear": "linear"}
    _check_inputs(args, tuple(sorted({learned[p] for p in policies if p in learned})))
    from emu.apps.swiftqueue.eval import evaluate

    margin = None if args.margin_ms is None else args.margin_ms / 1000.0
    result = evaluate(args.trace, seed=args.seed, duration_s=args.duration, policies=policies, models=args.weights,
                      margin_s=margin)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'policy':<16}" + "".join(f"{k:>14}" for k in _KEYS) + f"{'app_loss':>10}{'l_share':>9}")
    for name, row in result.items():
        print(f"{name:<16}" + "".join(f"{row[k]:>14.4f}" if k.endswith('_s') else f"{row[k]:>14.0f}" for k in _KEYS)
              + f"{row['app_loss']:>10.3f}{row['l_share']:>9.3f}")
    return 0


def add_eval_parser(sub) -> None:
    from emu.apps.swiftqueue.eval import DEFAULT_DURATION_S, DEFAULT_TRACE

    p = sub.add_parser("swiftqueue", help="per-packet L4S queue selection: SwiftQueue vs per-flow marking")
    p.add_argument("--trace", default=DEFAULT_TRACE,
                   help=f"bottleneck capacity trace (Mahimahi or throughput log; default {DEFAULT_TRACE})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                   help="simulated seconds per policy (default 30; --predictors: seconds of exploratory run)")
    p.add_argument("--weights", default=None,
                   help="model card (or its folder) to load the learned predictors from (default models/swiftqueue)")
    p.add_argument("--policies", default=None,
                   help="comma-separated policies (default swiftqueue,perflow_l4s,perflow_classic,oracle; "
                        "also: last, ewma, gru, linear, random)")
    p.add_argument("--margin-ms", type=float, default=None,
                   help="mark ECT(1) unless C is predicted faster by more than this (default: the card's margin)")
    p.add_argument("--predictors", action="store_true",
                   help="instead: each predictor's MAE, overall and on sharp changes, on an exploratory run")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by policy (or predictor)")
    p.set_defaults(func=_eval)
