"""Before/after speed of two checkouts of emu on one machine, in one run: interleaved repeats, best of each.

    git archive <old-commit> | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    python benchmarks/ab_checkouts.py /tmp/before .                 # both workloads, 3 rounds
    python benchmarks/ab_checkouts.py /tmp/before . --workload l4s --rounds 5
    python benchmarks/ab_checkouts.py /tmp/before . --workload calls --l4s-s 5     # function calls, load-free

Workloads (each run in a fresh interpreter whose ``PYTHONPATH`` is the checkout):

- ``l4s``: ``emu.experiments.l4s_coexistence`` (Prague + Cubic, 100 Mbit/s DualPI2, 20 ms), ``--l4s-s`` simulated
  seconds: simulated seconds per wall second and per CPU second;
- ``calls``: Python function calls of the ``l4s`` workload, counted by ``cProfile`` (one run each; the count
  is deterministic, so it measures the work per simulated second without the noise of other load);
- ``core``: ``benchmarks/bench_core.py``'s emu and ns.py runs (Poisson, 90 % of 100 Mbit/s, 4 s simulated):
  packets per wall second and the emu / ns.py ratio.

Best of the rounds, because other load only slows a run down. CPU time (``time.process_time``) is printed next to
wall time: on a shared machine it is the steadier of the two.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

L4S = ("import json, time; from emu.experiments import l4s_coexistence as f; "
       "w, c = time.perf_counter(), time.process_time(); f(duration_s={d}, warmup_s=1.0); "
       "print(json.dumps({{'wall_s': time.perf_counter() - w, 'cpu_s': time.process_time() - c}}))")
# Python function calls of the L4S workload (cProfile): deterministic, so unaffected by other load.
CALLS = ("import cProfile, json, pstats; from emu.experiments import l4s_coexistence as f; "
         "p = cProfile.Profile(); p.enable(); f(duration_s={d}, warmup_s=1.0); p.disable(); "
         "print(json.dumps({{'calls': pstats.Stats(p).total_calls}}))")
CORE = ("import json, sys, time; sys.path.insert(0, 'benchmarks'); import bench_core as b; "
        "b.run_emu(0.2); b.run_nspy(0.2); "   # imports and first-call set-up outside the timed runs
        "c = time.process_time(); n, dt = b.run_emu(4.0); ce = time.process_time() - c; "
        "c = time.process_time(); m, dt2 = b.run_nspy(4.0); cn = time.process_time() - c; "
        "print(json.dumps({'emu_pps': n / dt, 'nspy_pps': m / dt2, 'emu_cpu_pps': n / ce, 'nspy_cpu_pps': m / cn}))")


def run(checkout: str, code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(checkout))
    out = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--workload", choices=("l4s", "core", "calls", "both"), default="both",
                        help="both: l4s and core")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--l4s-s", type=float, default=10.0)
    args = parser.parse_args()
    sides = {"before": args.before, "after": args.after}
    out: dict = {}
    if args.workload in ("l4s", "both"):
        best = {k: {"wall_s": 1e9, "cpu_s": 1e9} for k in sides}
        for _ in range(args.rounds):
            for k, d in sides.items():
                r = run(d, L4S.format(d=args.l4s_s))
                for f in ("wall_s", "cpu_s"):
                    best[k][f] = min(best[k][f], r[f])
        for k in sides:
            out[f"l4s_realtime_factor_{k}"] = round(args.l4s_s / best[k]["wall_s"], 2)
            out[f"l4s_sim_s_per_cpu_s_{k}"] = round(args.l4s_s / best[k]["cpu_s"], 2)
        out["l4s_speedup_cpu"] = round(best["before"]["cpu_s"] / best["after"]["cpu_s"], 3)
    if args.workload == "calls":
        calls = {k: run(d, CALLS.format(d=args.l4s_s))["calls"] for k, d in sides.items()}
        for k in sides:
            out[f"l4s_calls_per_sim_s_{k}"] = round(calls[k] / args.l4s_s)
        out["l4s_calls_after_over_before"] = round(calls["after"] / calls["before"], 4)
    if args.workload in ("core", "both"):
        best = {k: {} for k in sides}
        for _ in range(args.rounds):
            for k, d in sides.items():
                r = run(d, CORE)
                for f, v in r.items():
                    best[k][f] = max(best[k].get(f, 0.0), v)
        for k in sides:
            out[f"core_ratio_vs_nspy_{k}"] = round(best[k]["emu_pps"] / best[k]["nspy_pps"], 2)
            out[f"core_cpu_ratio_vs_nspy_{k}"] = round(best[k]["emu_cpu_pps"] / best[k]["nspy_cpu_pps"], 2)
            out[f"core_emu_pps_{k}"] = round(best[k]["emu_pps"])
        out["core_speedup_cpu"] = round(best["after"]["emu_cpu_pps"] / best["before"]["emu_cpu_pps"], 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
