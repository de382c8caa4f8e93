"""How often ``emu.testing.assert_improves`` passes on real runs: power on a real improvement, and the
false-positive rate on a real A-vs-A comparison.

Scenario (the worked example of docs/testing.md): one Prague bulk flow over Verizon-LTE-short.down (shared traces)
with a 10 ms one-way delay, 10 s, the trace started at an offset drawn from the seed; metric: the flow's p99
one-way delay after a 2 s warm-up.

- power: DropTail (baseline) vs DualPI2 (candidate) on ``--sets`` disjoint sets of 8 seeds; the share of sets
  where ``assert_improves(..., by=B)`` passes, for several B.
- A-vs-A: DualPI2 vs DualPI2 where the candidate's runs use other seeds (seed + 1_000_000, so the two sides are
  independent draws of the same scheme, not identical runs); the share of sets where ``assert_improves`` (by=0)
  passes, i.e. wrongly reports an improvement.

    python benchmarks/bench_testing_power.py --sets 10 --workers 2
"""
from __future__ import annotations

import argparse
import functools
import time

from emu import Network, RunResult, Sim
from emu.links.tracefile import load_trace, require_shared_traces
from emu.testing import assert_improves, compare, delay_quantile
from emu.transport import open_stream

SEEDS_PER_SET = 8
METRIC = delay_quantile("prague", 0.99, warmup_s=2.0)


def prague_run(seed: int, *, queue: str, seed_shift: int = 0, duration_s: float = 10.0) -> RunResult:
    trace = require_shared_traces() / "mahimahi" / "Verizon-LTE-short.down"
    sim = Sim(seed=seed + seed_shift)
    net = Network(sim)
    server, client = net.host("server"), net.host("client")
    offset_s = sim.rng("trace_offset").uniform(0.0, load_trace(trace).period_s)
    net.link(server, client, trace=trace, trace_offset=offset_s, reverse_rate="100Mbps", delay="10ms", queue=queue)
    net.build_routes()
    open_stream(sim, server, client, cc="prague", bulk=True, flow="prague")
    sim.run(until_s=duration_s)
    return RunResult(sim)


class Cached:
    """The values of one side, looked up by seed (so each ``by`` reuses the same runs)."""

    def __init__(self, values: dict[int, float]) -> None:
        self.values = values

    def __call__(self, seed: int) -> dict:
        return {"v": self.values[seed]}


def passes(baseline: Cached, candidate: Cached, seeds: list[int], by: float) -> bool:
    try:
        assert_improves(baseline, candidate, metric="v", seeds=seeds, by=by)
        return True
    except AssertionError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=10)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    seeds = list(range(args.sets * SEEDS_PER_SET))
    start = time.perf_counter()
    # worker processes cannot import this script's __main__; they can import it under its own name (its folder is
    # on sys.path, which the workers inherit)
    from bench_testing_power import prague_run

    pairs = {
        "droptail vs dualpi2": (functools.partial(prague_run, queue="droptail"),
                                functools.partial(prague_run, queue="dualpi2")),
        "dualpi2 vs dualpi2 (A-vs-A)": (functools.partial(prague_run, queue="dualpi2"),
                                        functools.partial(prague_run, queue="dualpi2", seed_shift=1_000_000)),
    }
    for name, (base_fn, cand_fn) in pairs.items():
        everything = compare(base_fn, cand_fn, metric=METRIC, seeds=seeds, workers=args.workers)
        base = Cached(dict(zip(everything.seeds, everything.baseline)))
        cand = Cached(dict(zip(everything.seeds, everything.candidate)))
        sets = [seeds[i:i + SEEDS_PER_SET] for i in range(0, len(seeds), SEEDS_PER_SET)]
        print(f"{name}: ratio over all {len(seeds)} seeds {everything.ratio:.4g}, CI [{everything.ci[0]:.4g}, "
              f"{everything.ci[1]:.4g}]")
        for by in ((0.0, 0.5, 0.9, 0.95, 0.98) if "A-vs-A" not in name else (0.0,)):
            n_pass = sum(passes(base, cand, s, by) for s in sets)
            print(f"  by={by:<4g}: assert_improves passed on {n_pass} of {len(sets)} disjoint sets of "
                  f"{SEEDS_PER_SET} seeds ({n_pass / len(sets):.0%})")
    print(f"wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
