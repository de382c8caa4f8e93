"""Congestion controllers driven by hand with literal samples: hand-computed values for each algorithm."""
from __future__ import annotations


import pytest

from emu.packet import ECT0, ECT1, NOT_ECT
from emu.transport.cc import cc_class, cc_names, make_cc
from emu.transport.cc.cubic import CubicCC, cubic_k_s, w_cubic_pkts
from emu.transport.cc.prague import PragueCC, dctcp_alpha
from emu.transport.cc.reno import RenoCC
from emu.transport.cc.rtc import RtcRateController
from emu.transport.samples import AckSample, LossEvent

MSS = 1448


def ack(now_s: float, sent_s: float, acked: int = MSS, ce: int = 0, rtt_s: float = 0.05, srtt_s: float = 0.05,
        owd_s: float = 0.025, app_limited: bool = False) -> AckSample:
    return AckSample(now_s=now_s, rtt_s=rtt_s, srtt_s=srtt_s, min_rtt_s=rtt_s, owd_s=owd_s, qdelay_s=0.0,
                     acked_bytes=acked, ce_bytes=ce, delivered_bytes=0, ce_bytes_total=0, inflight_bytes=0,
                     sent_s=sent_s, app_limited=app_limited, mss_bytes=MSS)


def loss(now_s: float, sent_s: float, kind: str = "rack") -> LossEvent:
    return LossEvent(now_s=now_s, lost_bytes=MSS, sent_s=sent_s, inflight_bytes=0, kind=kind, srtt_s=0.05,
                     mss_bytes=MSS)


# -- registry -------------------------------------------------------------------------------------------------------


def test_registry_names_and_lazy_classes():
    assert cc_names() == ["cubic", "prague", "reno", "rtc"]
    assert cc_class("reno") is RenoCC
    assert isinstance(make_cc("prague", mss_bytes=1000), PragueCC)
    cc = make_cc("cubic", hystart=False)
    assert cc.config.hystart is False
    assert make_cc(cc) is cc


def test_unknown_cc_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: cubic, prague, reno, rtc"):
        make_cc("bbr")


def test_unknown_cc_param_names_fields():
    with pytest.raises(ValueError, match="unknown field.*valid fields"):
        make_cc("reno", betta=0.5)
    with pytest.raises(ValueError, match="beta"):
        make_cc("cubic", beta=1.5)


def test_cc_package_is_pure_logic():
    # Layering (DESIGN.md L1): emu/transport/cc imports neither SimPy nor the simulator layers.
    import ast
    import pathlib

    import emu.transport.cc as pkg

    for path in pathlib.Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        for name in imported:
            assert not name.startswith(("simpy", "emu.sim", "emu.net", "emu.links", "emu.transport.stream",
                                        "emu.transport.udp", "emu.transport.realtime")), (path.name, name)


def test_ecn_codepoints():
    assert make_cc("reno").ecn == NOT_ECT
    assert make_cc("reno", ecn=True).ecn == ECT0
    assert make_cc("cubic", ecn=True).ecn == ECT0
    assert make_cc("prague").ecn == ECT1
    assert make_cc("rtc").ecn == ECT1
    assert make_cc("rtc", l4s=False).ecn == NOT_ECT
    assert make_cc("rtc", l4s=False, ecn=True).ecn == ECT0


# -- Reno -----------------------------------------------------------------------------------------------------------


def test_reno_slow_start_and_congestion_avoidance():
    cc = RenoCC()
    assert cc.cwnd_bytes == 10 * MSS                       # RFC 6928 initial window
    cc.on_ack(ack(0.05, 0.0))
    assert cc.cwnd_bytes == 11 * MSS                       # slow start: +acked
    cc.ssthresh_bytes = 11 * MSS                           # now in congestion avoidance
    cc.on_ack(ack(0.06, 0.01))
    assert cc.cwnd_bytes == pytest.approx(11 * MSS + MSS / 11)   # +MSS*MSS/cwnd


