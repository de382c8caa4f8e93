"""What the stated limits cost (docs/errors.md, "Limits"): building big topologies, many flows, big traces, long
runs. Every point runs in a fresh process that reports its wall time and its peak resident memory.

- build: ``dumbbell(sim, N)`` for N = 100, 1000, 10 000 pairs (2N hosts, 4N + 2 one-way links), routes included;
  the growth ratio (CPU seconds per pair at N over CPU seconds per pair at 100) is ~1 for a near-linear builder
  (CPU time, ``time.process_time``, is shown beside wall time: on a shared machine it is the steadier of the two);
  beside it, at 100 and 300 pairs, the routes alone against one plain BFS per destination host (the builder
  before stub hosts shared a search), measured in the same process;
- flows: N CBR flows of 100 kbit/s, one per dumbbell pair, through a 2 Gbit/s bottleneck for 1 simulated second;
- trace: a Mahimahi file of 10^6 and 10^7 lines (about 12 Mbit/s, written here, then loaded);
- duration: one 10 Mbit/s CBR flow for 10 and 100 simulated seconds (wall seconds per simulated second).

    python benchmarks/bench_build.py            # the table (about a minute)
    python benchmarks/bench_build.py --json     # one JSON object per point
    python benchmarks/bench_build.py --quick    # smaller points (seconds), e.g. as a smoke test
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's emu, not another install


def point_build(pairs: int) -> dict:
    import time

    from emu.net import dumbbell
    from emu.sim import Sim

    cpu, start = time.process_time(), time.perf_counter()
    net = dumbbell(Sim(1), pairs)
    build_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return {"kind": "build", "pairs": pairs, "hosts": 2 * pairs, "links": len(net.links), "wall_s": build_s,
            "cpu_s": cpu_s, "cpu_per_pair_us": cpu_s / pairs * 1e6}


def _bfs_per_host(net) -> None:
    """Routes as one backwards BFS per destination host: the reference that tests/test_routes.py checks
    ``Network.build_routes`` against (ties to the smallest neighbour name)."""
    from tests.test_routes import reference_next_hops

    reference_next_hops(net)


def point_routes(pairs: int) -> dict:
    import time

    from emu.net import dumbbell
    from emu.sim import Sim

    net = dumbbell(Sim(1), pairs)
    start = time.perf_counter()
    net.build_routes()
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    _bfs_per_host(net)
    reference_s = time.perf_counter() - start
    return {"kind": "routes", "pairs": pairs, "wall_s": ours_s, "bfs_per_host_s": reference_s,
            "speedup": reference_s / ours_s}


def point_flows(pairs: int) -> dict:
    import time

    from emu.apps.traffic import CBRSource, Sink
    from emu.net import dumbbell
    from emu.sim import Sim

    sim = Sim(1)   # full records (summary mode adds 67 KB of delay histograms per flow that delivers)
    start = time.perf_counter()
    net = dumbbell(sim, pairs, bottleneck_rate="2Gbps")
    for i in range(pairs):   # starts spread over one packet gap (0.1 s), so the flows do not arrive in one burst
        Sink(sim, net.nodes[f"d{i}"], 5000)
        CBRSource(sim, net.nodes[f"s{i}"], f"d{i}", flow=f"f{i}", rate_bps=100e3, size_bytes=1250,
                  start_s=0.1 * i / pairs)
    built_s = time.perf_counter() - start
    sim.run(1.0)
    return {"kind": "flows", "flows": pairs, "build_s": built_s, "wall_s": time.perf_counter() - start,
            "delivered_pkts": sim.records.delivered_total_pkts}


def write_trace(lines: int, folder: str) -> Path:
    """One opportunity per millisecond (about 12 Mbit/s), written in chunks (by the parent process, so that the
    point measures reading only)."""
    path = Path(folder) / f"big-{lines}.trace"
    with open(path, "w") as f:
        for start in range(1, lines + 1, 1_000_000):
            f.write("".join(f"{ms}\n" for ms in range(start, min(lines, start + 999_999) + 1)))
    return path


def point_trace(lines: int, folder: str) -> dict:
    import time

    from emu.links.tracefile import load_trace

    path = Path(folder) / f"big-{lines}.trace"
    start = time.perf_counter()
    sched = load_trace(path)
    return {"kind": "trace", "lines": lines, "file_mb": path.stat().st_size / 1e6, "period_s": sched.period_s,
            "wall_s": time.perf_counter() - start}


def point_duration(duration_s: float) -> dict:
    import time

    from emu.apps.traffic import CBRSource, Sink
    from emu.net import dumbbell
    from emu.sim import Sim

    sim = Sim(1, record="summary")
    net = dumbbell(sim, 1, bottleneck_rate="20Mbps")
    Sink(sim, net.nodes["d0"], 5000)
    CBRSource(sim, net.nodes["s0"], "d0", flow="cbr", rate_bps=10e6, size_bytes=1250)
    start = time.perf_counter()
    sim.run(duration_s)
    wall_s = time.perf_counter() - start
    return {"kind": "duration", "simulated_s": duration_s, "wall_s": wall_s, "wall_per_sim_s": wall_s / duration_s,
            "delivered_pkts": sim.records.delivered_total_pkts}


def in_subprocess(call: str) -> dict:
    code = (f"import sys, json, resource; sys.path.insert(0, {str(ROOT)!r}); "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_build as b; "
            "import emu.net, emu.links.tracefile, emu.apps.traffic; "
            f"base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; r = b.{call}; "
            "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
            "r['added_rss_mb'] = r['peak_rss_mb'] - base / 1024; print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smaller points")
    args = parser.parse_args()
    pairs = (100, 1000) if args.quick else (100, 1000, 10_000)
    with tempfile.TemporaryDirectory() as folder:
        calls = [f"point_build({n})" for n in pairs]
        calls += [f"point_routes({n})" for n in (100, 300)]
        calls += [f"point_flows({n})" for n in ((100, 1000) if args.quick else (100, 1000, 10_000))]
        trace_lines = (10**5, 10**6) if args.quick else (10**6, 10**7)
        for n in trace_lines:
            write_trace(n, folder)
        calls += [f"point_trace({n}, {folder!r})" for n in trace_lines]
        calls += [f"point_duration({d})" for d in ((10.0,) if args.quick else (10.0, 100.0))]
        rows = [in_subprocess(call) for call in calls]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    base = next(r for r in rows if r["kind"] == "build" and r["pairs"] == 100)["cpu_per_pair_us"]
    print("| what | size | wall s | added memory MB | notes |")
    print("|---|---|---|---|---|")
    for r in rows:
        if r["kind"] == "build":
            note = (f"{r['links']} links; CPU {r['cpu_s']:.2f} s, per pair x{r['cpu_per_pair_us'] / base:.2f} of "
                    "100 pairs'")
            print(f"| dumbbell build | {r['pairs']} pairs | {r['wall_s']:.2f} | {r['added_rss_mb']:.0f} | {note} |")
        elif r["kind"] == "routes":
            print(f"| routes only | {r['pairs']} pairs | {r['wall_s']:.4f} | {r['added_rss_mb']:.0f} | "
                  f"x{r['speedup']:.0f} faster than a BFS per host ({r['bfs_per_host_s']:.2f} s) |")
        elif r["kind"] == "flows":
            print(f"| CBR flows, 1 sim s | {r['flows']} flows | {r['wall_s']:.2f} | {r['added_rss_mb']:.0f} | "
                  f"build {r['build_s']:.2f} s, {r['delivered_pkts']} packets |")
        elif r["kind"] == "trace":
            print(f"| Mahimahi trace load | {r['lines']} lines ({r['file_mb']:.0f} MB) | {r['wall_s']:.2f} | "
                  f"{r['added_rss_mb']:.0f} | period {r['period_s']:.0f} s |")
        else:
            print(f"| 10 Mbit/s CBR run | {r['simulated_s']:g} sim s | {r['wall_s']:.2f} | {r['added_rss_mb']:.0f} | "
                  f"{r['wall_per_sim_s']:.3f} wall s per sim s |")


if __name__ == "__main__":
    main()
