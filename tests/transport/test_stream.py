"""The reliable stream: delivery, SACK scoreboard, RACK loss detection, RTO back-off, AccECN, delayed ACKs, pacing.

Two hosts joined by a 100 Mbit/s, 10 ms link; an ``Interceptor`` at the far end of a->b drops, delays or
CE-marks chosen data segments (first transmission only), so each behaviour is provoked exactly.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from emu import Network, Sim
from emu.packet import CE, ECT0, ECT1, NOT_ECT, Packet
from emu.transport import (
    KIND_ACK, KIND_DATA, LazyTimer, StreamConfig, StreamReceiver, StreamSender, open_stream,
)

MSS = 1448


class Interceptor:
    """Forwards packets to ``out``; drops, holds back (``hold``: seq -> extra delay) or CE-marks chosen data
    segments."""

    def __init__(self, sim, out, *, drop=(), hold=None, mark=(), drop_after_s=None):
        self.sim = sim
        self.out = out
        self.drop = set(drop)
        self.hold = dict(hold or {})
        self.mark = set(mark)
        self.drop_after_s = drop_after_s
        self.seen = Counter()
        self.ecn_first = {}
        self.ecn_retx = {}
        self.acks = []

    def receive(self, pkt: Packet) -> None:
        if pkt.kind == KIND_ACK:
            self.acks.append(pkt.payload)
        elif pkt.kind == KIND_DATA:
            seq = pkt.seq
            self.seen[seq] += 1
            first = self.seen[seq] == 1
            (self.ecn_first if first else self.ecn_retx)[seq] = pkt.ecn
            if self.drop_after_s is not None and self.sim.now_s >= self.drop_after_s:
                return
            if first and seq in self.drop:
                return
            if seq in self.mark:
                pkt.ecn = CE
            if first and seq in self.hold:
                self.sim.call_in(self.hold[seq], self.out.receive, pkt)
                return
        self.out.receive(pkt)


def two_hosts(sim, rate="100Mbps", delay="10ms", **icpt):
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate=rate, delay=delay, queue_params={"limit_pkts": 10_000})
    net.build_routes()
    fwd = net.links[("a", "b")]
    fwd.out = Interceptor(sim, b, **icpt)
    rev = net.links[("b", "a")]
    rev.out = Interceptor(sim, a)
    return net, a, b, fwd.out, rev.out


def log_transmissions(sender):
    """Wrap the sender's transmit to log (time, segment, new) for every packet it sends."""
    log = []
    orig = sender._transmit

    def transmit(seg, length, now, new):
        log.append((now, seg, new))
        orig(seg, length, now, new)

    sender._transmit = transmit
    return log


# -- delivery -------------------------------------------------------------------------------------------------------


