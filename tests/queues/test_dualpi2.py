"""DualPI2 (RFC 9332 / Linux sch_dualpi2): hand-computed values, scheduling order, overload, idle catch-up."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from emu.packet import CE, ECT0, ECT1, NOT_ECT, Packet
from emu.queues import make_queue
from emu.queues.dualpi2 import DualPI2Config, DualPI2Queue, coupled_probabilities

MTU = 1500


def pkt(i: int, ecn: int, size: int = MTU, t: float = 0.0) -> Packet:
    return Packet(i, 1, "a", "b", size, t, ecn=ecn)


def drain(q: DualPI2Queue, now_s: float) -> list[Packet]:
    out = []
    while (p := q.dequeue(now_s)) is not None:
        out.append(p)
    return out


def check_conservation(q: DualPI2Queue) -> None:
    st = q.stats
    assert st.arrived_pkts == st.enqueued_pkts + st.dropped_at_enqueue_pkts
    assert st.enqueued_pkts == st.dequeued_pkts + st.dropped_in_queue_pkts + q.len_pkts
    assert q.len_pkts == q.l_len_pkts + q.c_len_pkts
    assert q.len_bytes == q.l_len_bytes + q.c_len_bytes
    assert sum(st.drops.values()) == st.dropped_pkts
    assert sum(st.ecn_arrived) == st.arrived_pkts


# -- configuration ----------------------------------------------------------------------------------------------


def test_rfc_defaults_follow_appendix_a_formulas():
    c = DualPI2Config.rfc9332()
    assert c == DualPI2Config()
    assert c.pi2_tupdate_s == pytest.approx(0.015)            # min(15 ms, 100 ms / 3)
    assert c.pi2_alpha_hz == pytest.approx(0.15)              # 0.1 * 0.015 / 0.1^2
    assert c.pi2_beta_hz == pytest.approx(3.0)                # 0.3 / 0.1
    assert c.p_c_max == pytest.approx(0.25)                   # min(1/k^2, 1)
    assert (c.l_min_th_s, c.l_range_s, c.l_th_len_pkts) == (800e-6, 400e-6, 1)
    # re-derived when RTT_max changes
    c2 = dataclasses.replace(c, rtt_max_s=0.030)
    assert c2.pi2_tupdate_s == pytest.approx(0.010)
    assert c2.pi2_alpha_hz == pytest.approx(0.1 * 0.010 / 0.030**2)
    assert c2.pi2_beta_hz == pytest.approx(10.0)
    # RFC byte limit: MAX_LINK_RATE * 250 ms
    assert DualPI2Config.rfc9332(link_rate_bps=100e6).limit_bytes == 3_125_000


def test_linux_preset_values():
    c = DualPI2Config.linux()
    assert (c.pi2_tupdate_s, c.pi2_alpha_hz, c.pi2_beta_hz) == (0.016, 41 / 256, 819 / 256)
    assert (c.scheduler, c.l_aqm, c.c_protection_pct, c.limit_pkts) == ("wrr", "step", 10, 10_000)
    assert c.aqm_min_backlog_bytes == 3000 and c.drop_on_overload


@pytest.mark.parametrize(
    "field, value",
    [("k", 0), ("target_s", -0.001), ("tupdate_s", 0.0), ("alpha_hz", -1.0), ("limit_pkts", 0),
     ("scheduler", "fifo"), ("c_protection_pct", 101), ("l_aqm", "red"), ("classify", "dscp"),
     ("drop_on_overload", "yes"), ("mtu_bytes", 10), ("tshift_s", float("nan"))],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        DualPI2Config(**{field: value})


def test_make_queue_presets_and_overrides():
    q = make_queue("dualpi2", preset="linux")
    assert isinstance(q, DualPI2Queue) and q.config == DualPI2Config.linux()
    q = make_queue("dualpi2", preset="rfc9332", target_s=0.020)
    assert q.config.target_s == 0.020 and q.config.pi2_tupdate_s == pytest.approx(0.020)
    q = make_queue("dualpi2", k=1.5)
    assert q.config.k == 1.5
    with pytest.raises(ValueError, match="scheduler"):
        make_queue("dualpi2", scheduler="nope")


# -- probabilities ----------------------------------------------------------------------------------------------


def test_coupling_hand_values():
    p_c, p_cl = coupled_probabilities(0.2, 2.0)
    assert p_c == pytest.approx(0.04) and p_cl == pytest.approx(0.4)
    assert coupled_probabilities(0.6, 2.0)[1] == 1.0  # p_CL saturates at p' >= 1/k
    q = DualPI2Queue()
    q.set_p_prime(0.2)
    assert (q.p_prime, q.p_c, q.p_cl) == (0.2, pytest.approx(0.04), pytest.approx(0.4))
    assert not q.overloaded


def test_pi2_update_by_hand_rfc():
    """One Classic packet enqueued at 20 ms and left standing; RFC gains alpha 0.15, beta 3, target 15 ms."""
    q = DualPI2Queue(DualPI2Config.rfc9332())
    q.enqueue(pkt(1, NOT_ECT), 0.020)  # the 15 ms update ran on an empty queue: p' = max(0, -alpha*target) = 0
    assert q.updates == 1 and q.p_prime == 0.0
    q.enqueue(pkt(2, NOT_ECT), 0.031)  # update at 30 ms: curq = 10 ms
    # p' = 0 + 0.15*(0.010-0.015) + 3*(0.010-0) = -0.00075 + 0.03
    assert q.p_prime == pytest.approx(0.02925)
    q.enqueue(pkt(3, NOT_ECT), 0.046)  # update at 45 ms: curq = 25 ms (head is still packet 1)
    # p' += 0.15*(0.025-0.015) + 3*(0.025-0.010) = 0.0015 + 0.045
    assert q.p_prime == pytest.approx(0.07575)
    assert q.p_c == pytest.approx(0.07575**2) and q.p_cl == pytest.approx(2 * 0.07575)
    assert q.updates == 3 and q.next_update_s == pytest.approx(0.060)


def test_pi2_update_by_hand_linux_24ms_packet():
    """A single standing Classic packet enqueued at t = 24 ms with 16 ms ticks (Linux gains)."""
    q = DualPI2Queue(DualPI2Config.linux())
    a, b = 41 / 256, 819 / 256
    q.enqueue(pkt(1, ECT0), 0.024)
    q.enqueue(pkt(2, ECT0), 0.033)  # tick at 32 ms: curq = 8 ms
    p1 = a * (0.008 - 0.015) + b * 0.008
    assert q.p_prime == pytest.approx(p1)
    q.enqueue(pkt(3, ECT0), 0.049)  # tick at 48 ms: curq = 24 ms
    assert q.p_prime == pytest.approx(p1 + a * (0.024 - 0.015) + b * (0.024 - 0.008))


def test_delay_estimate_max_head_uses_l_queue_too():
    q_max = DualPI2Queue(DualPI2Config.rfc9332())
    q_c = DualPI2Queue(DualPI2Config.rfc9332(delay_estimate="c_head"))
    for q in (q_max, q_c):
        q.enqueue(pkt(1, ECT1), 0.001)
        q.enqueue(pkt(2, ECT1), 0.016)  # the 15 ms tick: curq = 14 ms (max) or 0 (C empty)
    assert q_max.p_prime == pytest.approx(0.15 * (0.014 - 0.015) + 3 * 0.014)
    assert q_c.p_prime == 0.0


# -- classification ---------------------------------------------------------------------------------------------


def test_classification_of_each_codepoint():
    q = DualPI2Queue()
    for i, ecn in enumerate([NOT_ECT, ECT1, ECT0, CE]):
        assert q.enqueue(pkt(i, ecn), 0.0)
    assert (q.l_len_pkts, q.c_len_pkts) == (2, 2)
    assert q.stats.ecn_arrived == [1, 1, 1, 1]
    assert {p.ecn for p in q._lq} == {ECT1, CE} and {p.ecn for p in q._cq} == {NOT_ECT, ECT0}
    assert (q.l_enqueued_pkts, q.c_enqueued_pkts) == (2, 2)
    q2 = DualPI2Queue(classify="any_ect")
    for i, ecn in enumerate([NOT_ECT, ECT1, ECT0, CE]):
        q2.enqueue(pkt(i, ecn), 0.0)
    assert (q2.l_len_pkts, q2.c_len_pkts) == (3, 1)


# -- scheduling -------------------------------------------------------------------------------------------------


def test_tshift_fifo_order_by_hand():
    """C enqueued at 0, L at 10..60 ms; tshift 50 ms: L wins while its enqueue time - 50 ms <= 0."""
    q = DualPI2Queue(DualPI2Config.rfc9332(tshift_s=0.050))
    q.enqueue(pkt(100, ECT0), 0.0)
    for i, t in enumerate([0.01, 0.02, 0.03, 0.04, 0.05, 0.06], start=1):
        q.enqueue(pkt(i, ECT1), t)
    order = [p.pkt_id for p in drain(q, 0.0601)]
    assert order == [1, 2, 3, 4, 5, 100, 6]
    check_conservation(q)


def test_tshift_l_first_when_both_fresh():
    q = DualPI2Queue(DualPI2Config.rfc9332())
    q.enqueue(pkt(1, ECT0), 0.000)
    q.enqueue(pkt(2, ECT1), 0.001)
    assert q.head_size_bytes() == MTU
    assert q.dequeue(0.002).pkt_id == 2 and q.last_dequeued_from == "L"
    assert q.dequeue(0.002).pkt_id == 1 and q.last_dequeued_from == "C"


def test_wrr_order_by_hand():
    """Linux WRR, wc = 10 %, 1500-byte packets: credit starts at 1500*(10-90) = -120000; each L packet served
    while C waits adds 10*1500, each C packet served while L waits subtracts 90*1500 -> 9 L then 1 C."""
    q = DualPI2Queue(DualPI2Config.linux())
    for i in range(20):
        q.enqueue(pkt(i, ECT1), 0.0)
    for i in range(3):
        q.enqueue(pkt(100 + i, ECT0), 0.0)
    served = "".join("L" if p.pkt_id < 100 else "C" for p in drain(q, 0.0001))
    assert served == "L" * 9 + "C" + "L" * 9 + "C" + "LL" + "C"
    assert q.credit == q._credit_init  # reset once both queues are empty
    assert (q.l_served_pkts, q.c_served_pkts) == (20, 3)


def test_wrr_starvation_protection_share():
    """With both queues always backlogged, C gets its 10 % of packets."""
    q = DualPI2Queue(DualPI2Config.linux())
    for i in range(1000):
        q.enqueue(pkt(i, ECT1), 0.0)
        q.enqueue(pkt(10_000 + i, ECT0), 0.0)
    c = sum(1 for _ in range(500) if q.dequeue(0.0001).pkt_id >= 10_000)
    assert c == 50


# -- AQM actions ------------------------------------------------------------------------------------------------


def test_classic_drop_and_mark_with_p_c_recur():
    """p' = 0.3 -> p_C = 0.09: recur() acts on packets 12, 23, 34, 45 of 50; Not-ECT dropped, ECT(0) marked."""
    q = DualPI2Queue(DualPI2Config.rfc9332())
    for i in range(1, 51):
        q.enqueue(pkt(i, NOT_ECT if i % 2 else ECT0), 0.0)
    q.set_p_prime(0.3)
    out = drain(q, 0.001)
    assert sorted(set(range(1, 51)) - {p.pkt_id for p in out}) == [23, 45]  # odd ids are Not-ECT: dropped
    assert [p.pkt_id for p in out if p.ecn == CE] == [12, 34]               # even ids are ECT(0): marked
    assert q.stats.drops == {"aqm": 2} and q.stats.marks == {"classic": 2}
    check_conservation(q)


