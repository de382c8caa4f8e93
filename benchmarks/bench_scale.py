"""How wall time and memory grow with the number of flows and the link rate, for the L4S coexistence scenario.

Scenario: N bulk flows, alternately Prague and Cubic, from one host through one DualPI2 hop (RFC 9332 preset,
buffer = 250 ms at the link rate) to one receiver, 20 ms base RTT, ACKs on a return link of the same rate.
Each point runs in a fresh process, which reports its wall time, its peak resident memory (``ru_maxrss``), heap
events and delivered packets.

- flows sweep: 1, 10, 100, 1000 flows at 100 Mbit/s, 2 s simulated;
- rate sweep: 2 flows at 10 Mbit/s (5 s simulated), 100 Mbit/s (2 s), 1 Gbit/s (1 s), 10 Gbit/s (0.4 s),
  from tens of thousands to a few hundred thousand packets (at 10 Gbit/s slow start takes the first ~0.25 s).

    python benchmarks/bench_scale.py                      # table + docs/img/scale.png (a few minutes)
    python benchmarks/bench_scale.py --json               # one JSON object per point
    python benchmarks/bench_scale.py --no-plot
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's emu, not another install

FLOWS = [(n, 100e6, 2.0) for n in (1, 10, 100, 1000)]
RATES = [(2, 10e6, 5.0), (2, 100e6, 2.0), (2, 1e9, 1.0), (2, 10e9, 0.4)]


def run_point(n_flows: int, rate_bps: float, duration_s: float, seed: int = 1) -> dict:
    """One run in this process: wall time, events, delivered packets."""
    from emu import Network, Sim
    from emu.transport import open_stream

    sim = Sim(seed=seed)
    net = Network(sim)
    server, client = net.host("server"), net.host("client")
    net.link(server, client, rate=rate_bps, delay=0.010, queue="dualpi2",
             queue_params={"preset": "rfc9332", "link_rate_bps": rate_bps},
             reverse_queue_params={"limit_pkts": 1_000_000})
    net.build_routes()
    for i in range(n_flows):
        open_stream(sim, server, client, cc="prague" if i % 2 == 0 else "cubic", bulk=True, flow=f"f{i}")
    start = time.perf_counter()
    sim.run(until_s=duration_s)
    wall_s = time.perf_counter() - start
    delivered = sim.records.delivered_total_pkts
    return {"flows": n_flows, "rate_bps": rate_bps, "simulated_s": duration_s, "wall_s": wall_s,
            "wall_per_sim_s": wall_s / duration_s, "events": sim.events_scheduled(), "delivered_pkts": delivered,
            "us_per_delivered_pkt": wall_s / max(1, delivered) * 1e6}


def run_in_subprocess(n_flows: int, rate_bps: float, duration_s: float) -> dict:
    code = (f"import sys, json, resource; sys.path.insert(0, {str(ROOT)!r}); "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_scale as b; "
            f"r = b.run_point({n_flows}, {rate_bps!r}, {duration_s!r}); "
            "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flows = [r for r in rows if r["sweep"] == "flows"]
    rates = [r for r in rows if r["sweep"] == "rate"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, pts, key, label in ((axes[0], flows, "flows", "flows (100 Mbit/s, 2 s simulated)"),
                                (axes[1], rates, "rate_bps", "link rate, bit/s (2 flows)")):
        x = [p[key] for p in pts]
        ax.loglog(x, [p["wall_per_sim_s"] for p in pts], "o-", label="wall s per simulated s")
        ax.loglog(x, [p["us_per_delivered_pkt"] for p in pts], "s--", label="µs per delivered packet")
        ax.set_xlabel(label)
        ax2 = ax.twinx()
        ax2.plot(x, [p["peak_rss_mb"] for p in pts], "^:", color="tab:red", label="peak RSS (MB)")
        ax2.set_ylabel("peak RSS, MB", color="tab:red")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("emu: Prague + Cubic over DualPI2, cost against flows and link rate")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "img" / "scale.png"))
    args = parser.parse_args()
    rows = []
    for sweep, points in (("flows", FLOWS), ("rate", RATES)):
        for n, rate, dur in points:
            r = run_in_subprocess(n, rate, dur)
            r["sweep"] = sweep
            rows.append(r)
            if args.json:
                print(json.dumps(r), flush=True)
    if not args.json:
        print(f"{'sweep':6} {'flows':>6} {'rate':>10} {'sim s':>6} {'wall s':>8} {'wall/sim s':>10} "
              f"{'events':>10} {'delivered':>10} {'us/pkt':>7} {'RSS MB':>7}")
        for r in rows:
            print(f"{r['sweep']:6} {r['flows']:6d} {r['rate_bps'] / 1e6:8g}M {r['simulated_s']:6g} {r['wall_s']:8.2f} "
                  f"{r['wall_per_sim_s']:10.2f} {r['events']:10,d} {r['delivered_pkts']:10,d} "
                  f"{r['us_per_delivered_pkt']:7.1f} {r['peak_rss_mb']:7.1f}")
    if not args.no_plot:
        plot(rows, Path(args.plot))
        if not args.json:
            print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
