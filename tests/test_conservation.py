"""Packet conservation: sent = delivered + dropped + queued + in flight, over random topologies and loads."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu import BernoulliLossConfig, OnOffSource, PoissonSource, Sim, Sink, chain, dumbbell
from emu.queues import queue_names
from tests.queues.helpers import assert_conserved

QUEUES = queue_names()


def _check(sim):
    rec = sim.records
    held = sim.packets_in_network()
    sent = sum(f.sent_pkts for f in rec.flows)
    assert sent == rec.delivered_total_pkts + rec.dropped_total_pkts + held["queued_pkts"] + held["in_flight_pkts"]
    for element in sim.elements:
        q = getattr(element, "queue", None)
        if q is not None:
            assert_conserved(q)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    topology=st.sampled_from(["dumbbell", "chain"]),
    size=st.integers(1, 4),
    queue=st.sampled_from(QUEUES),
    load=st.floats(0.2, 3.0),
    loss=st.sampled_from([0.0, 0.02]),
    limit=st.integers(2, 200),
    until_s=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**16),
)
def test_conservation(topology, size, queue, load, loss, limit, until_s, seed):
    sim = Sim(seed=seed)
    rate = 5e6
    params = {"limit_pkts": limit}
    if topology == "dumbbell":
        net = dumbbell(sim, size, bottleneck_rate=rate, bottleneck_delay="3ms", queue=queue, queue_params=params,
                       loss=BernoulliLossConfig(p=loss) if loss else None)
        pairs = [(f"s{i}", f"d{i}") for i in range(size)]
    else:
        net = chain(sim, size, rate=rate, delay="2ms", queue=queue, queue_params=params)
        pairs = [("src", "dst")]
    for i, (s, d) in enumerate(pairs):
        Sink(sim, net.nodes[d], port=5000 + i)
        kind = PoissonSource if i % 2 == 0 else OnOffSource
        extra = {} if kind is PoissonSource else {"on_mean_s": 0.05, "off_mean_s": 0.05}
        kind(sim, net.nodes[s], d, flow=f"f{i}", rate_bps=load * rate / len(pairs), dport=5000 + i,
             ecn=i % 4, **extra)
    sim.run(until_s=until_s)
    _check(sim)
