"""Per-packet record hashes of the validation scenarios, pinned.

Speed work on the transport, queues, links and kernel must not change what happens to any packet: each hash is
the sha256 of every delivered and dropped record of a run (``tests.conftest.records_hash``), computed once the
fidelity fixes were in (RFC 5681 growth rule, RFC 6675 recovery point, RACK DupThresh, Linux-like Cubic fast
convergence) and before any speed change. A deliberate behaviour change must update them and say why.
"""
from __future__ import annotations

import os

import pytest

from emu import BernoulliLossConfig, Sim, dumbbell
from emu.experiments import l4s_coexistence
from emu.transport import open_stream
from emu.transport import validation as v
from tests.conftest import records_hash


def _random_loss():
    sim = Sim(seed=3)
    net = dumbbell(sim, 2, bottleneck_rate="20Mbps", bottleneck_delay="10ms", queue_params={"limit_pkts": 40},
                   loss=BernoulliLossConfig(p=0.01))
    open_stream(sim, net.nodes["s0"], net.nodes["d0"], cc="reno", bulk=True, flow="a")
    open_stream(sim, net.nodes["s1"], net.nodes["d1"], cc="cubic", bulk=True, flow="b", delayed_ack=True)
    sim.run(until_s=5.0)
    return sim


SCENARIOS = {
    "reno_1bdp_unpaced": lambda: v.single_flow("reno", buffer_bdp=1.0, pacing=False, duration_s=8.0,
                                               warmup_s=1.0).sim,
    "cubic_quarter_bdp_paced": lambda: v.single_flow("cubic", rate_bps=20e6, buffer_bdp=0.25, pacing=True,
                                                     duration_s=8.0, warmup_s=1.0).sim,
    "two_cubic_rtts": lambda: v.two_flows_rtt(duration_s=6.0, warmup_s=1.0).sim,
    "prague_step": lambda: v.prague_step(rate_bps=20e6, duration_s=4.0, warmup_s=1.0).sim,
    "coexistence_rfc9332": lambda: l4s_coexistence(rate="50Mbps", duration_s=3.0, warmup_s=1.0,
                                                   preset="rfc9332")["sim"],
    "coexistence_linux": lambda: l4s_coexistence(rate="50Mbps", duration_s=3.0, warmup_s=1.0,
                                                 preset="linux")["sim"],
    "random_loss_delack": _random_loss,
}

HASHES = {
    "reno_1bdp_unpaced": "5b2339eb73cef9d5942e8a2d7bd8508cd5e02bcc9f8d58d3fdb1e733e7c88195",
    "cubic_quarter_bdp_paced": "cc0c7cc34eb31cb33d0464e15cceae6b822949f2035a99a10f324a3c4f4dbc81",
    "two_cubic_rtts": "fa0cdc92ed72ecd93a2e0a451c712c7a211363ea32ae3c6e4e26be24f84ea8d1",
    "prague_step": "b306358356b3b5d6a90d7fda5e5bf6a4d7608145a7f8ded4511c6d0e8105f36f",
    "coexistence_rfc9332": "e4c10aea04e2b603fe9e0041352242e8ccf79631500b7c14d39448a0cab09f69",
    "coexistence_linux": "f86fa2e1ad53987e7f574c94a9bec0e8299835e9b2c81df8bf8f3c474a15f1c2",
    "random_loss_delack": "164c779b62e0c97b84265172c1708ae867cc711b3b55d0219e22693a297d3029",
    "trace_coexistence": "7986ed69c66d916077f2dfeda1693b360f27918116766ee2422cc995aad223cc",
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_records_hash_is_pinned(name):
    assert records_hash(SCENARIOS[name]()) == HASHES[name]


def test_trace_coexistence_records_hash_is_pinned(shared_traces):
    trace = os.path.join(str(shared_traces), "mahimahi", "Verizon-LTE-short.down")
    if not os.path.exists(trace):
        pytest.skip(f"trace {trace} not found")
    sim = l4s_coexistence(trace=trace, rtt_s=0.040, duration_s=6.0, warmup_s=1.0, preset="linux")["sim"]
    assert records_hash(sim) == HASHES["trace_coexistence"]
