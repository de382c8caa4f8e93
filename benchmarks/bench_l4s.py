"""L4S coexistence benchmark: Prague + Cubic over a 100 Mbit/s DualPI2 bottleneck, 20 ms RTT, 60 s simulated.

Reports how much faster than real time emu runs it (a real-time emulator such as Mahimahi runs at 1x by
definition), heap events per delivered packet, the scenario's L4S numbers, and ``ratio_vs_simpy_ceiling``: emu's
heap events per wall second over a bare SimPy loop's timeouts per wall second, measured in the same run (the
ceiling for any SimPy design; the bare loop runs before and after emu, the better of the two counts).

    python benchmarks/bench_l4s.py            # table
    python benchmarks/bench_l4s.py --json     # one JSON object
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's emu, not another install

from emu.experiments import l4s_coexistence  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import run_simpy_ceiling  # noqa: E402


def simpy_ceiling_events_per_s(n: int = 300_000) -> float:
    """Timeouts per wall second of one SimPy process doing nothing else (bench_core.py's ceiling)."""
    count, wall_s = run_simpy_ceiling(n)
    return count / wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--preset", default="rfc9332", choices=("rfc9332", "linux"))
    args = parser.parse_args()
    ceiling = simpy_ceiling_events_per_s()
    start = time.perf_counter()
    result = l4s_coexistence(duration_s=args.duration_s, warmup_s=3.0, preset=args.preset)
    wall_s = time.perf_counter() - start
    ceiling = max(ceiling, simpy_ceiling_events_per_s())
    sim = result["sim"]
    events = sim.events_scheduled()  # heap entries scheduled over the whole run
    delivered = sim.records.delivered_total_pkts  # data and ACK packets that reached their endpoint
    flow_ids = sim.records.delivered_arrays()["flow_id"]
    data = int(sum((flow_ids == sim.flow(name)).sum() for name in ("prague", "cubic")))
    out = {
        "simulated_s": args.duration_s,
        "wall_s": round(wall_s, 3),
        "realtime_factor": round(args.duration_s / wall_s, 2),
        "ratio_vs_simpy_ceiling": round(events / wall_s / ceiling, 3),
        "events_per_packet": round(events / delivered, 2),
        "events_per_data_packet": round(events / data, 2),
        "delivered_pkts": delivered,
        "l_sojourn_p99_s": result["l_sojourn_p99_s"],
        "c_sojourn_mean_s": result["c_sojourn_mean_s"],
        "throughput_ratio": round(result["throughput_ratio"], 3),
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"Prague + Cubic over DualPI2 ({args.preset}), 100 Mbit/s, 20 ms RTT, {args.duration_s:g} s simulated")
    print(f"  wall time            {wall_s:8.2f} s   ->  {out['realtime_factor']:.2f}x faster than real time")
    print(f"  vs bare SimPy        {out['ratio_vs_simpy_ceiling']:8.3f}   (heap events per wall second / "
          f"bare SimPy timeouts per wall second, same run)")
    print(f"  heap events          {events:>8,}   ->  {out['events_per_packet']:.2f} per delivered packet "
          f"(data + ACK), {out['events_per_data_packet']:.2f} per data packet")
    print(f"  L sojourn p99        {result['l_sojourn_p99_s'] * 1e3:8.3f} ms")
    print(f"  C sojourn mean       {result['c_sojourn_mean_s'] * 1e3:8.3f} ms")
    print(f"  throughput ratio     {result['throughput_ratio']:8.2f} (Prague / Cubic)")


if __name__ == "__main__":
    main()