def test_transfer_delivers_every_byte_in_order_and_records_flows():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    got = []
    s, r = open_stream(sim, a, b, cc="cubic", flow="f", on_data=lambda n, t: got.append(n))
    s.write(1_000_000)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 1_000_000 == s.acked_bytes == s.delivered_bytes
    assert got[-1] == 1_000_000 and got == sorted(got)
    assert s.outstanding_segments == 0 and s.inflight_bytes == 0
    assert s.retransmitted_pkts == 0 and s.lost_pkts == 0
    assert s.sent_pkts == -(-1_000_000 // MSS) == r.rx_pkts
    fid, ack_fid = sim.flow("f"), sim.flow("f.ack")
    d = sim.records.delivered_arrays()
    assert (d["flow_id"] == fid).sum() == r.rx_pkts
    assert (d["flow_id"] == ack_fid).sum() == r.acks_sent == s.acks_received
    assert sim.records.flows[fid].sent_pkts == s.sent_pkts
    assert sim.records.flows[fid].sent_bytes == 1_000_000 + 52 * s.sent_pkts
    assert not s._rto_timer.armed                           # RFC 6298 §5.2: stopped when all is acked


def test_ack_samples_carry_rtt_owd_and_delivery():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    samples = []
    s, r = open_stream(sim, a, b, cc="reno", on_ack_sample=samples.append)
    s.write(200 * MSS)
    sim.run(until_s=1.0)
    rtt0 = 0.020 + 1500 * 8 / 100e6 + 64 * 8 / 100e6
    assert samples[0].rtt_s == pytest.approx(rtt0, rel=1e-6)
    assert samples[0].owd_s == pytest.approx(0.010 + 1500 * 8 / 100e6, rel=1e-6)
    assert all(x.rtt_s >= rtt0 - 1e-9 for x in samples)
    delivered = [x.delivered_bytes for x in samples]
    assert delivered == sorted(delivered) and delivered[-1] == 200 * MSS
    assert sum(x.acked_bytes for x in samples) == 200 * MSS
    assert s.min_rtt_s == pytest.approx(rtt0, rel=1e-6)


# -- RACK loss detection ----------------------------------------------------------------------------------------------


def write_every(sim, sender, n_segments, gap_s=0.001):
    """An application writing one segment every ``gap_s`` (well below the link rate: no queueing)."""
    def tick(i):
        sender.write(MSS)
        if i + 1 < n_segments:
            sim.call_in(gap_s, tick, i + 1)

    sim.call_at(0.0, tick, 0)


def test_rack_declares_loss_after_rtt_plus_reo_wnd():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, drop={40})
    s, r = open_stream(sim, a, b, cc="reno", dupthresh_pkts=None)       # always wait reo_wnd
    log = log_transmissions(s)
    write_every(sim, s, 300)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 300 * MSS
    assert s.retransmitted_pkts == 1 and s.lost_pkts == 1 and s.rto_count == 0
    assert s.cc.congestion_events == 1
    sent40 = [t for t, seg, new in log if seg == 40]
    assert len(sent40) == 2
    # Segment 41 (sent 1 ms later) is delivered first; 40 is declared lost when RACK.rtt + reo_wnd has passed
    # since it was sent, reo_wnd = min_rtt / 4 (RFC 8985 §6.2): the reordering timer fires exactly then.
    assert sent40[1] - sent40[0] == pytest.approx(s.min_rtt_s * 1.25, abs=1e-9)


def test_rack_dupthresh_retransmits_on_the_third_sacked_segment():
    # RFC 8985 §6.2 step 4 (Linux tcp_rack_reo_wnd): no reordering seen and 3 segments SACKed -> reo_wnd = 0,
    # so the retransmission leaves on the ACK that SACKs the third segment above the hole, not on a timer.
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, drop={40})
    s, r = open_stream(sim, a, b, cc="reno", pacing=False)             # unpaced: it leaves on that ACK
    log = log_transmissions(s)
    write_every(sim, s, 300)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 300 * MSS and s.retransmitted_pkts == 1 and s.rto_count == 0
    sent40 = [t for t, seg, new in log if seg == 40]
    d = sim.records.delivered_arrays()
    ack_times = np.sort(d["delivered_s"][d["flow_id"] == s.ack_flow_id])
    assert sent40[1] in set(ack_times.tolist())                        # sent on an ACK, not by a timer
    assert sent40[1] - sent40[0] < s.min_rtt_s * 1.25                  # before reo_wnd would have expired


def test_reordered_segment_within_reo_wnd_is_not_retransmitted():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, hold={40: 0.002, 80: 0.003})    # < reo_wnd = 5 ms
    # Time-based RACK only: with the DupThresh rule (the default) the first reordering of more than 3 segments,
    # seen before any reordering was known, is retransmitted, as in Linux (see the next test).
    s, r = open_stream(sim, a, b, cc="reno", dupthresh_pkts=None)
    s.write(300 * MSS)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 300 * MSS
    assert s.retransmitted_pkts == 0 and s.lost_pkts == 0
    assert s.cc.congestion_events == 0
    assert r.dup_pkts == 0


def test_dupthresh_stops_after_the_first_reordering():
    # The first hold (16 segments overtake 40) looks like a loss: DupThresh retransmits 40. It then arrives
    # un-retransmitted below the highest delivered segment: RACK.reord is set and the window is reo_wnd again,
    # so the second hold (3 ms < reo_wnd = 5 ms) is waited out.
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, hold={40: 0.002, 200: 0.003})
    s, r = open_stream(sim, a, b, cc="reno")
    log = log_transmissions(s)
    s.write(300 * MSS)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 300 * MSS
    assert s._reord
    assert [seg for t, seg, new in log if not new] == [40]


def test_reordering_beyond_reo_wnd_is_taken_for_loss():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, hold={40: 0.015})                 # > reo_wnd: spurious retransmission
    s, r = open_stream(sim, a, b, cc="reno")
    s.write(300 * MSS)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 300 * MSS
    assert s.retransmitted_pkts == 1 and r.dup_pkts == 1


