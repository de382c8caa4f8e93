"""End-to-end validation of the transports against known results (fixed seeds, short runs).

- one Cubic flow fills a DropTail bottleneck with one BDP of buffer (>= 95 % utilisation);
- Reno under random loss follows Mathis et al. (1997): rate = 1.22 MSS / (RTT sqrt(p)), within 25 %;
- Prague and Cubic share a 100 Mbit/s DualPI2 bottleneck (RFC 9332): L queue p99 <= 2 ms, C queue mean
  15 +- 5 ms (the PI2 target), rate ratio within [0.5, 2];
- Prague's alpha averages to the marking probability of a link that CE-marks packets at random;
- Prague through a FIFO without marking behaves exactly as Reno (the same rates, to the byte) and does not starve
  Cubic;
- Prague and Cubic through DualPI2 on a real cellular capacity trace: the L4S flow's p99 delay is below the
  classic flow's.

Queueing delays are per packet (``qdelay_s``, summed over hops; only the bottleneck queues here, access links are
10-100 times faster), so a flow's delay is the sojourn in the queue its packets were classified to.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from emu import BernoulliLossConfig, Network, Sim, dumbbell
from emu.packet import CE, NOT_ECT
from emu.transport import KIND_DATA, open_stream


def _flow_stats(sim, name, t0_s, t1_s):
    d = sim.records.delivered_arrays()
    m = (d["flow_id"] == sim.flow(name)) & (d["delivered_s"] >= t0_s) & (d["delivered_s"] < t1_s)
    delay = (d["delivered_s"] - d["created_s"])[m]
    return {
        "rate_bps": float(d["size_bytes"][m].sum()) * 8 / (t1_s - t0_s),
        "qdelay_s": d["qdelay_s"][m],
        "delay_s": delay,
    }


def _two_flows(sim, net, cc_a, cc_b):
    a, _ = open_stream(sim, net.nodes["s0"], net.nodes["d0"], cc=cc_a, bulk=True, flow="a")
    b, _ = open_stream(sim, net.nodes["s1"], net.nodes["d1"], cc=cc_b, bulk=True, flow="b")
    return a, b


def test_cubic_fills_one_bdp_droptail_bottleneck():
    rate_bps, rtt_s = 20e6, 0.040
    bdp_pkts = int(rate_bps * rtt_s / 8 / 1500)                       # 66 packets of 1500 B
    sim = Sim(seed=1)
    net = dumbbell(sim, 1, bottleneck_rate=rate_bps, bottleneck_delay=rtt_s / 2, queue="droptail",
                   queue_params={"limit_pkts": bdp_pkts})
    s, r = open_stream(sim, net.nodes["s0"], net.nodes["d0"], cc="cubic", bulk=True, flow="cubic")
    sim.run(until_s=14.0)
    st = _flow_stats(sim, "cubic", 2.0, 14.0)
    utilisation = st["rate_bps"] / rate_bps
    print(f"Cubic, one-BDP DropTail: utilisation {utilisation:.3f}")
    assert utilisation >= 0.95, utilisation
    assert s.cc.congestion_events >= 2                                 # it did fill the buffer and back off
    assert s.rto_count == 0


@pytest.mark.parametrize("p, duration_s", [(0.001, 60.0), (0.01, 60.0)])
def test_reno_throughput_follows_mathis_under_random_loss(p, duration_s):
    # No queueing: a 1 Gbit/s bottleneck with a big buffer, Bernoulli loss on it, 40 ms RTT.
    sim = Sim(seed=7)
    net = dumbbell(sim, 1, bottleneck_rate="1Gbps", bottleneck_delay="20ms", access_rate="10Gbps",
                   queue_params={"limit_pkts": 100_000}, loss=BernoulliLossConfig(p=p))
    rtts = []
    s, r = open_stream(sim, net.nodes["s0"], net.nodes["d0"], cc="reno", bulk=True, flow="reno",
                       on_ack_sample=lambda x: rtts.append(x.rtt_s))
    warmup_s = 10.0
    sim.run(until_s=warmup_s)
    b0 = r.bytes_in_order
    rtts.clear()
    sim.run(until_s=duration_s)
    goodput_bps = (r.bytes_in_order - b0) * 8 / (duration_s - warmup_s)
    rtt = float(np.mean(rtts))
    mathis_bps = 1.22 * s.config.mss_bytes * 8 / (rtt * math.sqrt(p))
    print(f"Reno at p = {p}: {goodput_bps / mathis_bps:.2f}x the Mathis et al. rate")
    assert goodput_bps == pytest.approx(mathis_bps, rel=0.25), (goodput_bps, mathis_bps)


def test_prague_and_cubic_share_dualpi2():
    sim = Sim(seed=1)
    net = dumbbell(sim, 2, bottleneck_rate="100Mbps", bottleneck_delay="10ms", queue="dualpi2",
                   queue_params={"preset": "rfc9332"})
    prague, cubic = _two_flows(sim, net, "prague", "cubic")
    sim.run(until_s=10.0)
    l4s = _flow_stats(sim, "a", 3.0, 10.0)
    classic = _flow_stats(sim, "b", 3.0, 10.0)
    l_p99 = float(np.percentile(l4s["qdelay_s"], 99))
    c_mean = float(np.mean(classic["qdelay_s"]))
    ratio = l4s["rate_bps"] / classic["rate_bps"]
    print(f"DualPI2: L sojourn p99 {l_p99 * 1e3:.2f} ms, C sojourn mean {c_mean * 1e3:.1f} ms, "
          f"Prague/Cubic {ratio:.2f}")
    assert l_p99 <= 0.002, l_p99
    assert 0.010 <= c_mean <= 0.020, c_mean
    assert 0.5 <= ratio <= 2.0, ratio
    assert (l4s["rate_bps"] + classic["rate_bps"]) / 100e6 > 0.95       # and the link stays full
    assert prague.ce_bytes_total > 0 and prague.retransmitted_pkts == 0   # L4S: marks, not losses


def test_prague_without_marking_behaves_like_reno_and_does_not_starve_cubic():
    rates = {}
    for first in ("prague", "reno"):
        sim = Sim(seed=1)
        net = dumbbell(sim, 2, bottleneck_rate="40Mbps", bottleneck_delay="10ms", queue="droptail",
                       queue_params={"limit_pkts": 67})                 # one BDP, no ECN marking
        a, b = _two_flows(sim, net, first, "cubic")
        sim.run(until_s=10.0)
        rates[first] = (_flow_stats(sim, "a", 2.0, 10.0)["rate_bps"], _flow_stats(sim, "b", 2.0, 10.0)["rate_bps"])
        if first == "prague":
            assert a.ce_bytes_total == 0 and a.cc.congestion_events > 0     # it reacted to losses
    prague_rate, cubic_rate = rates["prague"]
    ratio = prague_rate / cubic_rate
    print(f"FIFO without marking: Prague/Cubic {ratio:.2f}")
    assert 0.4 <= ratio <= 2.5, ratio                                 # neither starves the other
    # Without marks Prague's responses are Reno's (beta 0.5 on loss, one MSS per round): the same run, to the byte.
    assert rates["prague"] == rates["reno"]


class RandomMarker:
    """Sets CE on each ECN-capable data packet with probability ``p`` (its own seeded stream), then forwards."""

    def __init__(self, sim, out, p):
        self.out = out
        self.p = p
        self.rng = sim.rng("marker")

    def receive(self, pkt):
        if pkt.kind == KIND_DATA and pkt.ecn != NOT_ECT and self.rng.random() < self.p:
            pkt.ecn = CE
        self.out.receive(pkt)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_prague_alpha_tracks_a_steady_marking_probability(p):
    # Every data packet is CE-marked with probability p on a 20 Mbit/s, 20 ms RTT path; the window stays near
    # 2 (1 - p) / p segments, far below the BDP, so nothing queues and nothing is lost. alpha, the EWMA of the
    # per-round marked fraction (RFC 8257 §3.3), must average to p: sampled every 10 ms from 2 s to 12 s.
    sim = Sim(seed=3)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate="20Mbps", delay="10ms", queue_params={"limit_pkts": 10_000})
    net.build_routes()
    fwd = net.links[("a", "b")]
    fwd.out = RandomMarker(sim, b, p)
    s, _ = open_stream(sim, a, b, cc="prague", bulk=True, flow="prague")
    alphas = []

    def sample(_):
        alphas.append(s.cc.alpha)
        sim.call_in(0.01, sample)

    sim.call_at(2.0, sample)
    sim.run(until_s=12.0)
    assert s.retransmitted_pkts == 0
    assert float(np.mean(alphas)) == pytest.approx(p, abs=0.02), np.mean(alphas)


def test_prague_and_cubic_on_a_cellular_trace(shared_traces):
    # shared_traces (tests/conftest.py) skips with a reason when ../shared/traces is absent.
    trace = os.path.join(str(shared_traces), "mahimahi", "Verizon-LTE-short.down")
    if not os.path.exists(trace):
        pytest.skip(f"trace {trace} not found")
    sim = Sim(seed=1)
    net = dumbbell(sim, 2, bottleneck_delay="10ms", queue="dualpi2", queue_params={"preset": "rfc9332"},
                   trace=trace)
    _two_flows(sim, net, "prague", "cubic")
    sim.run(until_s=30.0)
    l4s = _flow_stats(sim, "a", 5.0, 30.0)
    classic = _flow_stats(sim, "b", 5.0, 30.0)
    print(f"Verizon LTE, DualPI2: p99 delay Prague {np.percentile(l4s['delay_s'], 99) * 1e3:.0f} ms, "
          f"Cubic {np.percentile(classic['delay_s'], 99) * 1e3:.0f} ms")
    assert l4s["rate_bps"] > 0.5e6 and classic["rate_bps"] > 0.5e6
    assert np.percentile(l4s["delay_s"], 99) < np.percentile(classic["delay_s"], 99)
    assert np.mean(l4s["qdelay_s"]) < np.mean(classic["qdelay_s"])
