"""Validation against closed forms: mean waiting time in queue at load 0.8.

M/M/1: Wq = rho * E[S] / (1 - rho)        (exponential sizes, Poisson arrivals)
M/D/1: Wq = rho * E[S] / (2 * (1 - rho))  (Pollaczek-Khinchine with zero service variance)
"""
import pytest

from emu import Network, PoissonSource, RunResult, Sim, Sink

RATE_BPS = 10e6
SIZE_BYTES = 1250  # E[S] = 1 ms at 10 Mbit/s
LOAD = 0.8
N_PKTS = 400_000


def _mean_wait_s(size_dist: str, seed: int) -> float:
    sim = Sim(seed=seed)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate=RATE_BPS, queue_params={"limit_pkts": None})
    PoissonSource(sim, a, "b", flow="f", rate_bps=LOAD * RATE_BPS, size_bytes=SIZE_BYTES, size_dist=size_dist)
    Sink(sim, b, port=5000)
    service_s = SIZE_BYTES * 8 / RATE_BPS
    sim.run(until_s=N_PKTS * service_s / LOAD)
    qdelay = RunResult(sim).packets()["qdelay_s"].to_numpy()
    warmup = len(qdelay) // 50
    return float(qdelay[warmup:].mean())


def test_md1_mean_wait_within_5_percent():
    service_s = SIZE_BYTES * 8 / RATE_BPS
    expected = LOAD * service_s / (2 * (1 - LOAD))
    got = _mean_wait_s("fixed", seed=11)
    print(f"M/D/1 mean wait {got * 1e3:.4f} ms against {expected * 1e3:.4f} ms: {100 * (got / expected - 1):+.2f} %")
    assert got == pytest.approx(expected, rel=0.05)


def test_mm1_mean_wait_within_5_percent():
    # Exponential sizes are rounded up to whole bytes: E[S] grows by ~0.5 B, which the formula includes.
    mean_size = SIZE_BYTES + 0.5
    service_s = mean_size * 8 / RATE_BPS
    rho = LOAD * mean_size / SIZE_BYTES
    expected = rho * service_s / (1 - rho)
    got = _mean_wait_s("exponential", seed=12)
    print(f"M/M/1 mean wait {got * 1e3:.4f} ms against {expected * 1e3:.4f} ms: {100 * (got / expected - 1):+.2f} %")
    assert got == pytest.approx(expected, rel=0.05)