def test_rto_backs_off_exponentially_and_goes_back_to_first_unacked():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, drop_after_s=0.3)                  # black hole from 0.3 s
    s, r = open_stream(sim, a, b, cc="cubic", bulk=True)
    log = log_transmissions(s)
    sim.run(until_s=4.5)
    retx = [(t, seg) for t, seg, new in log if not new and t > 0.3]
    assert s.rto_count >= 4
    # One retransmission per RTO (cwnd = 1 MSS), always the first unacknowledged segment.
    assert len({seg for _, seg in retx}) == 1
    assert retx[0][1] == s._snd_una
    times = [t for t, _ in retx]
    gaps = np.diff(times)
    assert gaps[0] == pytest.approx(0.4, rel=1e-6)           # min RTO 200 ms, doubled after the first expiry
    assert gaps[1] / gaps[0] == pytest.approx(2.0, rel=1e-6)
    assert gaps[2] / gaps[1] == pytest.approx(2.0, rel=1e-6)
    assert s.cc.cwnd_bytes == MSS


def test_rto_recovers_after_outage():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    s, r = open_stream(sim, a, b, cc="cubic")
    s.write(2000 * MSS)
    sim.call_at(0.1, lambda _: setattr(fwd, "drop_after_s", 0.1))
    sim.call_at(0.6, lambda _: setattr(fwd, "drop_after_s", None))
    sim.run(until_s=5.0)
    assert s.rto_count >= 1
    assert r.bytes_in_order == 2000 * MSS
    assert s.outstanding_segments == 0


# -- SACK -----------------------------------------------------------------------------------------------------------


def test_sack_blocks_and_scoreboard_recover_multiple_holes():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, drop={30, 33, 34})
    s, r = open_stream(sim, a, b, cc="reno")
    log = log_transmissions(s)
    s.write(200 * MSS)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 200 * MSS
    assert sorted(seg for _, seg, new in log if not new) == [30, 33, 34]
    # While 30 is missing, ACKs carry cum = 30 and SACK blocks for 31-32 and 35.., newest block first.
    holes = [info for info in rev.acks if info.cum == 30 and len(info.sacks) == 2]
    assert holes
    assert holes[-1].sacks[1] == (31, 33) and holes[-1].sacks[0][0] == 35
    assert s.cc.congestion_events == 1                      # three losses of one window: one reduction


def test_receiver_sack_blocks_order_and_limit():
    sim = Sim(seed=1)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate="100Mbps", delay="1ms")
    net.build_routes()

    class Capture:
        def __init__(self):
            self.acks = []

        def receive(self, pkt):
            self.acks.append(pkt.payload)

    cap = Capture()
    a.bind(7000, cap)
    r = StreamReceiver(sim, b, 80, max_sack_blocks=2)
    fid = sim.flow("manual")

    def deliver(seq):
        r.receive(Packet(sim.new_pkt_id(), fid, "a", "b", 100, 0.0, 7000, 80, NOT_ECT, seq, KIND_DATA, 48))

    for seq in (0, 1, 3, 4, 6, 9):
        deliver(seq)
    assert r.rcv_nxt == 2
    assert r.sack_blocks() == ((9, 10), (6, 7))            # most recent first, at most 2
    deliver(4)                                              # duplicate
    assert r.dup_pkts == 1
    deliver(2)
    assert r.rcv_nxt == 5 and r.bytes_in_order == 5 * 48
    deliver(7)
    deliver(8)
    assert r.sack_blocks() == ((6, 10),)                    # 6..9 merged into one block
    sim.run(until_s=0.1)
    assert [x.cum for x in cap.acks] == [1, 2, 2, 2, 2, 2, 2, 5, 5, 5]
    assert cap.acks[-1].sacks == ((6, 10),)


# -- ECN --------------------------------------------------------------------------------------------------------------


