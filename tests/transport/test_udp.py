"""UDP sockets and the rate-controlled real-time flow."""
from __future__ import annotations

import numpy as np
import pytest

from emu import Network, Sim, dumbbell
from emu.packet import ECT0, ECT1, NOT_ECT
from emu.transport import KIND_DGRAM, RtcReceiver, RtcSender, UdpSocket


def two_hosts(sim, rate="10Mbps", delay="5ms", queue=None, queue_params=None):
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate=rate, delay=delay, queue=queue, queue_params=queue_params)
    net.build_routes()
    return net, a, b


def test_udp_sendto_receive_with_one_way_delay_and_ecn():
    sim = Sim(seed=1)
    net, a, b = two_hosts(sim)
    got = []
    rx = UdpSocket(sim, b, 9000, on_receive=lambda pkt, owd: got.append((pkt, owd)))
    tx = UdpSocket(sim, a, flow="voice", ecn=ECT1)
    sim.call_at(0.0, lambda _: tx.sendto(1000, "b", 9000, payload="hello"))
    sim.call_at(0.1, lambda _: tx.sendto(200, b, 9000, ecn=ECT0))
    sim.run(until_s=1.0)
    assert len(got) == 2
    pkt, owd = got[0]
    assert pkt.payload == "hello" and pkt.kind == KIND_DGRAM and pkt.ecn == ECT1
    assert pkt.src == "a" and pkt.sport == tx.port and pkt.dport == 9000
    assert owd == pytest.approx(0.005 + 1000 * 8 / 10e6)
    assert got[1][0].ecn == ECT0 and got[1][0].seq == 1
    fid = sim.flow("voice")
    assert sim.records.flows[fid].sent_pkts == 2 and sim.records.flows[fid].sent_bytes == 1200
    d = sim.records.delivered_arrays()
    assert (d["flow_id"] == fid).sum() == 2
    assert rx.rx_pkts == 2 and rx.last_owd_s == pytest.approx(0.005 + 200 * 8 / 10e6)


def test_udp_reply_and_bad_size():
    sim = Sim(seed=1)
    net, a, b = two_hosts(sim)
    echo_times = []
    server = UdpSocket(sim, b, 7)
    server.on_receive = lambda pkt, owd: server.sendto(pkt.size_bytes, pkt.src, pkt.sport)
    client = UdpSocket(sim, a, on_receive=lambda pkt, owd: echo_times.append(sim.now_s))
    sim.call_at(0.0, lambda _: client.sendto(500, "b", 7))
    sim.run(until_s=1.0)
    assert echo_times == [pytest.approx(2 * (0.005 + 500 * 8 / 10e6))]
    with pytest.raises(ValueError, match="size_bytes"):
        client.sendto(0, "b", 7)


def _video(sim, net, l4s=True, frame_hz=30):
    frames = []
    rx = RtcReceiver(sim, net.nodes["d0"], 5000, on_message=lambda m, p, sent, now: frames.append((m, p, now - sent)))
    tx = RtcSender(sim, net.nodes["s0"], "d0", 5000, cc_params={"l4s": l4s}, flow="video")

    def frame(_):
        tx.send(max(1, int(tx.target_rate_bps / 8 / frame_hz)), payload=("frame", sim.now_s))
        sim.call_in(1.0 / frame_hz, frame)

    sim.call_at(0.0, frame)
    return tx, rx, frames


def test_rtc_flow_over_dualpi2_keeps_l4s_delay_low():
    sim = Sim(seed=1)
    net = dumbbell(sim, 1, bottleneck_rate="10Mbps", bottleneck_delay="10ms", queue="dualpi2",
                   queue_params={"preset": "rfc9332"})
    tx, rx, frames = _video(sim, net, l4s=True)
    sim.run(until_s=6.0)
    d = sim.records.delivered_arrays()
    m = (d["flow_id"] == sim.flow("video")) & (d["delivered_s"] > 2.0)
    thr = d["size_bytes"][m].sum() * 8 / 4.0
    qd = d["qdelay_s"][m]
    assert thr > 5e6                                            # uses most of the 10 Mbit/s
    assert np.percentile(qd, 99) < 0.01                         # L queue: a few ms at most
    assert tx.cc.ce_rounds > 0 and tx.lost_pkts == 0
    assert frames and frames[0][1][0] == "frame"
    assert sim.records.flows[sim.flow("video.fb")].sent_pkts == rx.rx_pkts
    link = net.links[("left", "right")]
    assert link.queue.stats.ecn_arrived[ECT1] > 0 and link.queue.stats.ecn_arrived[NOT_ECT] == 0


def test_rtc_flow_on_fifo_holds_delay_near_target():
    sim = Sim(seed=1)
    net = dumbbell(sim, 1, bottleneck_rate="10Mbps", bottleneck_delay="10ms", queue="droptail",
                   queue_params={"limit_pkts": 200})
    tx, rx, frames = _video(sim, net, l4s=False)
    sim.run(until_s=8.0)
    d = sim.records.delivered_arrays()
    m = (d["flow_id"] == sim.flow("video")) & (d["delivered_s"] > 3.0)
    thr = d["size_bytes"][m].sum() * 8 / 5.0
    qd = d["qdelay_s"][m]
    assert thr > 8e6
    assert qd.mean() < tx.cc.config.qdelay_target_s              # delay-based control below the target
    assert tx.lost_pkts == 0
    assert tx.cc.ecn == NOT_ECT
