"""L4S on real link traces: utilisation and queueing delay of Prague (alone and beside Cubic) for several AQMs.

For each trace (LTE, 5G, Wi-Fi, fixed broadband; ../shared/traces) and each bottleneck queue, three runs with
bulk flows over one trace-driven hop (20 ms each way, ACKs on a 1 Gbit/s return link):

- ``cubic``: one Cubic flow (the reference: what a classic flow gets through that queue);
- ``prague``: one Prague flow;
- ``both``: Prague and Cubic together.

Utilisation = payload + headers delivered over [warmup, duration) divided by what the trace could deliver in that
window (``CapacitySchedule.bytes_between``). Delay columns are per-packet queueing delay at the bottleneck:
p99 of the Prague packets (L queue under DualPI2) and of the Cubic packets (C queue).

    python benchmarks/bench_l4s_traces.py                     # the table (a few minutes, 2 processes)
    python benchmarks/bench_l4s_traces.py --json              # one JSON object per row
    python benchmarks/bench_l4s_traces.py --queues dualpi2_linux dualpi2_low_rate --traces lte_verizon

The queues are the presets of ``QUEUES`` below; DropTail holds 100 ms at the trace's mean rate (at least 32
packets), like a moderately buffered access link.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's emu, not another install

from emu.transport.validation import trace_run  # noqa: E402

TRACES = {
    # label: (network, path under ../shared/traces)
    "lte_verizon": ("LTE (Mahimahi, driving)", "mahimahi/Verizon-LTE-short.down"),
    "lte_nyc_home": ("LTE (Mahimahi, stationary)", "nyc-cellular-2019/trace-2925703-home1"),
    "lte_lumos_walk": ("LTE (rate log, walking)", "lumos5g/4G/4g_trace_walking_50160_a"),
    "5g_lumos_drive": ("5G mmWave (rate log, driving)", "lumos5g/5G/5g_trace_22_driving"),
    "wifi_walk": ("Wi-Fi (rate log, walking)", "multipath-wifi-cellular/7_1_wifi.csv"),
    "fcc_broadband": ("fixed broadband (FCC)", "fcc-hsdpa/train/test_fcc_trace_10652_http---www.amazon.com_780_0"),
}

QUEUES = {
    "droptail": ("droptail", None),
    "codel": ("codel", {}),
    "pie": ("pie", {}),
    "dualpi2_rfc9332": ("dualpi2", {"preset": "rfc9332"}),
    "dualpi2_linux": ("dualpi2", {"preset": "linux"}),
    "dualpi2_low_rate": ("dualpi2", {"preset": "low_rate"}),
}

SCENARIOS = {"cubic": ("cubic",), "prague": ("prague",), "both": ("prague", "cubic")}


def _task(args):
    trace_label, queue_label, scenario, trace_path, duration_s, warmup_s = args
    queue, params = QUEUES[queue_label]
    r = trace_run(trace_path, queue, params, SCENARIOS[scenario], duration_s=duration_s, warmup_s=warmup_s)
    return {"trace": trace_label, "queue": queue_label, "scenario": scenario, **r}


def main() -> None:
    from emu.links.tracefile import shared_traces_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--traces", nargs="*", default=list(TRACES), choices=list(TRACES))
    parser.add_argument("--queues", nargs="*", default=list(QUEUES), choices=list(QUEUES))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = shared_traces_dir()
    if root is None:
        sys.exit("bench_l4s_traces: ../shared/traces not found (the real traces live beside the checkout)")
    tasks = [(t, q, s, os.path.join(str(root), TRACES[t][1]), args.duration_s, args.warmup_s)
             for t in args.traces for q in args.queues for s in SCENARIOS]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(_task, tasks))
    wall = time.perf_counter() - start
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{len(rows)} runs of {args.duration_s:g} s (measured over [{args.warmup_s:g}, {args.duration_s:g}) s), "
          f"RTT 40 ms, wall {wall:.0f} s")
    print("util = delivered / trace capacity in the window; Prague/Cubic = rate as % of Cubic alone through "
          "DropTail; p99 = per-packet queueing delay (ms)")
    header = (f"{'trace':16} {'queue':17} {'cap Mb/s':>8} | {'cubic util':>10} {'p99':>7} | {'prague util':>11} "
              f"{'vsCubicDT':>9} {'p99':>7} | {'both util':>9} {'L p99':>7} {'C p99':>7} {'P/C':>5}")
    print(header)
    print("-" * len(header))
    by = {(r["trace"], r["queue"], r["scenario"]): r for r in rows}
    for t in args.traces:
        ref = by.get((t, "droptail", "cubic"))
        for q in args.queues:
            c, p, b = by[(t, q, "cubic")], by[(t, q, "prague")], by[(t, q, "both")]
            vs = p["prague_bps"] / ref["cubic_bps"] * 100 if ref else math.nan
            print(f"{t:16} {q:17} {c['capacity_bps'] / 1e6:8.2f} | {c['utilisation'] * 100:9.1f}% "
                  f"{c['cubic_qdelay_p99_s'] * 1e3:7.1f} | {p['utilisation'] * 100:10.1f}% {vs:8.0f}% "
                  f"{p['prague_qdelay_p99_s'] * 1e3:7.1f} | {b['utilisation'] * 100:8.1f}% "
                  f"{b['prague_qdelay_p99_s'] * 1e3:7.1f} {b['cubic_qdelay_p99_s'] * 1e3:7.1f} "
                  f"{b['prague_bps'] / max(b['cubic_bps'], 1.0):5.2f}")


if __name__ == "__main__":
    main()
