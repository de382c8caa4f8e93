"""Covers: Network builder, Poisson traffic, DropTail vs CoDel vs PIE, RunResult tables.

Scenario: one Poisson aggregate at 110 % of a 20 Mbit/s bottleneck (20 ms propagation, 1000-packet buffer).
Each queue discipline sees the same packets (same seed); the table shows how each holds the queueing delay.

    python examples/01_aqm_comparison.py
"""
from __future__ import annotations

import pandas as pd

from emu import Network, PoissonSource, RunResult, Sim, Sink

BOTTLENECK_BPS = 20e6
LOAD = 1.1


def run_one(queue: str, seed: int, duration_s: float) -> dict:
    sim = Sim(seed=seed)
    net = Network(sim)
    a, r, b = net.host("a"), net.router("r"), net.host("b")
    net.link(a, r, rate="1Gbps")
    net.link(r, b, rate=BOTTLENECK_BPS, delay="20ms", queue=queue, queue_params={"limit_pkts": 1000})
    Sink(sim, b, port=5000)
    PoissonSource(sim, a, "b", flow="aggregate", rate_bps=LOAD * BOTTLENECK_BPS, dport=5000)
    sim.run(until_s=duration_s)
    row = RunResult(sim).flows().iloc[0]
    return {"queue": queue, "throughput_Mbps": row.throughput_bps / 1e6, "loss_rate": row.loss_rate,
            "qdelay_mean_ms": row.qdelay_mean_s * 1e3, "qdelay_p99_ms": row.qdelay_p99_s * 1e3}


def main(seed: int = 1, duration_s: float = 10.0) -> pd.DataFrame:
    table = pd.DataFrame([run_one(q, seed, duration_s) for q in ("droptail", "codel", "pie")])
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return table


if __name__ == "__main__":
    main()
