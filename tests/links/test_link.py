import pytest

from emu.links import BernoulliLossConfig, GilbertElliottLossConfig, JitterConfig, Link, LinkConfig
from emu.packet import Packet
from emu.queues import DropTailQueue
from emu.sim import Sim
from tests.conftest import CaptureSink


def _send(sim, link, size, at_s, pid):
    sim.call_at(at_s, link.receive, Packet(pid, 0, "a", "b", size, at_s))


def test_exact_departure_and_arrival_times():
    sim = Sim()
    sink = CaptureSink(sim)
    link = Link(sim, "l", LinkConfig(rate_bps=800, delay_s=0.5), out=sink)
    _send(sim, link, 100, 0.0, 0)  # 100 B at 800 b/s: serialised by 1 s, arrives at 1.5 s
    _send(sim, link, 100, 0.2, 1)  # waits for the first: leaves at 2 s, arrives 2.5 s
    _send(sim, link, 50, 5.0, 2)   # idle link: 0.5 s serialisation
    sim.run(until_s=10)
    assert [round(t, 9) for t, _ in sink.got] == [1.5, 2.5, 6.0]
    assert sink.got[1][1].qdelay_s == pytest.approx(0.8)


def test_queue_limit_and_drop_records():
    sim = Sim()
    sink = CaptureSink(sim)
    link = Link(sim, "l", LinkConfig(rate_bps=8000), queue=DropTailQueue(limit_pkts=2), out=sink)
    for i in range(5):  # one in service, two queued, two dropped
        _send(sim, link, 1000, 0.0, i)
    sim.run(until_s=10)
    assert len(sink.got) == 3
    assert sim.records.dropped_total_pkts == 2
    assert link.queue.stats.drops == {"overflow": 2}


def test_mtu_drops_and_validation():
    sim = Sim()
    sink = CaptureSink(sim)
    link = Link(sim, "l", LinkConfig(rate_bps=1e6, mtu_bytes=1500), out=sink)
    _send(sim, link, 1501, 0.0, 0)
    _send(sim, link, 1500, 0.0, 1)
    sim.run(until_s=1)
    assert [p.pkt_id for _, p in sink.got] == [1]
    with pytest.raises(ValueError, match="mtu_bytes"):
        LinkConfig(rate_bps=1e6, mtu_bytes=0)
    with pytest.raises(ValueError, match="rate_bps"):
        LinkConfig(rate_bps=-5)
    with pytest.raises(ValueError, match="delay_s"):
        LinkConfig(rate_bps=5, delay_s=-1)


def test_dangling_output_fails_before_time_starts():
    sim = Sim()
    Link(sim, "orphan", LinkConfig(rate_bps=1e6))
    with pytest.raises(ValueError, match="orphan"):
        sim.run(until_s=1)
    assert sim.now_s == 0.0


def _lossy_run(loss, n=20000):
    sim = Sim(seed=3)
    sink = CaptureSink(sim)
    link = Link(sim, "l", LinkConfig(rate_bps=1e9, loss=loss), queue=DropTailQueue(limit_pkts=None), out=sink)
    for i in range(n):
        _send(sim, link, 100, i * 1e-5, i)
    sim.run(until_s=1)
    return len(sink.got) / n, [p.pkt_id for _, p in sink.got]


def test_bernoulli_loss_rate():
    delivered, _ = _lossy_run(BernoulliLossConfig(p=0.1))
    assert 1 - delivered == pytest.approx(0.1, abs=0.01)


def test_gilbert_elliott_mean_and_bursts():
    cfg = GilbertElliottLossConfig(p_good_to_bad=0.01, p_bad_to_good=0.25)
    delivered, ids = _lossy_run(cfg, n=50000)
    assert 1 - delivered == pytest.approx(cfg.mean_loss, rel=0.15)
    got = set(ids)
    lost = [i for i in range(50000) if i not in got]
    runs = sum(1 for a, b in zip(lost, lost[1:]) if b != a + 1) + 1
    assert len(lost) / runs == pytest.approx(1 / 0.25, rel=0.2)  # mean burst length 1/p_bad_to_good
    with pytest.raises(ValueError, match="p_bad_to_good"):
        GilbertElliottLossConfig(p_good_to_bad=0.1, p_bad_to_good=1.5)


@pytest.mark.parametrize("reorder", [False, True])
def test_jitter_order(reorder):
    sim = Sim(seed=1)
    sink = CaptureSink(sim)
    link = Link(sim, "l", LinkConfig(rate_bps=1e9, delay_s=0.01,
                                     jitter=JitterConfig(mean_s=0.005, reorder=reorder)), out=sink)
    for i in range(2000):
        _send(sim, link, 100, i * 1e-4, i)
    sim.run(until_s=2)
    ids = [p.pkt_id for _, p in sink.got]
    assert len(ids) == 2000
    assert (ids == sorted(ids)) is (not reorder)
    delays = [t - p.created_s for t, p in sink.got]
    assert min(delays) >= 0.01
