"""One small fixed run (a Poisson source over one 10 Mbit/s link for 0.5 s) for tests that need a RunResult."""
from __future__ import annotations

from emu import Network, PoissonSource, RunResult, Sim, Sink


def small_run(record: str) -> RunResult:
    sim = Sim(seed=1, record=record)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate="10Mbps", delay="5ms")
    Sink(sim, b, 5000)
    PoissonSource(sim, a, "b", flow="x", rate_bps=2e6, dport=5000)
    sim.run(until_s=0.5)
    return RunResult(sim)
