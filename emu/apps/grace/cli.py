"""``emu eval grace`` and ``emu train grace``. Imports neither torch nor PyAV until a command runs."""
from __future__ import annotations

import argparse
import json
import math

TRAINERS = {"grace": "emu.apps.grace.cli:train"}


def train(args: argparse.Namespace) -> int:
    """Rebuild models/grace/ (or ``--out``): both codecs, their weights and model cards."""
    import logging
    from pathlib import Path

    from emu.apps.grace.train import train as run_training

    logging.getLogger("emu.apps.grace.train").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cards = run_training(seed=args.seed, out_dir=Path(args.out) if args.out else None)
    print(json.dumps({name: {"weights": c["weights"], "sha256": c["sha256"], "train_seconds": c["train_seconds"]}
                      for name, c in cards.items()}, indent=2))
    return 0


def _config(args: argparse.Namespace):
    from emu.apps.grace.eval import GraceEvalConfig

    return GraceEvalConfig(video=args.video, loss=args.loss, trace=args.trace, max_frames=args.frames,
                           bitrate_bps=args.bitrate_kbps * 1000.0, rtt_s=args.rtt_ms / 1000.0,
                           payload_bytes=args.payload_bytes, models_dir=args.models_dir)


def _eval(args: argparse.Namespace) -> int:
    from emu.apps.grace.app import SCHEMES
    from emu.apps.grace.eval import SUMMARY_KEYS, Evaluator, check_inputs

    schemes = tuple(args.schemes.split(",")) if args.schemes else SCHEMES
    config = _config(args)           # out-of-range parameters and missing files fail here
    check_inputs(config, schemes)    # malformed trace / video / weights fail here, before any work
    ev = Evaluator(config, seed=args.seed, schemes=schemes)
    result = {scheme: ev.run(scheme).summary for scheme in schemes}
    if args.json:
        print(json.dumps({k: {m: (None if isinstance(v, float) and math.isnan(v) else v) for m, v in row.items()}
                          for k, row in result.items()}))
        return 0
    print(f"{'scheme':<14}" + "".join(f"{k:>20}" for k in SUMMARY_KEYS))
    for scheme, row in result.items():
        print(f"{scheme:<14}" + "".join(f"{row[k]:>20.4f}" for k in SUMMARY_KEYS))
    return 0


def add_eval_parser(sub) -> None:
    p = sub.add_parser("grace", help="loss-resilient neural video: Grace++ vs H.265 retransmission / FEC / freeze")
    p.add_argument("--video", default=None, help="video file (default: the held-out carphone clip)")
    p.add_argument("--loss", type=float, default=0.0, help="i.i.d. packet loss on the forward link, 0..0.9")
    p.add_argument("--trace", default=None, help="forward capacity trace (Mahimahi or throughput log)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=120,
                   help="frames of the clip to stream (default 120; metrics skip the first 2 s, the start-up)")
    p.add_argument("--bitrate-kbps", type=float, default=200.0, help="target video bitrate, headers included")
    p.add_argument("--rtt-ms", type=float, default=100.0, help="base round-trip time in ms")
    p.add_argument("--payload-bytes", type=int, default=200, help="media bytes per packet (default 200)")
    p.add_argument("--schemes", default=None,
                   help="comma-separated subset of grace,grace_nomask,h265_retx,h265_fec20,h265_fec50,h265_freeze")
    p.add_argument("--models-dir", default=None, help="folder with the model cards and weights (default models/grace)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by scheme")
    p.set_defaults(func=_eval)
