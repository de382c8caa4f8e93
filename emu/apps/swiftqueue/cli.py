"""SwiftQueue's own mode of ``emu eval swiftqueue`` (``AppSpec.cli``); imports no torch at module level.

    emu eval swiftqueue [--schemes a,b] [--trace PATH] [--seed S] [--duration-s S] [--json]   # the registry's eval
    emu eval swiftqueue --predictors [--trace PATH] [--seed S] [--duration-s S] [--json]      # predictor MAE
    emu eval swiftqueue --headroom [--scenario NAME] [--trace PATH] [--seed S] [--json]        # what marking can gain

Every input is checked before any simulation starts, in both modes: the trace is parsed (a malformed one names the
file and line), the model card and the weight files the schemes need are read and hash-checked.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Optional

_PRED_KEYS = ("mae_s", "mae_sharp_s", "mae_l_s", "mae_c_s")


class SwiftQueueCli:
    """``--predictors``: each predictor's MAE instead of the schemes' latencies; otherwise the inputs are checked
    and the registry's evaluation runs."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--predictors", action="store_true",
                            help="instead: each predictor's MAE, overall and on sharp changes, on an exploratory run "
                                 "of --duration-s seconds")
        parser.add_argument("--headroom", action="store_true",
                            help="instead: the headroom of the scenario on the trace (one per-flow L4S run with "
                                 "ghost probes): share of app packets faster in C by > 5 ms, open-loop bound, "
                                 "C-faster run lengths vs the feedback delay, zero-capacity seconds")

    def run(self, args: argparse.Namespace, config: Any) -> Optional[int]:
        from emu.apps.registry import get
        from emu.apps.eval_cli import parse_schemes
        from emu.apps.swiftqueue import eval as ev
        from emu.apps.swiftqueue.predictors import PREDICTORS

        if args.predictors and args.headroom:
            raise ValueError("--headroom: does not combine with --predictors")
        if args.headroom:
            if args.schemes is not None:
                raise ValueError("--schemes: does not apply to --headroom (it runs per-flow L4S with ghosts)")
            result = ev.headroom(config, seed=args.seed)
            if args.json:
                print(json.dumps(result))
                return 0
            for key, value in result.items():
                print(f"{key:<22}{value:>12.4f}")
            return 0
        if not args.predictors:
            ev.check_inputs(config, parse_schemes(get("swiftqueue"), args.schemes))
            return None
        if args.schemes is not None:
            raise ValueError("--schemes: does not apply to --predictors (every predictor is measured)")
        ev.check_inputs(config, predictors=PREDICTORS)
        result = ev.predictor_accuracy(config, seed=args.seed, predictors=PREDICTORS)
        if args.json:
            print(json.dumps(result))
            return 0
        print(f"{'predictor':<12}" + "".join(f"{k:>14}" for k in _PRED_KEYS) + f"{'n':>8}{'n_sharp':>9}")
        for name, row in result.items():
            print(f"{name:<12}" + "".join(f"{row[k]:>14.5f}" for k in _PRED_KEYS) + f"{row['n']:>8}{row['n_sharp']:>9}")
        return 0


CLI = SwiftQueueCli()
