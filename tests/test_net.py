import pytest

from emu import CBRSource, Network, RunResult, Sim, chain, dumbbell
from tests.conftest import CaptureSink


def test_chain_routes_and_end_to_end_delay():
    sim = Sim()
    net = chain(sim, 3, rate="100Mbps", delay="5ms")
    assert net.path("src", "dst") == ["src", "r0", "r1", "r2", "dst"]
    assert net.path("dst", "src") == ["dst", "r2", "r1", "r0", "src"]
    sink = CaptureSink(sim)
    net.nodes["dst"].bind(7, sink)
    CBRSource(sim, net.nodes["src"], "dst", flow="f", rate_bps=1e6, size_bytes=1000, dport=7, stop_s=0.0101)
    sim.run(until_s=1)
    # 4 hops of 5 ms propagation + 4 serialisations of 1000 B at 100 Mbit/s (80 us each).
    t, pkt = sink.got[0]
    assert t - pkt.created_s == pytest.approx(4 * 0.005 + 4 * 80e-6)


def test_dumbbell_shape():
    sim = Sim()
    net = dumbbell(sim, 3, bottleneck_rate="10Mbps", queue="droptail")
    assert net.path("s2", "d1") == ["s2", "left", "right", "d1"]
    assert ("left", "right") in net.links and ("right", "left") in net.links


def test_unknown_node_and_duplicate_names():
    sim = Sim()
    net = Network(sim)
    net.host("a")
    with pytest.raises(ValueError, match="already used"):
        net.router("a")
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        net.link("a", "zz", rate="1Mbps")


def test_unknown_queue_lists_valid_names():
    sim = Sim()
    net = Network(sim)
    net.host("a"), net.host("b")
    with pytest.raises(ValueError, match="valid names: codel, droptail, dualpi2, pie"):
        net.link("a", "b", rate="1Mbps", queue="red")


def test_link_needs_rate_or_trace():
    sim = Sim()
    net = Network(sim)
    net.host("a"), net.host("b")
    with pytest.raises(ValueError, match="rate="):
        net.link("a", "b")


def test_no_route_and_unbound_port_are_recorded_drops():
    from emu.packet import NOT_ECT, Packet

    sim = Sim()
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.host("island")
    net.link(a, b, rate="10Mbps")
    lost = sim.flow("lost")   # a packet sent by hand, past every check, to a host with no route
    sim.call_at(0.1, lambda _: a.send(Packet(next(sim.pkt_ids), lost, "a", "island", 100, 0.1, 0, 9, NOT_ECT, 0)))
    CBRSource(sim, a, "b", flow="nobody", rate_bps=1e5, dport=9, stop_s=0.2)
    sim.run(until_s=1)
    drops = RunResult(sim).drops()
    assert set(drops.groupby("flow")["reason"].first().items()) == {("lost", "no_route"), ("nobody", "unbound_port")}


def test_a_source_towards_an_unreachable_host_fails_at_run_start_naming_it():
    sim = Sim()
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.host("island")
    net.link(a, b, rate="10Mbps")
    CBRSource(sim, a, "island", flow="lost", rate_bps=1e5, stop_s=0.2)
    with pytest.raises(ValueError, match="flow 'lost': no route from 'a' to 'island'"):
        sim.run(until_s=1)
    assert sim.now_s == 0.0


@pytest.mark.parametrize("direction", ["data", "acks"])
def test_a_stream_sender_built_directly_checks_both_directions_at_run_start(direction):
    from emu.transport.stream import StreamReceiver, StreamSender

    sim = Sim()
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    if direction == "data":
        net.link(a, b, rate="10Mbps", duplex=False)   # data a -> b routable, ACKs b -> a not
    else:
        net.link(b, a, rate="10Mbps", duplex=False)
    receiver = StreamReceiver(sim, b)
    StreamSender(sim, a, b, receiver.port, flow="s", bulk=True)
    missing = "from 'b' to 'a'" if direction == "data" else "from 'a' to 'b'"
    with pytest.raises(ValueError, match=f"stream 's': no route {missing}"):
        sim.run(until_s=1)