def test_reno_halves_once_per_rtt():
    cc = RenoCC(initial_cwnd_pkts=100)
    cc.on_loss(loss(1.0, sent_s=0.95))
    assert cc.cwnd_bytes == 50 * MSS and cc.ssthresh_bytes == 50 * MSS
    cc.on_loss(loss(1.01, sent_s=0.97))                    # same window (sent before the reduction)
    assert cc.cwnd_bytes == 50 * MSS
    cc.on_ack(ack(1.02, sent_s=0.98))                      # recovery: no growth
    assert cc.cwnd_bytes == 50 * MSS
    cc.on_loss(loss(1.2, sent_s=1.1))                      # a packet sent after the reduction: new event
    assert cc.cwnd_bytes == 25 * MSS
    assert cc.congestion_events == 2


def test_reno_floor_and_timeout():
    cc = RenoCC(initial_cwnd_pkts=3)
    cc.on_loss(loss(1.0, 0.9))
    assert cc.cwnd_bytes == 2 * MSS                        # never below 2 MSS (RFC 5681 eq. 4)
    cc = RenoCC(initial_cwnd_pkts=40)
    cc.on_loss(loss(2.0, 1.0, kind="rto"))
    assert cc.cwnd_bytes == MSS and cc.ssthresh_bytes == 20 * MSS
    assert cc.timeouts == 1


def test_reno_ecn_response_once_per_rtt_only_when_ecn_capable():
    cc = RenoCC(initial_cwnd_pkts=40, ecn=True)
    cc.on_ce(ack(1.0, 0.95, ce=MSS))
    assert cc.cwnd_bytes == 20 * MSS
    cc.on_ce(ack(1.01, 0.96, ce=MSS))
    assert cc.cwnd_bytes == 20 * MSS
    plain = RenoCC(initial_cwnd_pkts=40)
    plain.on_ce(ack(1.0, 0.95, ce=MSS))
    assert plain.cwnd_bytes == 40 * MSS


def test_app_limited_ack_does_not_grow_window():
    cc = RenoCC()
    cc.on_ack(ack(0.05, 0.0, app_limited=True))
    assert cc.cwnd_bytes == 10 * MSS


def test_default_pacing_rate_gain():
    cc = RenoCC()
    assert cc.pacing_rate_bps is None                      # no RTT yet
    cc.on_ack(ack(0.05, 0.0, srtt_s=0.1))
    assert cc.pacing_rate_bps == pytest.approx(2.0 * 11 * MSS * 8 / 0.1)     # slow start: gain 2
    cc.ssthresh_bytes = cc.cwnd_bytes
    assert cc.pacing_rate_bps == pytest.approx(1.2 * 11 * MSS * 8 / 0.1)     # CA: gain 1.2


# -- Cubic ----------------------------------------------------------------------------------------------------------


def test_cubic_w_of_t_hand_computed():
    # W_max = 100, beta = 0.7: cwnd_epoch = 70, K = cbrt(30 / 0.4) = cbrt(75) = 4.2172 s.
    k = cubic_k_s(100.0, 70.0)
    assert k == pytest.approx(75 ** (1 / 3)) and k == pytest.approx(4.2172, abs=1e-4)
    assert w_cubic_pkts(0.0, 100.0, k) == pytest.approx(70.0)
    assert w_cubic_pkts(k, 100.0, k) == pytest.approx(100.0)
    assert w_cubic_pkts(k + 2.0, 100.0, k) == pytest.approx(100.0 + 0.4 * 8)
    assert w_cubic_pkts(1.0, 100.0, k) == pytest.approx(100 - 0.4 * (k - 1) ** 3)


