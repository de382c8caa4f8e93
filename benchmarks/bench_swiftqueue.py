"""SwiftQueue inference cost: predictions per second, and the emulation slow-down of learned marking.

    python benchmarks/bench_swiftqueue.py                 # table
    python benchmarks/bench_swiftqueue.py --json          # one JSON object
    python benchmarks/bench_swiftqueue.py --duration 10 --repeat 1   # quicker

Measured in one process, on the same trace and seed:

- ``online_pred_per_s``: packets marked per second of inference wall time by the deployed path (numpy Transformer,
  the frame's history encoded once and cached, then one query pass per packet), taken from a real run;
- ``batched_pred_per_s``: offline throughput on 1024 packets with different windows, numpy and torch;
- ``slowdown``: wall time of a run marked by SwiftQueue over the same run with per-flow L4S marking (target <= 2);
  ``slowdown_excl_inference`` removes the policy's own inference time (what the emulator itself pays extra:
  probes and their ACKs). The best of ``--repeat`` runs is kept for each, as absolute seconds on shared machines
  are noise.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _run(config, policy, seed):
    from emu.apps.swiftqueue.scenario import run, summarize

    t0 = time.perf_counter()
    r = run(config, policy, seed=seed)
    wall = time.perf_counter() - t0
    return wall, summarize(r)


def bench(trace: str, duration_s: float, seed: int, repeat: int, models=None) -> dict:
    from emu.apps.swiftqueue.dataset import from_runs
    from emu.apps.swiftqueue.collector import collect
    from emu.apps.swiftqueue.eval import make_policy
    from emu.apps.swiftqueue.scenario import ScenarioConfig
    from emu.apps.swiftqueue.weights import load_predictor

    config = ScenarioConfig(trace=trace, duration_s=duration_s)
    base_walls, sq_walls, infer = [], [], []
    pkts = calls = 0
    for _ in range(repeat):
        w, _ = _run(config, make_policy("perflow_l4s"), seed)
        base_walls.append(w)
        policy = make_policy("swiftqueue", models)
        w, m = _run(config, policy, seed)
        sq_walls.append(w)
        infer.append(policy.infer_s)
        pkts, calls = policy.infer_pkts, policy.infer_calls
    i_best = int(np.argmin(sq_walls))
    base = min(base_walls)
    sq = sq_walls[i_best]
    inf_s = infer[i_best]

    # Offline batched throughput on real windows.
    ds = from_runs([collect(ScenarioConfig(trace=trace, duration_s=min(duration_s, 20.0)), seed=seed)])
    idx = np.arange(min(1024, len(ds)))
    batch = ds.batch(idx)
    out = {}
    for backend in ("numpy", "torch"):
        pred = load_predictor("transformer", models, backend=backend)
        pred.predict(batch)
        t0 = time.perf_counter()
        reps = 3
        for _ in range(reps):
            pred.predict(batch)
        out[backend] = reps * idx.size / (time.perf_counter() - t0)
    return {
        "trace": trace, "duration_s": duration_s, "seed": seed, "repeat": repeat,
        "wall_perflow_s": round(base, 3), "wall_swiftqueue_s": round(sq, 3),
        "slowdown": round(sq / base, 3), "slowdown_excl_inference": round((sq - inf_s) / base, 3),
        "inference_s": round(inf_s, 3), "frames": calls, "packets_marked": pkts,
        "online_pred_per_s": round(pkts / inf_s, 1) if inf_s > 0 else None,
        "online_us_per_frame": round(1e6 * inf_s / max(1, calls), 1),
        "batched_pred_per_s_numpy": round(out["numpy"], 1), "batched_pred_per_s_torch": round(out["torch"], 1),
        "sim_s_per_wall_s_perflow": round((duration_s + 1.0) / base, 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trace", default="mahimahi/Verizon-LTE-short.down")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--weights", default=None, help="model card or folder (default models/swiftqueue)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the torch batched number")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    res = bench(args.trace, args.duration, args.seed, max(1, args.repeat), args.weights)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