def test_l_ramp_marking_and_th_len():
    """Ramp 800..1200 us: an L packet with 1000 us sojourn gets p_native = 0.5 (> p_CL = 0) if > Th_len remain."""
    q = DualPI2Queue(DualPI2Config.rfc9332())
    for i in range(4):
        q.enqueue(pkt(i, ECT1), 0.0)
    out = [q.dequeue(0.0011)]  # sojourn 1.1 ms: p_native = 0.3/0.4 = 0.75; 3 remain > Th_len = 1
    assert q.p_l == pytest.approx(0.75)
    out.append(q.dequeue(0.0011))  # 2 remain; recur 0.75 + 0.75 > 1 -> this one is marked
    assert q.p_l == pytest.approx(0.75)
    out.append(q.dequeue(0.0011))  # 1 remains: not > Th_len, native marking suppressed
    assert q.p_l == 0.0
    assert [p.ecn for p in out] == [ECT1, CE, ECT1] and q.stats.marks == {"native": 1}
    for i in range(3):
        q.enqueue(pkt(10 + i, ECT1), 0.0011)
    q.dequeue(0.0025)  # the last packet from t = 0: sojourn 2.5 ms >= minTh + range, 3 behind it
    assert q.p_l == 1.0


def test_l_step_linux_and_min_backlog_rule():
    q = DualPI2Queue(DualPI2Config.linux(), rng=np.random.default_rng(1))
    q.enqueue(pkt(1, ECT1), 0.0)
    q.enqueue(pkt(2, ECT1), 0.0005)
    p = q.dequeue(0.0012)  # sojourn 1.2 ms > 1 ms step: marked even though backlog < 2 MTU
    assert p.ecn == CE and q.stats.marks == {"native": 1}
    p = q.dequeue(0.0012)  # sojourn 0.7 ms: not marked
    assert p.ecn == ECT1
    # coupled marking is suppressed below 2 MTU of backlog, and applies above
    q.set_p_prime(0.49)  # p_CL = 0.98
    q.enqueue(pkt(3, ECT1), 0.0012)
    q.enqueue(pkt(4, ECT1), 0.0012)
    assert q.dequeue(0.0013).ecn == ECT1  # 1 packet (1500 B) left < 3000 B
    for i in range(10):
        q.enqueue(pkt(10 + i, ECT1), 0.0013)
    marks = [p.ecn == CE for p in drain(q, 0.0014)]
    assert marks[-2:] == [False, False]  # fewer than 2 MTU left behind them
    assert sum(marks[:-2]) >= 6  # 9 packets see >= 2 MTU behind them, each marked with p 0.98


