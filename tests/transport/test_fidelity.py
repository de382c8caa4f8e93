"""TCP fidelity: the growth rule on SACK-only ACKs, the recovery point, Cubic's fast-convergence comparison
(unit level, literal samples), and end-to-end closed forms (``emu.transport.validation``): drops per window
reduction and sawtooth periods of lone Reno and Cubic flows through DropTail.
"""
from __future__ import annotations

import pytest

from emu.transport import validation as v
from emu.transport.cc.cubic import CubicCC
from emu.transport.cc.reno import RenoCC
from emu.transport.samples import AckSample, LossEvent

MSS = 1448


def ack(now_s, sent_s, *, cum_advanced=True, cum_seq=-1, high_seq=-1, acked=MSS):
    return AckSample(now_s=now_s, rtt_s=0.05, srtt_s=0.05, min_rtt_s=0.05, owd_s=0.025, qdelay_s=0.0,
                     acked_bytes=acked, ce_bytes=0, delivered_bytes=0, ce_bytes_total=0, inflight_bytes=0,
                     sent_s=sent_s, mss_bytes=MSS, cum_advanced=cum_advanced, cum_seq=cum_seq, high_seq=high_seq)


def test_no_growth_on_acks_that_only_sack_beyond_a_hole():
    # RFC 5681 §3.1 / Linux tcp_may_raise_cwnd: before the loss is declared, duplicate ACKs carrying SACK blocks
    # deliver data but must not grow the window; the next cumulative ACK does (by everything it delivered).
    for cc in (RenoCC(initial_cwnd_pkts=20), CubicCC(initial_cwnd_pkts=20, hystart=False)):
        cc.ssthresh_bytes = 10 * MSS                      # congestion avoidance
        w0 = cc.cwnd_bytes
        for i in range(5):
            cc.on_ack(ack(1.0 + i * 0.001, 0.95, cum_advanced=False, cum_seq=100, high_seq=120))
        assert cc.cwnd_bytes == w0
        cc.on_ack(ack(1.01, 0.96, cum_seq=101, high_seq=121))
        assert cc.cwnd_bytes > w0


def test_recovery_ends_at_the_recovery_point_not_by_send_time():
    # RFC 6675 §5 / RFC 5681 §3.2: after a reduction at snd_nxt = 200, an ACK for a packet sent after the
    # reduction (a retransmission, say) that leaves the cumulative ACK below 200 is still in recovery.
    cc = RenoCC(initial_cwnd_pkts=20)
    cc.on_loss(LossEvent(now_s=1.0, lost_bytes=MSS, sent_s=0.9, inflight_bytes=0, mss_bytes=MSS, high_seq=200))
    w = cc.cwnd_bytes
    assert w == 10 * MSS and cc.recovery_seq == 200
    cc.on_ack(ack(1.1, 1.05, cum_seq=150, high_seq=215))        # sent after the reduction, hole still open
    assert cc.cwnd_bytes == w
    cc.on_ack(ack(1.2, 1.06, cum_seq=200, high_seq=230))        # recovery point reached: growth resumes
    assert cc.cwnd_bytes > w


def test_recovery_without_sequence_numbers_falls_back_to_send_time():
    cc = RenoCC(initial_cwnd_pkts=20)
    cc.on_loss(LossEvent(now_s=1.0, lost_bytes=MSS, sent_s=0.9, inflight_bytes=0, mss_bytes=MSS))
    w = cc.cwnd_bytes
    cc.on_ack(ack(1.1, 0.99))
    assert cc.cwnd_bytes == w
    cc.on_ack(ack(1.1, 1.01))
    assert cc.cwnd_bytes > w