def test_accecn_ce_bytes_are_counted_exactly():
    for delayed in (False, True):
        sim = Sim(seed=1)
        net, a, b, fwd, rev = two_hosts(sim, mark={5, 6, 40})
        samples = []
        s, r = open_stream(sim, a, b, cc="prague", on_ack_sample=samples.append, delayed_ack=delayed)
        s.write(100 * MSS)
        sim.run(until_s=2.0)
        assert r.bytes_in_order == 100 * MSS
        assert r.ce_pkts == 3 and r.ce_bytes == 3 * MSS
        assert s.ce_bytes_total == 3 * MSS
        assert sum(x.ce_bytes for x in samples) == 3 * MSS
        if not delayed:
            assert sum(1 for x in samples if x.ce_bytes) == 3
        else:
            assert r.acks_sent < r.rx_pkts


def test_prague_alpha_is_the_marked_fraction_with_or_without_delayed_acks():
    # Every fourth segment CE-marked: RFC 8257 §3.3's alpha converges to the marked fraction 0.25. With delayed
    # ACKs one ACK may cover a marked and an unmarked segment; the AccECN byte counter keeps the per-round
    # fraction exact, and the CE-state change triggers an immediate ACK, so alpha converges to the same value.
    alphas = {}
    for delayed in (False, True):
        sim = Sim(seed=1)
        net, a, b, fwd, rev = two_hosts(sim, mark=set(range(0, 40_000, 4)))
        s, r = open_stream(sim, a, b, cc="prague", bulk=True, delayed_ack=delayed)
        sim.run(until_s=3.0)
        if delayed:
            assert r.acks_sent < 0.8 * r.rx_pkts
        alphas[delayed] = s.cc.alpha
    assert alphas[False] == pytest.approx(0.25, abs=0.02)
    assert alphas[True] == pytest.approx(0.25, abs=0.02)


def test_ecn_codepoints_on_the_wire():
    cases = (("prague", None, ECT1, ECT1), ("cubic", True, ECT0, NOT_ECT), ("cubic", None, NOT_ECT, NOT_ECT),
             ("reno", True, ECT0, NOT_ECT))
    for cc, ecn, first, retx in cases:
        sim = Sim(seed=1)
        net, a, b, fwd, rev = two_hosts(sim, drop={10})
        s, r = open_stream(sim, a, b, cc=cc, ecn=ecn)
        s.write(50 * MSS)
        sim.run(until_s=1.0)
        assert set(fwd.ecn_first.values()) == {first}, cc
        assert fwd.ecn_retx == {10: retx}, cc               # RFC 3168 §6.1.5: classic retransmissions Not-ECT


def test_prague_reacts_to_ce_and_cubic_without_ecn_ignores_it():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, mark=set(range(20, 60)))
    s, r = open_stream(sim, a, b, cc="prague")
    s.write(200 * MSS)
    sim.run(until_s=1.0)
    assert s.cc.ce_events >= 1 and s.cc.congestion_events >= 1 and s.cc.alpha < 1.0
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim, mark=set(range(20, 60)))
    c, rc = open_stream(sim, a, b, cc="cubic")
    c.write(200 * MSS)
    sim.run(until_s=1.0)
    assert rc.ce_bytes == 40 * MSS and c.ce_bytes_total == 40 * MSS
    assert c.cc.congestion_events == 0


# -- delayed ACKs and pacing ----------------------------------------------------------------------------------------


def test_delayed_acks_every_second_segment_or_timeout():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    s, r = open_stream(sim, a, b, cc="reno", delayed_ack=True)
    s.write(400 * MSS)
    sim.run(until_s=2.0)
    assert r.bytes_in_order == 400 * MSS
    assert 190 <= r.acks_sent <= 215
    # A single segment is acknowledged by the 40 ms timer.
    sim2 = Sim(seed=1)
    net2, a2, b2, _, _ = two_hosts(sim2)
    samples = []
    s2, r2 = open_stream(sim2, a2, b2, cc="reno", delayed_ack=True, on_ack_sample=samples.append)
    s2.write(MSS)
    sim2.run(until_s=1.0)
    assert len(samples) == 1
    assert samples[0].rtt_s == pytest.approx(0.020 + 0.040, abs=1e-3)


def test_pacing_spreads_packets_and_can_be_turned_off():
    bursts = {}
    for pacing in (True, False):
        sim = Sim(seed=1)
        net, a, b, fwd, rev = two_hosts(sim, rate="1Gbps")
        s, r = open_stream(sim, a, b, cc="cubic", pacing=pacing, bulk=True)
        log = log_transmissions(s)
        sim.run(until_s=0.3)
        times = [t for t, _, _ in log if t > 0.05]
        bursts[pacing] = max(Counter(times).values())
    assert bursts[True] == 1                                 # never two packets at the same instant
    assert bursts[False] >= 2