def test_overload_drops_l_packets_rfc():
    """p' = 0.6, k = 2: p_CL = 1 (saturated), p_C = 0.36 >= p_Cmax = 0.25 -> L drops with p_C, C ECN disabled."""
    q = DualPI2Queue(DualPI2Config.rfc9332())
    for i in range(100):
        q.enqueue(pkt(i, ECT1), 0.0)
    for i in range(100):
        q.enqueue(pkt(1000 + i, ECT0), 0.0)
    q.set_p_prime(0.6)
    assert q.overloaded and q.p_cl == 1.0 and q.p_c == pytest.approx(0.36)
    out = drain(q, 0.001)
    l_out = [p for p in out if p.pkt_id < 1000]
    c_out = [p for p in out if p.pkt_id >= 1000]
    drops = q.stats.drops["overload"]
    assert 35 * 2 <= drops <= 36 * 2  # recur with p 0.36 over 100 packets per queue
    assert len(l_out) + len(c_out) + drops == 200
    assert all(p.ecn == CE for p in l_out)  # the L packets not dropped are all marked (p_CL = 1)
    assert all(p.ecn == ECT0 for p in c_out)  # ECT(0) is dropped, never marked, in overload
    check_conservation(q)


def test_overflow_mode_caps_p_prime_and_never_drops_ecn():
    cfg = DualPI2Config.linux(drop_on_overload=False)
    q = DualPI2Queue(cfg, rng=np.random.default_rng(3))
    q.enqueue(pkt(0, ECT1), 0.0)
    q.dequeue(10.0)  # the L head sat 10 s: p' is driven to its cap
    for i in range(50):
        q.enqueue(pkt(1 + i, ECT1), 10.0)
        q.enqueue(pkt(100 + i, ECT0), 10.0)
    q.dequeue(20.0)
    assert q.p_prime == 0.5 and not q.overloaded
    drain(q, 20.0)
    assert "overload" not in q.stats.drops and q.stats.dropped_pkts == 0


