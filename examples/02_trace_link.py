"""Covers: TraceLink with a real Mahimahi cellular trace, saturating CBR, throughput plot.

Scenario: a CBR flow offered at 12 Mbit/s into the Verizon LTE downlink trace (Mahimahi format) from
../shared/traces, behind a 200-packet DropTail queue; prints delivered vs trace capacity and writes plots.

    python examples/02_trace_link.py
"""
from __future__ import annotations

from emu import CBRSource, Network, RunResult, Sim, Sink
from emu.links.tracefile import require_shared_traces, trace_stats


def main(seed: int = 1, duration_s: float = 30.0, out_dir: str | None = None) -> dict:
    trace = require_shared_traces() / "mahimahi" / "Verizon-LTE-short.down"
    sim = Sim(seed=seed)
    net = Network(sim)
    a, b = net.host("phone-server"), net.host("phone")
    net.link(a, b, trace=trace, reverse_rate="10Mbps", delay="20ms", queue_params={"limit_pkts": 200})
    Sink(sim, b, port=5000)
    CBRSource(sim, a, "phone", flow="cbr", rate_bps=12e6, dport=5000)
    sim.run(until_s=duration_s)
    result = RunResult(sim)
    row = result.flows().iloc[0]
    stats = trace_stats(trace)
    summary = {"trace_mean_Mbps": stats["mean_bps"] / 1e6, "delivered_Mbps": row.throughput_bps / 1e6,
               "delay_p50_ms": row.delay_p50_s * 1e3, "delay_p99_ms": row.delay_p99_s * 1e3}
    print(summary)
    if out_dir:
        result.write(out_dir, overwrite=True)
        print(f"plots in {out_dir}/")
    return summary


if __name__ == "__main__":
    main(out_dir="runs/trace-link")
