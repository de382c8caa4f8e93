"""L4S coexistence benchmark: Prague + Cubic over a 100 Mbit/s DualPI2 bottleneck, 20 ms RTT, 60 s simulated.

Reports how much faster than real time emu runs it (a real-time emulator such as Mahimahi runs at 1x by
definition), heap events per delivered packet, the scenario's L4S numbers, and ``ratio_vs_simpy_ceiling``: emu's
heap events per wall second over a bare SimPy loop's timeouts per wall second, measured in the same run (the
ceiling for any SimPy design; the bare loop runs before and after emu, the better of the two counts).

The scenario runs twice in the same process: with an ACK per segment (the default, as L4S wants) and with
delayed ACKs (``StreamConfig.delayed_ack``: an ACK every second segment or after 40 ms, RFC 5681 §4.2). The
top-level JSON fields are the per-segment run's; ``delayed_ack`` holds the second run's, and
``delayed_ack_speedup`` the ratio of their wall times (``_cpu``: of their CPU times, steadier under load).

    python benchmarks/bench_l4s.py            # table
    python benchmarks/bench_l4s.py --json     # one JSON object
"""
from __future__ import annotations

import argparse
import json
import os
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


def measure(duration_s: float, preset: str, delayed_ack: bool) -> dict:
    """One run of the scenario: wall time, heap events, L4S numbers."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = l4s_coexistence(duration_s=duration_s, warmup_s=min(3.0, duration_s / 2), preset=preset,
                             delayed_ack=delayed_ack)
    wall_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start
    sim = result["sim"]
    events = sim.events_scheduled()  # heap entries scheduled over the whole run
    delivered = sim.records.delivered_total_pkts  # data and ACK packets that reached their endpoint
    flow_ids = sim.records.delivered_arrays()["flow_id"]
    data = int(sum((flow_ids == sim.flow(name)).sum() for name in ("prague", "cubic")))
    return {
        "wall_s": round(wall_s, 3),
        "realtime_factor": round(duration_s / wall_s, 2),
        "sim_s_per_cpu_s": round(duration_s / cpu_s, 2),   # steadier than wall time on a shared machine
        "events": events,
        "events_per_packet": round(events / delivered, 2),
        "events_per_data_packet": round(events / data, 2),
        "delivered_pkts": delivered,
        "acks_per_data_packet": round((delivered - data) / data, 3),
        "l_sojourn_p99_s": result["l_sojourn_p99_s"],
        "c_sojourn_mean_s": result["c_sojourn_mean_s"],
        "throughput_ratio": round(result["throughput_ratio"], 3),
        "utilisation": round(result["utilisation"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--preset", default="rfc9332", choices=("rfc9332", "linux"))
    parser.add_argument("--no-delayed-ack", action="store_true",
                        help="skip the second run with delayed ACKs (every second segment or 40 ms)")
    args = parser.parse_args()
    ceiling = simpy_ceiling_events_per_s()
    per_segment = measure(args.duration_s, args.preset, delayed_ack=False)
    ceiling = max(ceiling, simpy_ceiling_events_per_s())
    delayed = None
    if not args.no_delayed_ack:
        delayed = measure(args.duration_s, args.preset, delayed_ack=True)
        ceiling = max(ceiling, simpy_ceiling_events_per_s())
    out = {"simulated_s": args.duration_s, **{k: v for k, v in per_segment.items() if k != "events"},
           "ratio_vs_simpy_ceiling": round(per_segment["events"] / per_segment["wall_s"] / ceiling, 3),
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    if delayed is not None:
        out["delayed_ack"] = {k: v for k, v in delayed.items() if k != "events"}
        out["delayed_ack"]["ratio_vs_simpy_ceiling"] = round(delayed["events"] / delayed["wall_s"] / ceiling, 3)
        out["realtime_factor_delayed_ack"] = delayed["realtime_factor"]
        out["delayed_ack_speedup"] = round(per_segment["wall_s"] / delayed["wall_s"], 3)
        out["delayed_ack_speedup_cpu"] = round(delayed["sim_s_per_cpu_s"] / per_segment["sim_s_per_cpu_s"], 3)
    if args.json:
        print(json.dumps(out))
        return
    print(f"Prague + Cubic over DualPI2 ({args.preset}), 100 Mbit/s, 20 ms RTT, {args.duration_s:g} s simulated "
          f"(load average {out['load_average']})")
    runs = [("ACK per segment", out)] + ([("delayed ACKs", out["delayed_ack"])] if delayed is not None else [])
    for label, r in runs:
        print(f"{label}:")
        print(f"  wall time            {r['wall_s']:8.2f} s   ->  {r['realtime_factor']:.2f}x faster than real time "
              f"({r['sim_s_per_cpu_s']:.2f} simulated s per CPU s)")
        print(f"  vs bare SimPy        {r['ratio_vs_simpy_ceiling']:8.3f}   (heap events per wall second / "
              f"bare SimPy timeouts per wall second, same run)")
        print(f"  heap events          {r['events_per_packet']:8.2f} per delivered packet (data + ACK), "
              f"{r['events_per_data_packet']:.2f} per data packet; "
              f"{r['acks_per_data_packet']:.2f} ACKs per data packet")
        print(f"  L sojourn p99        {r['l_sojourn_p99_s'] * 1e3:8.3f} ms")
        print(f"  C sojourn mean       {r['c_sojourn_mean_s'] * 1e3:8.3f} ms")
        print(f"  throughput ratio     {r['throughput_ratio']:8.2f} (Prague / Cubic), utilisation "
              f"{r['utilisation'] * 100:.1f} %")
    if delayed is not None:
        print(f"delayed ACKs run {out['delayed_ack_speedup']:.2f}x as fast as ACK per segment in wall time, "
              f"{out['delayed_ack_speedup_cpu']:.2f}x in CPU time (same run)")


if __name__ == "__main__":
    main()
