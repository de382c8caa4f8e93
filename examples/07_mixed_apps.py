"""Every registered app and two TCP-like bulk flows on one trace-driven DualPI2 bottleneck.

    python examples/07_mixed_apps.py [--trace nyc-cellular-2019/trace-2925703-home1] [--duration 30] [--seed 1]

One access-bottleneck network (``emu.topologies.access_bottleneck``): a pair of hosts per app, the bottleneck
following a real LTE capacity trace through a DualPI2 queue (RFC 9332), 40 ms base RTT. The apps are installed
with ``emu.apps.install`` exactly as a user would: Chatterbox token streaming, a Grace++ video call, a CacheGen
KV-cache fetch, a SwiftQueue real-time sender choosing L or C per packet, a CacheBlend layer-wise fetch of
non-prefix chunk caches, a DroidSpeak cache hand-over between two fine-tuned agents, an adaptive-bitrate video player
(RobustMPC), and Prague and Cubic bulk transfers. A test (tests/test_app_contract.py) checks that
every registered app is here.
Prints the per-flow table (ACK flows left out) and the per-app table (``RunResult.apps()``).
"""
from __future__ import annotations

import argparse

import pandas as pd

import emu.apps
from emu import RunResult, Sim
from emu.topologies import access_bottleneck


def build(trace: str, seed: int, duration_s: float, **overrides: dict):
    """The network and the installed endpoints (name -> endpoint); ``overrides`` (app -> params) shrink the apps
    for quick runs."""
    sim = Sim(seed=seed)
    installs = [  # (app, scheme, parameters)
        ("chatterbox", "chatterbox", {"n_responses": 2}),
        ("grace", "grace", {"max_frames": 120}),   # the whole carphone clip
        ("kvfetch", "cachegen", {"context_tokens": 1024}),
        ("swiftqueue", "swiftqueue", {"duration_s": duration_s - 1.0}),
        ("kvblend", "cacheblend", {"chunks": 4}),
        ("droidspeak", "droidspeak", {"context_tokens": 1024}),
        ("abr", "mpc", {}),
        ("bulk", "prague", {}),
        ("bulk", "cubic", {}),
    ]
    topo = access_bottleneck(sim, pairs=len(installs), trace=trace, rtt_s=0.04, queue="dualpi2")
    endpoints = {}
    for i, (app, scheme, params) in enumerate(installs):
        params = {**params, **overrides.get(app, {})}
        name = app if app != "bulk" else f"bulk_{scheme}"
        endpoints[name] = emu.apps.install(topo.net, app, src=topo.senders[i], dst=topo.receivers[i], name=name,
                                           scheme=scheme, start_s=0.5 * i, **params)
    return sim, endpoints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="nyc-cellular-2019/trace-2925703-home1",
                    help="bottleneck capacity trace (a path, or one inside the shared traces folder)")
    ap.add_argument("--duration", type=float, default=30.0, help="simulated seconds (default 30)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sim, _ = build(args.trace, args.seed, args.duration)
    sim.run(until_s=args.duration, progress=True)
    result = RunResult(sim)
    flows = result.flows()
    flows = flows[~flows["flow"].str.endswith(".ack")]
    table = pd.DataFrame({
        "flow": flows["flow"],
        "Mbit/s": (flows["throughput_bps"] / 1e6).round(3),
        "delay p50 ms": (flows["delay_p50_s"] * 1e3).round(1),
        "delay p99 ms": (flows["delay_p99_s"] * 1e3).round(1),
        "lost": flows["dropped_pkts"],
    })
    print(table.to_string(index=False))
    print()
    apps = result.apps()
    cols = ["name", "app", "scheme", "done", "stall_ratio", "ttft_s", "ssim_db", "frame_delay_p95_s", "p99_s",
            "qoe", "goodput_bps"]
    print(apps[[c for c in cols if c in apps.columns]].to_string(index=False, float_format=lambda x: f"{x:.4g}"))


if __name__ == "__main__":
    main()