def test_tail_drop_limit_counts_overflow():
    q = DualPI2Queue(limit_pkts=5)
    results = [q.enqueue(pkt(i, ECT1 if i % 2 else NOT_ECT), 0.0) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert q.stats.drops == {"overflow": 3}
    qb = DualPI2Queue(DualPI2Config.rfc9332(limit_bytes=4500, limit_pkts=None))
    # RFC: drop if queued bytes + MTU > limit, whatever the arriving packet's size
    assert [qb.enqueue(pkt(i, ECT0, size=1000), 0.0) for i in range(5)] == [True] * 4 + [False]
    check_conservation(qb)


# -- timing: exact catch-up of the PI updates -------------------------------------------------------------------


def reference_p_prime(cfg: DualPI2Config, events, until_s: float):
    """Independent recurrence: p' at every n*T <= until_s, given a piecewise-constant head enqueue time."""
    T, a, b, tgt = cfg.pi2_tupdate_s, cfg.pi2_alpha_hz, cfg.pi2_beta_hz, cfg.target_s
    p = prevq = 0.0
    n = 1
    while n * T <= until_s:
        u = n * T
        head = None
        for t0, t1, h in events:  # (from, to, head enqueue time) intervals, half-open (t0, t1]
            if t0 < u <= t1:
                head = h
        curq = u - head if head is not None else 0.0
        p = min(max(p + a * (curq - tgt) + b * (curq - prevq), 0.0), 1.0)
        prevq = curq
        n += 1
    return p, prevq


def test_idle_catch_up_equals_updates_at_every_period():
    cfg = DualPI2Config.rfc9332()
    T = cfg.pi2_tupdate_s

    def busy(q: DualPI2Queue) -> None:
        for i in range(30):  # a C backlog held from 0 to 0.2 s, served at 0.2 s
            q.enqueue(pkt(i, NOT_ECT), 0.001 * i)
        drain(q, 0.2)

    one_call = DualPI2Queue(cfg)
    busy(one_call)
    every = DualPI2Queue(cfg)
    busy(every)
    end = 40.0
    n = int(0.2 / T) + 1
    while n * T <= end:
        assert every.dequeue(n * T) is None
        n += 1
    one_call.dequeue(end)
    assert one_call.p_prime == every.p_prime
    assert one_call._prevq == every._prevq
    assert one_call.updates == every.updates == one_call._last_due(end)
    ref_p, _ = reference_p_prime(cfg, [(0.0, 0.2, 0.0)], end)
    assert one_call.p_prime == ref_p == 0.0


def test_idle_decay_matches_reference_exactly():
    """p' high, then idle: it decays by alpha*target per update until 0, bit-identical to the recurrence."""
    cfg = DualPI2Config.rfc9332()
    q = DualPI2Queue(cfg)
    q.enqueue(pkt(0, NOT_ECT), 0.0)
    q.dequeue(0.100)  # head sat 100 ms: p' rises over 6 updates
    p_busy = q.p_prime
    assert p_busy > 0.2
    # some idle updates later, p' is still decaying (not yet 0)
    q.dequeue(0.175)  # 5 idle updates (105..165 ms)
    ref, prevq = reference_p_prime(cfg, [(0.0, 0.100, 0.0)], 0.175)
    assert q.p_prime == ref and q._prevq == prevq == 0.0
    assert 0.0 < q.p_prime < p_busy
    # and the same as calling the queue at every update time
    q2 = DualPI2Queue(cfg)
    q2.enqueue(pkt(0, NOT_ECT), 0.0)
    for n in range(1, 7):
        q2.advance(n * cfg.pi2_tupdate_s)
    q2.dequeue(0.100)
    for n in range(7, 12):
        assert q2.dequeue(n * cfg.pi2_tupdate_s) is None
    assert (q2.p_prime, q2._prevq, q2.updates) == (q.p_prime, q._prevq, q.updates) == (ref, 0.0, 11)


def test_huge_idle_gap_is_fast_and_exact():
    cfg = DualPI2Config.linux()
    q = DualPI2Queue(cfg)
    q.enqueue(pkt(0, ECT0), 0.0)
    q.dequeue(0.5)
    gap_end = 0.5 + 1e6 * cfg.pi2_tupdate_s  # a million idle periods
    t0 = time.perf_counter()
    assert q.dequeue(gap_end) is None
    assert time.perf_counter() - t0 < 0.2
    assert q.p_prime == 0.0 and q._prevq == 0.0
    assert q.updates == q._last_due(gap_end)
    # the queue behaves normally afterwards
    q.enqueue(pkt(1, ECT0), gap_end)
    assert q.dequeue(gap_end + 0.001).pkt_id == 1


def test_stalled_queue_saturates_and_jumps_exactly():
    """A packet stuck 1e5 periods in C (no dequeue): p' saturates at 1; catch-up jumps, prevq = last delay."""
    cfg = DualPI2Config.rfc9332()
    T = cfg.pi2_tupdate_s
    q = DualPI2Queue(cfg)
    q.enqueue(pkt(0, NOT_ECT), 0.003)
    end = 1e5 * T + 0.001
    t0 = time.perf_counter()
    q.enqueue(pkt(1, NOT_ECT), end)
    assert time.perf_counter() - t0 < 0.2
    assert q.p_prime == 1.0 and q.overloaded
    m = q._last_due(end)
    assert q._prevq == m * T - 0.003
    assert q.updates == m
    # the same as advancing one period at a time
    q2 = DualPI2Queue(cfg)
    q2.enqueue(pkt(0, NOT_ECT), 0.003)
    q3 = DualPI2Queue(cfg)
    q3.enqueue(pkt(0, NOT_ECT), 0.003)
    for n in range(1, 200):
        q2.advance(n * T)
    q3.advance(199 * T)
    assert q2.p_prime == q3.p_prime == 1.0
    assert q2._prevq == q3._prevq == 199 * T - 0.003
    assert q2.updates == q3.updates == 199


# -- whole-queue runs -------------------------------------------------------------------------------------------


def run_server(q: DualPI2Queue, arrivals, service_s: float, until_s: float) -> list[Packet]:
    """Arrivals ``(t, pkt)`` sorted by time; one packet leaves every ``service_s`` while the queue is non-empty."""
    out = []
    i = 0
    next_free = 0.0
    n = len(arrivals)
    while True:
        t_arr = arrivals[i][0] if i < n else float("inf")
        t_srv = max(next_free, 0.0) if q.len_pkts else float("inf")
        if min(t_arr, t_srv) > until_s:
            break
        if t_arr <= t_srv:
            q.enqueue(arrivals[i][1], t_arr)
            if q.len_pkts == 1 and next_free < t_arr:
                next_free = t_arr
            i += 1
        else:
            p = q.dequeue(t_srv)
            if p is not None:
                out.append(p)
                next_free = t_srv + service_s
    return out


@pytest.mark.parametrize("preset", ["rfc9332", "linux"])
def test_overloaded_link_conservation_and_latency_separation(preset):
    rng = np.random.default_rng(7)
    cfg = getattr(DualPI2Config, preset)()
    q = DualPI2Queue(cfg, rng=np.random.default_rng(11))
    service = MTU * 8 / 10e6  # 10 Mb/s
    # offered load 1.3x the link: 60 % Classic (Not-ECT/ECT(0)), 40 % L4S, Poisson
    rate = 1.3 / service
    times = np.cumsum(rng.exponential(1 / rate, size=6000))
    kinds = rng.random(6000)
    arrivals = []
    is_l = {}
    for i, (t, u) in enumerate(zip(times, kinds)):
        ecn = ECT1 if u < 0.4 else (ECT0 if u < 0.7 else NOT_ECT)
        arrivals.append((float(t), pkt(i, ecn, t=float(t))))
        is_l[i] = ecn == ECT1
    out = run_server(q, arrivals, service, until_s=float(times[-1]))
    check_conservation(q)
    st = q.stats
    assert st.dequeued_pkts == len(out)
    assert q.l_served_pkts + q.c_served_pkts == len(out)
    assert st.ecn_arrived[ECT1] + st.ecn_arrived[ECT0] + st.ecn_arrived[NOT_ECT] == len(arrivals)
    # unresponsive overload: the PI drives p' up, Classic gets AQM drops, L gets marks
    assert st.drops.get("aqm", 0) > 0 and st.marked_pkts > 0
    assert q.p_prime > 0.3
    l_delay = np.mean([p.qdelay_s for p in out if is_l[p.pkt_id]])
    c_delay = np.mean([p.qdelay_s for p in out if not is_l[p.pkt_id]])
    assert l_delay < 0.005 < c_delay


def test_deterministic_given_seed():
    def run(seed: int):
        q = DualPI2Queue(DualPI2Config.linux(), rng=np.random.default_rng(seed))
        rng = np.random.default_rng(5)
        arrivals = [(0.0002 * i, pkt(i, int(rng.integers(0, 4)))) for i in range(3000)]
        out = run_server(q, arrivals, 0.0003, until_s=0.6)
        return [(p.pkt_id, p.ecn) for p in out], q.stats.as_dict()

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_sojourn_recorded_on_dequeue():
    q = DualPI2Queue()
    p0 = pkt(1, ECT1)
    p0.qdelay_s = 0.010  # delay from an earlier hop
    q.enqueue(p0, 1.0)
    out = q.dequeue(1.0004)
    assert out is p0 and out.qdelay_s == pytest.approx(0.0104)
    assert q.last_sojourn_s == pytest.approx(0.0004) and q.last_dequeued_from == "L"
    assert q.dequeue(1.0005) is None and q.len_pkts == 0 and q.len_bytes == 0


def test_idle_closed_form_when_decay_is_tiny():
    """alpha*target ~ 1.5e-11: reaching 0 would take ~1e10 idle updates; the closed form is used (approx equal)."""
    cfg = DualPI2Config.rfc9332(alpha_hz=1e-9, beta_hz=0.0)
    q = DualPI2Queue(cfg)
    q.set_p_prime(0.3)
    t0 = time.perf_counter()
    q.advance(1e4)  # ~666 666 idle updates
    assert time.perf_counter() - t0 < 0.5
    m = q._last_due(1e4)
    assert q.updates == m
    assert q.p_prime == pytest.approx(0.3 - m * 1e-9 * 0.015, rel=1e-12)


def test_low_rate_preset_steps_on_packets_not_time():
    # step_thresh 8p (tc ... dualpi2 step_thresh 8p): a packet that waited 15 ms for the next burst of a slow or
    # bursty link is not marked unless more than 8 packets remain behind it; the 1-ms time step marks it.
    # (15 ms: before the first PI update at 16 ms, so no coupled marks.)
    cfg = DualPI2Config.low_rate()
    assert cfg.l_aqm == "step" and cfg.l_step_thresh_pkts == 8 and cfg.scheduler == "wrr"
    q = DualPI2Queue(cfg, rng=np.random.default_rng(1))
    lin = DualPI2Queue(DualPI2Config.linux(), rng=np.random.default_rng(1))
    for queue in (q, lin):
        for i in range(12):
            queue.enqueue(pkt(i, ECT1), 0.0)
    low = [p.ecn == CE for p in drain(q, 0.015)]
    linux = [p.ecn == CE for p in drain(lin, 0.015)]
    assert all(linux)                                   # sojourn 15 ms > 1 ms: every packet marked
    assert low == [True] * 3 + [False] * 9              # marked only while more than 8 remain behind


def test_linux_max_rtt_autoconfig_matches_tc():
    # iproute2 q_dualpi2.c: typical_rtt = max_rtt / 6; target = typical_rtt; tupdate = min(typical, max / 3);
    # alpha = 0.1 tupdate / max^2; beta = 0.3 / max.
    cfg = DualPI2Config.linux(max_rtt_s=0.060)
    assert cfg.target_s == pytest.approx(0.010) and cfg.tupdate_s == pytest.approx(0.010)
    assert cfg.alpha_hz == pytest.approx(0.1 * 0.010 / 0.060 ** 2)
    assert cfg.beta_hz == pytest.approx(0.3 / 0.060)
    cfg = DualPI2Config.linux(typical_rtt_s=0.020)
    assert cfg.rtt_max_s == pytest.approx(0.120) and cfg.tupdate_s == pytest.approx(0.020)
    with pytest.raises(ValueError, match="typical_rtt_s"):
        DualPI2Config.linux(max_rtt_s=0.010, typical_rtt_s=0.020)
    with pytest.raises(ValueError, match="max_rtt_s"):
        DualPI2Config.linux(max_rtt_s=-1.0)
    q = make_queue("dualpi2", preset="linux", max_rtt_s=0.060, c_protection_pct=20)
    assert q.config.beta_hz == pytest.approx(5.0) and q.config.c_protection_pct == 20