def test_lazy_timer_costs_few_events():
    sim = Sim(seed=1)
    fired = []
    timer = LazyTimer(sim, fired.append)
    scheduled = []
    orig = sim.call_at

    def call_at(t, fn, arg=None):
        scheduled.append(t)
        orig(t, fn, arg)

    sim.call_at = call_at
    timer.set(0.2)
    for i in range(1000):                                   # restart on every "ACK", 1 ms apart
        sim.call_in(i * 0.001, lambda _, i=i: timer.set(i * 0.001 + 0.2))
    sim.run(until_s=2.0)
    assert fired == [pytest.approx(0.999 + 0.2)]
    assert len(scheduled) <= 8
    timer.set(3.0)
    timer.set(2.5)                                          # earlier: an extra wake-up
    sim.run(until_s=4.0)
    assert fired[-1] == pytest.approx(2.5) and len(fired) == 2


# -- errors ---------------------------------------------------------------------------------------------------------


def test_bad_options_fail_early_with_names():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    with pytest.raises(ValueError, match="unknown option.*pacin"):
        open_stream(sim, a, b, pacin=True)
    with pytest.raises(ValueError, match="min_rto_s"):
        StreamConfig(min_rto_s=0)
    with pytest.raises(ValueError, match="valid names"):
        open_stream(sim, a, b, cc="vegas")


def test_receiver_serves_one_peer():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    r = StreamReceiver(sim, b, 80)
    StreamSender(sim, a, "b", 80, cc="reno").write(MSS)
    StreamSender(sim, a, "b", 80, cc="reno", start_s=0.5).write(MSS)
    with pytest.raises(RuntimeError, match="one receiver per stream"):
        sim.run(until_s=1.0)


def test_tracer_sees_acks_and_losses():
    from emu import ListTracer

    sim = Sim(seed=1, tracer=ListTracer(prefixes=("transport.",)))
    net, a, b, fwd, rev = two_hosts(sim, drop={12})
    s, r = open_stream(sim, a, b, cc="cubic", flow="traced")
    s.write(60 * MSS)
    sim.run(until_s=1.0)
    losses = sim.tracer.of_kind("transport.loss")
    assert len(losses) == 1 and losses[0][1]["loss"] == "rack" and losses[0][1]["flow"] == "traced"
    assert len(sim.tracer.of_kind("transport.ack")) == s.acks_received


def test_sender_sack_scoreboard_matches_a_naive_model():
    # Random SACK blocks (overlapping, touching, repeated) against a set of SACKed segments.
    from emu.transport.stream import INFLIGHT, SACKED

    rng = np.random.default_rng(3)
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    s = StreamSender(sim, a, "b", 80, cc="reno")
    n = 300
    s._len = [MSS] * n
    s._xmit = [0.0] * n
    s._state = [INFLIGHT] * n
    s._snd_nxt = n
    s._pipe = n * MSS
    model = set()
    delivered = 0
    for _ in range(400):
        start = int(rng.integers(0, n))
        end = min(n, start + int(rng.integers(1, 12)))
        delivered += s._apply_sack(start, end)
        model |= set(range(start, end))
        assert delivered == len(model) * MSS
        assert s._pipe == (n - len(model)) * MSS
        assert {i for i, st in enumerate(s._state) if st == SACKED} == model
        # Known ranges: sorted, disjoint, not touching, and exactly the model.
        pairs = list(zip(s._sk_starts, s._sk_ends))
        assert all(e1 < s2 for (_, e1), (s2, _) in zip(pairs, pairs[1:]))
        assert set().union(*(set(range(x, y)) for x, y in pairs)) == model


def test_bulk_start_and_stop_times():
    sim = Sim(seed=1)
    net, a, b, fwd, rev = two_hosts(sim)
    s, r = open_stream(sim, a, b, cc="cubic", bulk=True, start_s=0.5, stop_s=1.0)
    log = log_transmissions(s)
    sim.run(until_s=2.0)
    new_times = [t for t, _, new in log if new]
    assert new_times[0] == pytest.approx(0.5)
    assert max(new_times) < 1.0
    assert s.outstanding_segments == 0 and r.bytes_in_order == s.sent_pkts * MSS