@pytest.mark.parametrize("mode, expect_fc", [("linux", False), ("rfc9438", True)])
def test_cubic_fast_convergence_compare(mode, expect_fc):
    # Loss at 99.6 segments after a previous peak of 100: a fraction below W_max. Linux compares whole segments
    # (floor(99.6) = 99 < 100 fires; floor(100.4) = 100 does not); RFC 9438 compares the real numbers.
    cc = CubicCC(initial_cwnd_pkts=100, hystart=False, fast_convergence_compare=mode)
    cc.on_loss(LossEvent(now_s=1.0, lost_bytes=MSS, sent_s=0.9, inflight_bytes=0, mss_bytes=MSS))
    assert cc.w_max_pkts == 100
    cc.cwnd_bytes = 100.4 * MSS if mode == "linux" else 99.6 * MSS
    cc.on_loss(LossEvent(now_s=2.0, lost_bytes=MSS, sent_s=1.9, inflight_bytes=0, mss_bytes=MSS))
    if expect_fc:
        assert cc.w_max_pkts == pytest.approx(99.6 * 1.7 / 2)
    else:
        assert cc.w_max_pkts == 100
    cc2 = CubicCC(initial_cwnd_pkts=100, hystart=False)           # Linux default: a whole segment below fires
    cc2.on_loss(LossEvent(now_s=1.0, lost_bytes=MSS, sent_s=0.9, inflight_bytes=0, mss_bytes=MSS))
    cc2.cwnd_bytes = 99.6 * MSS
    cc2.on_loss(LossEvent(now_s=2.0, lost_bytes=MSS, sent_s=1.9, inflight_bytes=0, mss_bytes=MSS))
    assert cc2.w_max_pkts == 84                                   # floor(99 * 1.7 / 2)


def test_cubic_fast_convergence_compare_is_validated():
    with pytest.raises(ValueError, match="fast_convergence_compare"):
        CubicCC(fast_convergence_compare="bsd")


# -- end to end: closed forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffer_bdp", [1.0, 0.25])
def test_reno_one_drop_per_reduction_and_sawtooth_period(buffer_bdp):
    # 10 Mbit/s, 40 ms, DropTail of 1 or 0.25 BDP, pacing off: one drop per halving (the window step that
    # overflows the queue), and the period of the closed form (AIMD rounds + detection + recovery round).
    rate, rtt = 10e6, 0.040
    r = v.single_flow("reno", rate_bps=rate, rtt_s=rtt, buffer_bdp=buffer_bdp, pacing=False, duration_s=30.0,
                      warmup_s=5.0)
    f = r.flows[0]
    assert f.rto_count == 0 and f.reductions >= 8
    assert f.drops_per_reduction == pytest.approx(1.0, abs=0.15), (f.drops, f.reductions)
    buffer_pkts = round(buffer_bdp * v.bdp_pkts(rate, rtt))
    assert f.mean_period_s == pytest.approx(v.reno_sawtooth_period_s(rate, rtt, buffer_pkts), rel=0.08)
    if buffer_bdp == 1.0:
        assert r.utilisation > 0.98


def test_cubic_period_follows_k_without_fast_convergence_firing():
    # 20 Mbit/s, 40 ms, 1 BDP: every cycle peaks at the same window, so (Linux-like comparison) W_max stays and
    # the period is K of RFC 9438 eq. (2) plus detection and recovery; the RFC's fractional comparison fires
    # fast convergence on some cycles and shortens the mean period.
    rate, rtt = 20e6, 0.040
    buffer_pkts = round(v.bdp_pkts(rate, rtt))
    periods = {}
    for mode in ("linux", "rfc9438"):
        r = v.single_flow("cubic", rate_bps=rate, rtt_s=rtt, pacing=False, duration_s=45.0, warmup_s=8.0,
                          cc_params={"fast_convergence_compare": mode})
        f = r.flows[0]
        assert f.rto_count == 0
        assert f.drops_per_reduction == pytest.approx(1.0, abs=0.15), (mode, f.drops, f.reductions)
        periods[mode] = f.mean_period_s
    assert periods["linux"] == pytest.approx(v.cubic_period_s(rate, rtt, buffer_pkts), rel=0.08)
    assert periods["rfc9438"] < 0.9 * periods["linux"]


