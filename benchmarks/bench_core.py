"""Core throughput benchmark: emu against ns.py and a bare SimPy loop, in one process run.

Scenario (identical for every simulator): one Poisson source at 90 % load of a 100 Mbit/s port, 1500-byte
packets, a 1000-packet buffer, 10 ms propagation, a sink, 10 s simulated (~75 k packets).

    python benchmarks/bench_core.py            # table of packets per wall second and ratios
    python benchmarks/bench_core.py --json     # one JSON object
    python benchmarks/bench_core.py --long     # also 10 M packets in record="summary" mode: peak RSS

Each simulator runs ``--repeats`` times, interleaved; the best run counts (the least disturbed by other load).
ns-3 runs too when the pip ``ns3`` package is importable, or in another interpreter given by ``--ns3-python``
(the pip ``ns3`` and ``ns-py`` packages both install a top-level ``ns`` package, so they cannot share one
environment: ``python -m venv /tmp/ns3 && /tmp/ns3/bin/pip install ns3``; ``--ns3-only`` needs no numpy there).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # this checkout's emu

RATE_BPS = 100e6
LOAD = 0.9
SIZE_BYTES = 1500
BUFFER_PKTS = 1000
PROP_S = 0.010
SIM_S = 10.0


def run_emu(sim_s: float = SIM_S, seed: int = 1, record: str = "full") -> tuple[int, float]:
    from emu import Network, PoissonSource, Sim, Sink

    sim = Sim(seed=seed, record=record)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate=RATE_BPS, delay=PROP_S, queue_params={"limit_pkts": BUFFER_PKTS})
    sink = Sink(sim, b, port=5000)
    PoissonSource(sim, a, "b", flow="f", rate_bps=LOAD * RATE_BPS, size_bytes=SIZE_BYTES, dport=5000)
    start = time.perf_counter()
    sim.run(until_s=sim_s)
    sim.records.finish()
    elapsed = time.perf_counter() - start
    # One hop (a -> b): heap events per packet that crossed it (source timer, serialiser wake-up, arrival).
    EMU_EVENTS["events_per_packet_hop"] = sim.events_scheduled() / max(1, sink.received_pkts)
    return sink.received_pkts, elapsed


EMU_EVENTS: dict[str, float] = {}


def run_nspy(sim_s: float = SIM_S, seed: int = 1) -> tuple[int, float]:
    import numpy as np
    import simpy
    from ns.packet.dist_generator import DistPacketGenerator
    from ns.packet.sink import PacketSink
    from ns.port.port import Port
    from ns.port.wire import Wire

    rng = np.random.default_rng(seed)
    mean_gap_s = SIZE_BYTES * 8 / (LOAD * RATE_BPS)
    env = simpy.Environment()
    gen = DistPacketGenerator(env, "flow_0", lambda: rng.exponential(mean_gap_s), lambda: SIZE_BYTES, flow_id=0)
    port = Port(env, rate=RATE_BPS, qlimit=BUFFER_PKTS)
    wire = Wire(env, lambda: PROP_S)
    sink = PacketSink(env)
    gen.out, port.out, wire.out = port, wire, sink
    start = time.perf_counter()
    env.run(until=sim_s)
    return sink.packets_received[0], time.perf_counter() - start


def run_simpy_ceiling(n: int = 300_000) -> tuple[int, float]:
    """The fastest any SimPy design can go: one process doing nothing but timeouts."""
    import simpy

    env = simpy.Environment()

    def loop(env):
        for _ in range(n):
            yield env.timeout(1e-6)

    env.process(loop(env))
    start = time.perf_counter()
    env.run()
    return n, time.perf_counter() - start


def run_ns3(sim_s: float = SIM_S, seed: int = 1) -> tuple[int, float] | None:
    """ns-3 (pip ``ns3``): the same scenario with a full UDP/IP stack, if the package is installed."""
    try:
        from ns import ns  # type: ignore
    except Exception:
        return None
    if not hasattr(ns, "Simulator"):
        return None
    ns.RngSeedManager.SetSeed(seed)
    nodes = ns.NodeContainer()
    nodes.Create(2)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue(f"{int(RATE_BPS)}bps"))
    p2p.SetChannelAttribute("Delay", ns.StringValue(f"{int(PROP_S * 1000)}ms"))
    p2p.SetQueue("ns3::DropTailQueue", "MaxSize", ns.StringValue(f"{BUFFER_PKTS}p"))
    devices = p2p.Install(nodes)
    stack = ns.InternetStackHelper()
    stack.Install(nodes)
    address = ns.Ipv4AddressHelper()
    address.SetBase(ns.Ipv4Address("10.1.1.0"), ns.Ipv4Mask("255.255.255.0"))
    interfaces = address.Assign(devices)
    sink_helper = ns.PacketSinkHelper("ns3::UdpSocketFactory",
                                      ns.InetSocketAddress(ns.Ipv4Address.GetAny(), 9).ConvertTo())
    sink_apps = sink_helper.Install(nodes.Get(1))
    onoff = ns.OnOffHelper("ns3::UdpSocketFactory",
                           ns.InetSocketAddress(interfaces.GetAddress(1), 9).ConvertTo())
    # Poisson packets: exponential OFF gaps, ON long enough for exactly one packet at a very high rate.
    payload = SIZE_BYTES - 28
    onoff.SetAttribute("PacketSize", ns.UintegerValue(payload))
    onoff.SetAttribute("DataRate", ns.StringValue("100Gbps"))
    on_s = payload * 8 / 100e9
    onoff.SetAttribute("OnTime", ns.StringValue(f"ns3::ConstantRandomVariable[Constant={on_s}]"))
    mean_gap_s = SIZE_BYTES * 8 / (LOAD * RATE_BPS)
    onoff.SetAttribute("OffTime", ns.StringValue(f"ns3::ExponentialRandomVariable[Mean={mean_gap_s}]"))
    apps = onoff.Install(nodes.Get(0))
    apps.Start(ns.Seconds(0.0))
    apps.Stop(ns.Seconds(sim_s))
    ns.Simulator.Stop(ns.Seconds(sim_s))
    start = time.perf_counter()
    ns.Simulator.Run()
    elapsed = time.perf_counter() - start
    sink = sink_apps.Get(0).GetObject[ns.PacketSink]()
    received = int(sink.GetTotalRx() // payload)
    ns.Simulator.Destroy()
    return received, elapsed


def run_ns3_elsewhere(python: str) -> tuple[int, float] | None:
    """ns-3 in another interpreter (this file with ``--ns3-only``); None if it cannot run there."""
    done = subprocess.run([python, os.path.abspath(__file__), "--ns3-only"], capture_output=True, text=True)
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip() and "materialize" not in line][-3:]
        print(f"ns-3 run in {python} failed: {' | '.join(tail)}", file=sys.stderr)
        return None
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return got["pkts"], got["wall_s"]


def long_run(n_pkts: int) -> dict:
    """Run ``n_pkts`` packets through the scenario in summary mode in a fresh process; report peak RSS."""
    sim_s = n_pkts * SIZE_BYTES * 8 / (LOAD * RATE_BPS)
    code = (f"import sys, json, resource; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import bench_core as b; n, dt = b.run_emu({sim_s!r}, record='summary'); "
            "print(json.dumps({'pkts': n, 'wall_s': dt, "
            "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long", action="store_true", help="also run 10 M packets in summary mode (peak RSS)")
    parser.add_argument("--long-pkts", type=int, default=10_000_000)
    parser.add_argument("--ns3-python", default=None, help="interpreter that has the pip ns3 package")
    parser.add_argument("--ns3-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ns3_only:
        got = run_ns3()
        if got is None:
            sys.exit(1)
        print(json.dumps({"pkts": got[0], "wall_s": got[1]}))
        return

    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    runners = {"emu": run_emu, "nspy": run_nspy, "simpy": run_simpy_ceiling}
    if args.ns3_python:
        runners["ns3"] = lambda: run_ns3_elsewhere(args.ns3_python)
    else:
        try:
            import ns.packet  # noqa: F401  (ns.py present: the pip ns3 package cannot be)
        except ImportError:
            runners["ns3"] = run_ns3
    for _ in range(args.repeats):
        for name, fn in runners.items():
            got = fn()
            if got is None:
                continue
            n, dt = got
            counts[name] = n
            best[name] = max(best.get(name, 0.0), n / dt)
    result = {
        "emu_pkts_per_s": round(best["emu"]),
        "nspy_pkts_per_s": round(best["nspy"]),
        "simpy_timeouts_per_s": round(best["simpy"]),
        "ratio_vs_nspy": round(best["emu"] / best["nspy"], 2),
        "ratio_vs_simpy_ceiling": round(best["emu"] / best["simpy"], 3),
        "emu_pkts": counts["emu"],
        "events_per_packet_hop": round(EMU_EVENTS["events_per_packet_hop"], 3),
        "nspy_pkts": counts["nspy"],
    }
    if "ns3" in best:
        result["ns3_pkts_per_s"] = round(best["ns3"])
        result["ratio_vs_ns3"] = round(best["emu"] / best["ns3"], 2)
    if args.long:
        lr = long_run(args.long_pkts)
        result.update({"long_run_pkts": lr["pkts"], "long_run_peak_rss_mb": round(lr["peak_rss_mb"], 1),
                       "long_run_pkts_per_s": round(lr["pkts"] / lr["wall_s"])})
    if args.json:
        print(json.dumps(result))
        return
    print(f"scenario: Poisson {LOAD:.0%} load, {RATE_BPS / 1e6:g} Mbit/s, {SIZE_BYTES} B, {BUFFER_PKTS}-pkt buffer, "
          f"{PROP_S * 1e3:g} ms, {SIM_S:g} s simulated; best of {args.repeats}")
    print(f"{'simulator':<22}{'packets/s':>14}{'emu ratio':>12}")
    rows = [("emu", best["emu"]), ("ns.py 0.4.3", best["nspy"])]
    if "ns3" in best:
        rows.append(("ns-3 (pip ns3)", best["ns3"]))
    for label, value in rows:
        print(f"{label:<22}{value:>14,.0f}{best['emu'] / value:>11.2f}x")
    print(f"{'bare SimPy timeouts':<22}{best['simpy']:>14,.0f}{best['emu'] / best['simpy']:>11.3f}x  (ceiling)")
    print(f"emu heap events per packet-hop: {result['events_per_packet_hop']:.3f}")
    if args.long:
        print(f"long run: {result['long_run_pkts']:,} packets, peak RSS {result['long_run_peak_rss_mb']} MB, "
              f"{result['long_run_pkts_per_s']:,} packets/s")


if __name__ == "__main__":
    main()
