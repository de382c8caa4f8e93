"""Canned experiments shared by examples, benchmarks and docs.

``l4s_coexistence``: one Prague (L4S, ECT(1)) and one Cubic (classic) bulk flow through a DualPI2 bottleneck
(the scenario of the L4S validation tests, on the smallest topology: one sending host, one hop), used by
``examples/04_l4s_coexistence.py`` and ``benchmarks/bench_l4s.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def l4s_coexistence(*, rate: Any = "100Mbps", rtt_s: float = 0.020, duration_s: float = 10.0,
                    warmup_s: float = 3.0, preset: str = "rfc9332", seed: int = 1, trace: Any = None,
                    record: str = "full", delayed_ack: bool = False) -> dict:
    """Run Prague vs Cubic over DualPI2 and return its numbers plus the finished ``sim``.

    ``delayed_ack``: both receivers ACK every second segment or after 40 ms (``StreamConfig.delayed_ack``,
    RFC 5681 §4.2), instead of every segment.

    Returns a dict with ``l_sojourn_p99_s`` (Prague packets' queueing delay, i.e. the L queue),
    ``c_sojourn_mean_s`` (Cubic packets', the C queue), ``throughput_ratio`` (Prague / Cubic),
    ``l_bps``, ``c_bps``, ``utilisation`` (of a constant-rate bottleneck), measured over
    [warmup_s, duration_s), and ``sim``.
    """
    from emu import Network, Sim
    from emu.transport import open_stream

    if not duration_s > warmup_s >= 0:
        raise ValueError(f"duration_s must exceed warmup_s >= 0, got {duration_s!r} and {warmup_s!r}")
    sim = Sim(seed=seed, record=record)
    # Both senders on one host, one hop: the bottleneck link carries the DualPI2 queue; the return link
    # (same rate, large FIFO) carries the ACKs. Half the base RTT of propagation each way.
    net = Network(sim)
    server, client = net.host("server"), net.host("client")
    if trace is not None:
        net.link(server, client, trace=trace, reverse_rate="1Gbps", delay=rtt_s / 2, queue="dualpi2",
                 queue_params={"preset": preset}, reverse_queue_params={"limit_pkts": 100_000})
    else:
        net.link(server, client, rate=rate, delay=rtt_s / 2, queue="dualpi2", queue_params={"preset": preset},
                 reverse_queue_params={"limit_pkts": 100_000})
    net.build_routes()
    open_stream(sim, server, client, cc="prague", bulk=True, flow="prague", delayed_ack=delayed_ack)
    open_stream(sim, server, client, cc="cubic", bulk=True, flow="cubic", delayed_ack=delayed_ack)
    sim.run(until_s=duration_s)
    out: dict = {"sim": sim, "network": net}
    if record == "full":
        d = sim.records.delivered_arrays()
        window = (d["delivered_s"] >= warmup_s) & (d["delivered_s"] < duration_s)
        per_flow = {}
        for name in ("prague", "cubic"):
            m = window & (d["flow_id"] == sim.flow(name))
            per_flow[name] = (d["qdelay_s"][m], float(d["size_bytes"][m].sum()) * 8 / (duration_s - warmup_s))
        out.update({
            "l_sojourn_p99_s": float(np.percentile(per_flow["prague"][0], 99)),
            "l_sojourn_mean_s": float(np.mean(per_flow["prague"][0])),
            "c_sojourn_mean_s": float(np.mean(per_flow["cubic"][0])),
            "c_sojourn_p99_s": float(np.percentile(per_flow["cubic"][0], 99)),
            "l_bps": per_flow["prague"][1],
            "c_bps": per_flow["cubic"][1],
            "throughput_ratio": per_flow["prague"][1] / per_flow["cubic"][1],
        })
        if trace is None:
            from emu.units import parse_rate_bps

            out["utilisation"] = (out["l_bps"] + out["c_bps"]) / parse_rate_bps(rate)
    return out


def plot_queue_delays(sim: Any, path: Any, flows: tuple[str, str] = ("prague", "cubic"),
                      labels: tuple[str, str] = ("L queue (Prague)", "C queue (Cubic)"),
                      bin_s: float = 0.05) -> Any:
    """Both queues' delay over time: each flow's per-packet queueing delay, mean and max per ``bin_s``."""
    from emu.plots import _pyplot, _save

    plt = _pyplot()
    d = sim.records.delivered_arrays()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for name, label in zip(flows, labels):
        m = d["flow_id"] == sim.flow(name)
        t, q = d["delivered_s"][m], d["qdelay_s"][m] * 1e3
        if not len(t):
            continue
        bins = (t / bin_s).astype(int)
        n = bins.max() + 1
        count = np.bincount(bins, minlength=n)
        mean = np.bincount(bins, weights=q, minlength=n) / np.maximum(count, 1)
        peak = np.zeros(n)
        np.maximum.at(peak, bins, q)
        x = np.arange(n) * bin_s
        line, = ax.plot(x[count > 0], mean[count > 0], lw=1.2, label=f"{label}: mean per {bin_s * 1e3:g} ms")
        ax.plot(x[count > 0], peak[count > 0], lw=0.6, alpha=0.5, color=line.get_color(), label=f"{label}: max")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("queueing delay (ms)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