def test_cubic_small_buffer_period_follows_the_reno_friendly_line():
    # 20 Mbit/s, 40 ms, 0.25 BDP: the Reno-friendly estimate (alpha_cubic = 0.53 segments per round, RFC 9438
    # §4.3) regains W_max before the cubic curve's K, so it sets the period.
    rate, rtt = 20e6, 0.040
    buffer_pkts = round(0.25 * v.bdp_pkts(rate, rtt))
    r = v.single_flow("cubic", rate_bps=rate, rtt_s=rtt, buffer_bdp=0.25, pacing=False, duration_s=30.0,
                      warmup_s=8.0)
    f = r.flows[0]
    assert f.rto_count == 0 and f.drops_per_reduction == pytest.approx(1.0, abs=0.15)
    k_s = (v.bdp_pkts(rate, rtt) + buffer_pkts + 1) * 0.3 / 0.4
    assert v.cubic_period_s(rate, rtt, buffer_pkts) < 0.6 * k_s ** (1 / 3)      # the Reno-friendly branch
    assert f.mean_period_s == pytest.approx(v.cubic_period_s(rate, rtt, buffer_pkts), rel=0.08)


def test_cubic_linux_target_arithmetic_climbs_through_the_plateau():
    # Previous peak 100 segments, window 99.9, half a second before K: one RTT ahead the continuous curve is
    # 0.05 segment below W_max, so RFC 9438 arithmetic moves the window by (99.95 - 99.9) / 99.9 per segment;
    # Linux's truncated offset (0) makes the target W_max itself and, in whole segments,
    # cnt = 99 // (100 - 99) = 99 ACKed segments per one-segment step.
    from emu.transport.cc.cubic import cubic_k_s
    grown = {}
    for mode in ("rfc9438", "linux"):
        cc = CubicCC(initial_cwnd_pkts=99, hystart=False, target_arithmetic=mode)
        cc.cwnd_bytes = cc.ssthresh_bytes = 99.9 * MSS
        cc.w_max_pkts = 100.0
        cc.min_rtt_s = cc.srtt_s = 0.040
        k_s = cubic_k_s(100.0, 99.0)
        cc.epoch_s, cc.k_s, cc.cwnd_epoch_pkts, cc.w_est_pkts = 0.0, k_s, 99.0, 0.0
        w = cc.cwnd_bytes
        cc.on_ack(ack(k_s - 0.54, k_s - 0.6))
        grown[mode] = (cc.cwnd_bytes - w) / MSS
    assert grown["linux"] == pytest.approx(1.0 / 99.0)
    assert grown["rfc9438"] < 0.1 * grown["linux"]
    with pytest.raises(ValueError, match="target_arithmetic"):
        CubicCC(target_arithmetic="bsd")


def test_cubic_linux_target_arithmetic_period():
    # 20 Mbit/s, 40 ms, 1 BDP, pacing off: with Linux's arithmetic the window regains W_max cbrt(1 / C) = 1.36 s
    # before K, so cycles are shorter than RFC 9438's; the closed form with arithmetic="linux" says how much.
    rate, rtt = 20e6, 0.040
    buffer_pkts = round(v.bdp_pkts(rate, rtt))
    r = v.single_flow("cubic", rate_bps=rate, rtt_s=rtt, pacing=False, duration_s=45.0, warmup_s=8.0,
                      cc_params={"target_arithmetic": "linux"})
    f = r.flows[0]
    assert f.rto_count == 0 and f.drops_per_reduction == pytest.approx(1.0, abs=0.15)
    closed = v.cubic_period_s(rate, rtt, buffer_pkts, arithmetic="linux")
    assert closed < 0.8 * v.cubic_period_s(rate, rtt, buffer_pkts)
    assert f.mean_period_s == pytest.approx(closed, rel=0.08)