def test_cubic_reduction_and_fast_convergence():
    cc = CubicCC(initial_cwnd_pkts=100, hystart=False)
    assert cc.alpha_cubic == pytest.approx(3 * 0.3 / 1.7)
    cc.on_loss(loss(1.0, 0.9))
    assert cc.cwnd_bytes == pytest.approx(70 * MSS) and cc.w_max_pkts == pytest.approx(100)
    cc.cwnd_bytes = 80 * MSS                               # below the previous W_max: fast convergence
    cc.on_loss(loss(2.0, 1.5))
    assert cc.w_max_pkts == pytest.approx(80 * 1.7 / 2)
    assert cc.cwnd_bytes == pytest.approx(56 * MSS)


def test_cubic_follows_w_cubic_over_an_epoch():
    # After a loss at 100 packets, drive ACKs with a 10 ms RTT (cwnd/RTT acks per second) for K seconds:
    # the window must be back at W_max (within a few packets), as eq. (1) says.
    cc = CubicCC(initial_cwnd_pkts=100, hystart=False, reno_friendly=False)
    cc.on_loss(loss(1.0, 0.99))
    rtt = 0.01
    t = 1.0
    sent = 1.0
    k = cubic_k_s(100.0, 70.0)
    while t < 1.0 + rtt + k:
        n = int(cc.cwnd_bytes // MSS)
        for i in range(n):
            cc.on_ack(ack(t + i * rtt / n, sent + 1e-6, rtt_s=rtt, srtt_s=rtt))
        t += rtt
        sent = t - rtt / 2
    assert cc.cwnd_bytes / MSS == pytest.approx(100.0, abs=3.0)
    assert cc.k_s == pytest.approx(k)


def test_cubic_reno_friendly_window_literal_values():
    # RFC 9438 §4.3 by hand: beta = 0.7 gives alpha_cubic = 3 (1 - 0.7) / (1 + 0.7) = 0.9 / 1.7 = 0.529412.
    # A loss at 10 packets leaves cwnd = W_est = 7 and W_max = 10. Every ACK below arrives at the epoch start
    # (t = 0), where W_cubic(0) = W_max - C K^3 = 10 - 3 = 7 < W_est, so cwnd = W_est after each ACK, and
    # W_est += alpha_cubic * 1 / cwnd per acknowledged segment:
    #   1st ACK: 7 + 0.529412 / 7 = 7.075630;  2nd: 7.075630 + 0.529412 / 7.075630 = 7.150452;  3rd: 7.224491.
    # Once W_est reaches W_max the increment is 1 / cwnd (alpha = 1): the 48th ACK takes 9.947435 to 10.000656,
    # the 49th adds 1 / 10.000656 (10.100650), where alpha_cubic alone would give 10.053593.
    cc = CubicCC(initial_cwnd_pkts=10, hystart=False)
    cc.on_loss(loss(1.0, 0.99))
    assert cc.cwnd_bytes / MSS == pytest.approx(7.0)
    windows = []
    for _ in range(49):
        cc.on_ack(ack(1.05, 1.01, rtt_s=0.01, srtt_s=0.01))
        windows.append(cc.cwnd_bytes / MSS)
    assert windows[:3] == pytest.approx([7.075630, 7.150452, 7.224491], abs=1e-6)
    assert windows[46] == pytest.approx(9.947435, abs=1e-6)
    assert windows[47] == pytest.approx(10.000656, abs=1e-6)
    assert windows[48] == pytest.approx(10.100650, abs=1e-6)


def test_cubic_without_reno_friendly_stays_on_the_cubic_curve():
    # The same ACKs with the Reno-friendly region off: cwnd moves towards W_cubic(t + RTT) = 10 + 0.4 (0.01 -
    # cbrt(7.5))^3 = 7.045744 only, by (target - cwnd) / cwnd per ACK, so it stays below that target.
    cc = CubicCC(initial_cwnd_pkts=10, hystart=False, reno_friendly=False)
    cc.on_loss(loss(1.0, 0.99))
    for _ in range(49):
        cc.on_ack(ack(1.05, 1.01, rtt_s=0.01, srtt_s=0.01))
    assert 7.04 < cc.cwnd_bytes / MSS < 7.045744


def test_cubic_reno_friendly_region():
    # Small window, short RTT: the Reno-friendly estimate (alpha_cubic = 0.53 segments per RTT) outgrows the
    # cubic curve (W_max = 10, K = cbrt(7.5) = 1.957 s), and then sets cwnd (RFC 9438 §4.3). After 50 rounds
    # of 10 ms (0.5 s into the epoch) W_cubic = 10 + 0.4 (0.5 - 1.957)^3 = 8.76 segments, and the window is
    # well above it (W_est grows by at least 0.53 segments per round from 7).
    cc = CubicCC(initial_cwnd_pkts=10, hystart=False)
    cc.on_loss(loss(1.0, 0.99))                            # W_max = 10, cwnd = 7 packets
    rtt = 0.01
    t = 1.0
    sent = 1.0
    for _ in range(50):
        n = int(cc.cwnd_bytes // MSS)
        for i in range(n):
            cc.on_ack(ack(t + i * rtt / n, sent + 1e-6, rtt_s=rtt, srtt_s=rtt))
        t += rtt
        sent = t - rtt / 2
    assert cc.cwnd_bytes / MSS > 7 + 0.53 * 45 > 8.76 + 20


def test_hystart_exits_slow_start_on_rtt_increase():
    cc = CubicCC(initial_cwnd_pkts=20)
    t = 0.0
    for rnd in range(3):
        rtt = 0.050 if rnd < 2 else 0.060                  # +10 ms > clamp(50/8, 4, 16) = 6.25 ms
        for i in range(10):
            cc.on_ack(ack(t + i * 0.001, t - 0.01 if i else t, rtt_s=rtt, srtt_s=rtt))
        t += rtt
    assert not cc.in_slow_start


# -- Prague ---------------------------------------------------------------------------------------------------------


def test_dctcp_alpha_ewma():
    assert dctcp_alpha(1.0, 0.25) == pytest.approx(15 / 16 + 0.25 / 16)
    a = 0.0
    for _ in range(16):
        a = dctcp_alpha(a, 1.0)
    assert a == pytest.approx(1 - (15 / 16) ** 16)


def test_prague_alpha_updates_once_per_round_from_ce_fraction():
    cc = PragueCC(alpha_init=0.0)
    cc.on_ack(ack(0.10, 0.00))                             # ends the initial round: F = 0
    assert cc.alpha == 0.0
    for i in range(4):                                     # same round (sent before 0.10)
        cc.on_ack(ack(0.11 + 0.01 * i, 0.01 + 0.01 * i, ce=MSS if i == 0 else 0))
        assert cc.alpha == 0.0
    cc.on_ack(ack(0.20, 0.10))                             # sent at the round start: round ends
    assert cc.alpha == pytest.approx(dctcp_alpha(0.0, 1 / 5))   # 1 of 5 segments marked -> 0.0125


def _prague_round(cc, t0_s, marked):
    """One round after the round that ended at ``t0_s``: ACKs for segments sent before ``t0_s`` (``marked[i]``:
    CE on the i-th), closed by an ACK for a segment sent at ``t0_s``; returns the time that round ends."""
    for i, ce in enumerate(marked[:-1]):
        cc.on_ack(ack(t0_s + 0.01 * (i + 1), t0_s - 0.09 + 0.01 * i, ce=MSS if ce else 0))
    end_s = t0_s + 0.1
    cc.on_ack(ack(end_s, t0_s, ce=MSS if marked[-1] else 0))
    return end_s


def test_prague_alpha_literal_values_after_marked_fractions():
    # RFC 8257 §3.3 with g = 1/16, alpha starting at 1 (draft §2.3.2), one update per round, by hand:
    #   first ACK, unmarked (F = 0):        alpha = 15/16                                  = 0.9375
    #   2 of 4 segments marked (F = 0.5):   0.9375 * 15/16 + 0.5/16                        = 0.91015625
    #   4 of 4 marked (F = 1):              0.91015625 * 15/16 + 1/16                      = 0.915771484375
    #   none of 4 marked (F = 0):           0.915771484375 * 15/16                         = 0.858535766601...
    #   1 of 8 marked (F = 0.125):          0.858535766601 * 15/16 + 0.125/16              = 0.812689781189
    cc = PragueCC()
    assert cc.alpha == 1.0
    cc.on_ack(ack(0.10, 0.00))
    assert cc.alpha == 0.9375
    t = 0.10
    expected = [0.91015625, 0.915771484375, 0.858535766601, 0.812689781189]
    patterns = [(1, 0, 1, 0), (1, 1, 1, 1), (0, 0, 0, 0), (0, 0, 1, 0, 0, 0, 0, 0)]
    for marked, alpha in zip(patterns, expected):
        t = _prague_round(cc, t, marked)
        assert cc.alpha == pytest.approx(alpha, abs=1e-12)


def test_prague_alpha_converges_to_a_steady_marked_fraction():
    # A constant marked fraction F: alpha_n = F + (alpha_0 - F) (15/16)^n, so after 100 rounds from alpha = 1 it
    # is within 0.8 * (15/16)^100 = 1.3e-3 of F = 0.25.
    cc = PragueCC()
    cc.on_ack(ack(0.10, 0.00, ce=MSS))                     # F = 1 in the first round: alpha stays 1
    t = 0.10
    for _ in range(100):
        t = _prague_round(cc, t, (1, 0, 0, 0))
    assert cc.alpha == pytest.approx(0.25 + 0.75 * (15 / 16) ** 100, abs=1e-9)
    assert abs(cc.alpha - 0.25) < 1.3e-3


def test_prague_ce_reduction_alpha_half_once_per_rtt():
    cc = PragueCC(initial_cwnd_pkts=100)
    cc.alpha = 0.5
    cc.on_ce(ack(1.0, 0.95, ce=MSS))
    assert cc.cwnd_bytes == pytest.approx(75 * MSS)        # cwnd * (1 - alpha/2)
    assert cc.ssthresh_bytes == pytest.approx(75 * MSS)
    cc.on_ce(ack(1.01, 0.96, ce=MSS))                      # same round trip: no second reduction
    assert cc.cwnd_bytes == pytest.approx(75 * MSS)
    cc.on_ce(ack(1.1, 1.05, ce=MSS))
    assert cc.cwnd_bytes == pytest.approx(75 * 0.75 * MSS)


def test_prague_additive_increase_counts_unmarked_bytes_and_continues_after_ce():
    cc = PragueCC(initial_cwnd_pkts=10)
    cc.ssthresh_bytes = 10 * MSS
    cc.on_ack(ack(1.0, 0.95))
    assert cc.cwnd_bytes == pytest.approx(10 * MSS + MSS / 10)
    before = cc.cwnd_bytes
    cc.on_ack(ack(1.01, 0.96, ce=MSS))                     # fully marked ACK: no increase
    assert cc.cwnd_bytes == pytest.approx(before)
    cc.on_ce(ack(1.02, 0.97, ce=MSS))
    reduced = cc.cwnd_bytes
    cc.on_ack(ack(1.03, 0.98))                             # after a CE reduction growth continues (scalable)
    assert cc.cwnd_bytes > reduced


def test_prague_loss_like_reno_and_rtt_independence():
    cc = PragueCC(initial_cwnd_pkts=40)
    cc.on_loss(loss(1.0, 0.9))
    assert cc.cwnd_bytes == 20 * MSS
    fast = PragueCC(initial_cwnd_pkts=10, rtt_indep_target_s=0.025)
    fast.ssthresh_bytes = 10 * MSS
    fast.on_ack(ack(1.0, 0.99, srtt_s=0.005))             # srtt 5 ms < 25 ms: (5/25)^2 = 1/25 of the increase
    assert fast.cwnd_bytes == pytest.approx(10 * MSS + MSS / 10 / 25)


# -- real-time rate controller ----------------------------------------------------------------------------------------


def _rtc_round(cc, t0, n=4, ce_segs=0, owd_s=0.01, srtt_s=0.05):
    """Feed one round of ``n`` reports after ``t0`` (all sent before the round started), then the closing one."""
    for i in range(n):
        cc.on_ack(ack(t0 + 0.01 * (i + 1), t0 - 0.04 + 0.01 * i, ce=MSS if i < ce_segs else 0, owd_s=owd_s,
                      srtt_s=srtt_s))
    cc.on_ack(ack(t0 + 0.06, t0, ce=0, owd_s=owd_s, srtt_s=srtt_s))


def test_rtc_scalable_ce_response_hand_computed():
    cc = RtcRateController(start_rate_bps=10e6, alpha_init=0.0)
    cc.on_ack(ack(1.0, 0.95, owd_s=0.01))                  # opens round 1; base one-way delay 10 ms
    _rtc_round(cc, 1.0, n=4, ce_segs=2, owd_s=0.01)        # 2 of 5 segments marked: F = 0.4
    alpha = 0.4 / 16
    expected = 10e6 * (1 - alpha / 2) + MSS * 8 / 0.05 * (1 - 0.4)
    assert cc.alpha == pytest.approx(alpha)
    assert cc.target_rate_bps == pytest.approx(expected)
    assert not cc.startup


def test_rtc_loss_reduces_once_per_rtt():
    cc = RtcRateController(start_rate_bps=10e6)
    cc.on_ack(ack(1.0, 0.95))
    cc.on_loss(loss(1.01, sent_s=0.98))
    assert cc.target_rate_bps == pytest.approx(8e6)        # beta_loss = 0.8
    cc.on_loss(loss(1.02, sent_s=0.99))
    assert cc.target_rate_bps == pytest.approx(8e6)
    cc.on_loss(loss(1.2, sent_s=1.1))
    assert cc.target_rate_bps == pytest.approx(6.4e6)


def test_rtc_startup_ramp_and_delay_reaction():
    cc = RtcRateController(start_rate_bps=1e6, l4s=False)
    cc.on_ack(ack(1.0, 0.95, owd_s=0.01))
    _rtc_round(cc, 1.0, owd_s=0.01)
    assert cc.target_rate_bps == pytest.approx(1.5e6)      # ramp-up x1.5 per round
    # Queueing delay of 90 ms (> 60 ms target) and rising: cut by 0.5 * (90 - 60) / 60 = 25 %, below the
    # delivered rate when that is lower.
    cc2 = RtcRateController(start_rate_bps=4e6, l4s=False)
    cc2.startup = False
    cc2.on_ack(ack(1.0, 0.95, owd_s=0.01))
    _rtc_round(cc2, 1.0, owd_s=0.10)
    assert cc2.qdelay_s == pytest.approx(0.09)
    assert cc2.delivery_rate_bps == 0.0                    # not measured yet (window 100 ms)
    assert cc2.target_rate_bps == pytest.approx(4e6 * 0.75)


def test_rtc_rate_limits_and_validation():
    cc = RtcRateController(start_rate_bps=1e6, min_rate_bps=0.9e6, max_rate_bps=1.2e6)
    cc.on_ack(ack(1.0, 0.95))
    _rtc_round(cc, 1.0)
    assert cc.target_rate_bps == pytest.approx(1.2e6)      # ramp clamped at max
    for i in range(10):
        cc.on_loss(loss(2.0 + i, sent_s=1.9 + i))
    assert cc.target_rate_bps == pytest.approx(0.9e6)      # floor
    with pytest.raises(ValueError, match="max_rate_bps"):
        RtcRateController(min_rate_bps=2e6, max_rate_bps=1e6)
    assert cc.pacing_rate_bps == pytest.approx(1.5 * 0.9e6)
