"""Capacity schedules: Mahimahi opportunity byte budgets, looping, idle gaps, fluid rate steps."""
from __future__ import annotations

import time

import numpy as np
import pytest

from emu.links.schedule import OpportunitySchedule, RateSchedule


def mahimahi_reference(ts_ms, opp_bytes, arrivals):
    """Brute force of Mahimahi's rationalize(): walk every opportunity in order, FIFO, partial progress kept,
    leftover bytes to the next packet already arrived at that instant, unused bytes lost. Returns finish times."""
    n, period = len(ts_ms), ts_ms[-1]
    finish = [None] * len(arrivals)
    nxt, transit, k = 0, None, 0
    while nxt < len(arrivals) or transit is not None:
        t_ms = (k // n) * period + ts_ms[k % n]
        k += 1
        left = opp_bytes
        while left > 0:
            if transit is None:
                if nxt < len(arrivals) and arrivals[nxt][0] <= t_ms / 1000.0:
                    transit = [nxt, arrivals[nxt][1]]
                    nxt += 1
                else:
                    break
            transit[1] -= left
            left = 0
            if transit[1] <= 0:
                left = -transit[1]
                finish[transit[0]] = t_ms / 1000.0
                transit = None
    return finish


def fifo_finishes(sched, arrivals):
    """What a link does: each packet enters service at max(arrival, previous finish)."""
    out, prev = [], 0.0
    for t, size in arrivals:
        prev = sched.service(max(t, prev), size)
        out.append(prev)
    return out


# -- OpportunitySchedule: hand-computed byte budgets -------------------------------------------------------------

def test_leftover_of_an_opportunity_serves_the_next_packet_at_the_same_instant():
    s = OpportunitySchedule([0, 0, 5], 1504)
    assert s.service(0.0, 1000) == 0.0           # opportunity 0: 1000 of 1504, 504 left
    assert s.service(0.0, 1000) == 0.0           # 504 left of opp 0 + 496 of opp 1 (also at 0 ms); 1008 left
    assert s.service(0.0, 1000) == 0.0           # 1000 of the 1008 left; 8 left
    assert s.service(0.0, 1000) == 0.005         # 8 + 992 of the opportunity at 5 ms


def test_packet_spanning_three_opportunities_keeps_partial_progress():
    s = OpportunitySchedule([1, 2, 3, 4, 10], 1000)
    assert s.service(0.0, 2500) == 0.003         # 1000 @1ms + 1000 @2ms + 500 @3ms; 500 left at 3 ms
    assert s.service(0.003, 400) == 0.003        # from the 500 left; 100 left
    assert s.service(0.003, 200) == 0.004        # 100 @3ms + 100 @4ms


def test_several_small_packets_finish_in_one_opportunity():
    s = OpportunitySchedule([10, 20], 1504)
    assert [s.service(0.0 if i == 0 else 0.010, 376) for i in range(4)] == [0.010] * 4  # 4 x 376 = 1504
    assert s.service(0.010, 376) == 0.020        # the opportunity at 10 ms is exhausted


def test_leftover_is_lost_when_the_queue_is_empty():
    s = OpportunitySchedule([10, 20, 30], 1504)
    assert s.service(0.0, 1000) == 0.010         # 504 left at 10 ms ...
    assert s.service(0.015, 500) == 0.020        # ... lost: a later packet waits for the 20 ms opportunity
    s.reset()
    assert s.service(0.0, 1000) == 0.010
    assert s.service(0.010, 500) == 0.010        # arriving at that same instant, it may use the 504 left


def test_packet_between_opportunities_waits_and_uses_only_later_ones():
    s = OpportunitySchedule([10, 20], 1504)
    assert s.service(0.0105, 100) == 0.020
    s.reset()
    assert s.service(0.010, 100) == 0.010        # at or after its arrival: the opportunity at its instant counts
    s.reset()
    assert s.next_service_s(0.0101) == 0.020
    assert s.next_service_s(0.010) == 0.010


def test_exactly_consumed_opportunity_leaves_nothing_at_that_instant():
    s = OpportunitySchedule([10, 20], 1504)
    assert s.service(0.0, 1504) == 0.010
    assert s.next_service_s(0.010) == 0.020
    assert s.service(0.010, 1) == 0.020


def test_loops_shifted_by_the_last_timestamp():
    s = OpportunitySchedule([2, 7, 10], 1000)
    assert s.period_s == 0.010
    assert s.service(0.008, 3000) == 0.017       # opportunities at 10, 12 (=10+2), 17 (=10+7) ms
    assert [s.opportunity_ms(k) for k in range(7)] == [2, 7, 10, 12, 17, 20, 22]


def test_first_timestamp_zero_gives_two_opportunities_at_each_period_boundary_like_mahimahi():
    s = OpportunitySchedule([0, 4], 1504)
    assert [s.opportunity_ms(k) for k in range(6)] == [0, 4, 4, 8, 8, 12]
    assert fifo_finishes(s, [(0.0, 1504)] * 6) == [0.0, 0.004, 0.004, 0.008, 0.008, 0.012]
    s.reset()
    assert s.service(0.004, 3008) == 0.004       # both opportunities at 4 ms serve a packet starting at 4 ms
    assert s.opportunities_between(0.0, 0.008) == 3
    assert s.opportunities_between(0.004, 0.0081) == 4


def test_idle_gap_of_many_periods_jumps_by_binary_search():
    s = OpportunitySchedule([3, 5, 5, 9, 12], 1504)
    # 1e6 s = 1e9 ms = 83333333 periods of 12 ms + 4 ms -> the next opportunity is the one at 5 ms of that loop.
    assert s.service(1e6, 1504) == pytest.approx(1_000_000.001, abs=1e-9)
    # That used all of the first line stamped 5 ms; 1504 B of its twin + 496 B @ 9 ms (1008 left there).
    assert s.service(1_000_000.001, 2000) == pytest.approx(1_000_000.005, abs=1e-9)
    assert s.service(1_000_000.005, 1200) == pytest.approx(1_000_000.008, abs=1e-9)  # 1008 + 192 @ 12 ms
    # Exactly at a period boundary far away: the boundary's own line (12 ms) is first.
    s.reset()
    boundary = 12 * 10 ** 9 / 1000.0
    assert s.service(boundary, 1504) == boundary
    # Cost: no walk over the gap. 20k calls at random far-away times on a 300k-line trace stay fast.
    rng = np.random.default_rng(1)
    big = OpportunitySchedule(np.sort(rng.integers(0, 800_000, 300_000)), 1504)
    starts = np.sort(rng.uniform(0, 1e7, 20_000)).tolist()
    t0 = time.perf_counter()
    prev = 0.0
    for t in starts:
        prev = big.service(max(t, prev), 1500)
    assert time.perf_counter() - t0 < 1.0
    assert prev >= starts[-1]


def test_finish_time_is_constant_cost_for_huge_packets():
    s = OpportunitySchedule([1, 2], 1000)
    assert s.service(0.0, 1000 * 10 ** 7) == pytest.approx(10_000.0, abs=1e-9)  # 1e7 opportunities, 2 per 2 ms


@pytest.mark.parametrize("seed", range(6))
def test_matches_a_brute_force_mahimahi_link_queue(seed):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 40, rng.integers(1, 25)))
    if ts[-1] == 0:
        ts[-1] = 1
    if seed % 2:
        ts[0] = 0
    opp = int(rng.choice([100, 1000, 1504]))
    arrival_ms = np.sort(rng.integers(0, 300, 80) + rng.choice([0.0, 0.5], 80))
    sizes = rng.choice([0, 1, 40, 376, 1000, 1500, 1504, 3100], 80)
    arrivals = [(float(a) / 1000.0, int(z)) for a, z in zip(arrival_ms, sizes)]
    expected = mahimahi_reference(ts.tolist(), opp, arrivals)
    got = fifo_finishes(OpportunitySchedule(ts, opp), arrivals)
    assert got == expected


def test_opportunity_schedule_validation():
    with pytest.raises(ValueError, match="last timestamp"):
        OpportunitySchedule([0, 0])
    with pytest.raises(ValueError, match="non-decreasing"):
        OpportunitySchedule([0, 5, 3])
    with pytest.raises(ValueError, match=">= 0"):
        OpportunitySchedule([-1, 5])
    with pytest.raises(ValueError, match="opportunity_bytes"):
        OpportunitySchedule([1, 2], 0)
    with pytest.raises(ValueError, match="integers"):
        OpportunitySchedule([1.5, 2])
    with pytest.raises(ValueError, match="non-empty"):
        OpportunitySchedule([])


def test_mean_rate_bytes_between_and_clone():
    s = OpportunitySchedule([0, 5, 10], 1500)
    assert s.mean_rate_bps == pytest.approx(3 * 1500 * 8 / 0.010)
    assert s.bytes_between(0.0, 0.010) == 2 * 1500          # the line at 10 ms is at the end of [0, 10)
    # Lines at 0, 5, 10 | 10, 15, 20 | ...: three per period in [0, 990 ms), then 990 and 995.
    assert s.bytes_between(0.0, 1.0) == 1500 * (3 * 99 + 2)
    s.service(0.0, 1000)
    c = s.clone()
    assert c.service(0.0, 1000) == 0.0 and s.service(0.0, 1000) == 0.005


# -- RateSchedule -----------------------------------------------------------------------------------------------

def two_step():
    # 1 MB/s on [0, 2), 2 MB/s on [2, 4) (the last step lasts as long as the one before), then loop.
    return RateSchedule([0.0, 2.0], [8e6, 16e6])


def test_rate_schedule_finish_times_by_hand():
    s = two_step()
    assert s.period_s == 4.0
    assert s.mean_rate_bps == pytest.approx(6e6 * 8 / 4)
    assert s.service(0.0, 1_000_000) == pytest.approx(1.0)
    assert s.service(1.5, 1_000_000) == pytest.approx(2.25)   # 0.5 MB by 2 s, 0.5 MB at 2 MB/s
    assert s.service(3.0, 3_000_000) == pytest.approx(5.0)    # 2 MB by 4 s, loop, 1 MB at 1 MB/s
    assert s.service(0.0, 60_000_000) == pytest.approx(40.0)  # ten whole periods, ends on the boundary
    assert s.service(1e6 + 1.5, 1_000_000) == pytest.approx(1e6 + 2.25)  # 1e6 s is 250000 periods


def test_rate_schedule_shifts_the_first_time_to_zero():
    s = RateSchedule([1.0, 2.0, 3.0], [8e6, 16e6, 8e6])     # e.g. a Lumos5G log starting at 1 s
    assert s.period_s == 3.0
    assert s.service(0.0, 1_000_000) == pytest.approx(1.0)


def test_rate_schedule_zero_rate_stretch_stalls_service():
    s = RateSchedule([0.0, 1.0, 2.0], [8e6, 0.0, 8e6])
    assert s.service(0.5, 1_000_000) == pytest.approx(2.5)
    assert s.next_service_s(1.5) == 2.0
    assert s.next_service_s(0.5) == 0.5
    w = RateSchedule([0.0, 1.0], [8e6, 0.0])                 # zero at the end: wraps to the next period
    assert w.period_s == 2.0
    assert w.next_service_s(1.2) == 2.0
    assert w.service(0.5, 1_000_000) == pytest.approx(2.5)
    assert w.service(0.0, 1_000_000) == pytest.approx(1.0)   # ends exactly where the zero stretch starts


def test_rate_schedule_capacity_while_idle_is_lost():
    s = two_step()
    assert s.service(1.0, 500_000) == pytest.approx(1.5)     # no credit for the idle second before
    assert s.bytes_between(0.0, 4.0) == pytest.approx(6e6)
    assert s.bytes_between(3.0, 5.0) == pytest.approx(3e6)


@pytest.mark.parametrize("seed", range(4))
def test_rate_schedule_serves_exactly_size_bytes_and_no_sooner(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    times = np.sort(rng.uniform(0, 20, n))
    rates = rng.choice([0.0, 1e5, 1e6, 5e7], n)
    rates[0] = 1e6
    s = RateSchedule(times, rates)
    for _ in range(200):
        start = float(rng.uniform(0, 200))
        size = int(rng.integers(1, 200_000))
        f = s.service(start, size)
        assert s.bytes_between(start, f) == pytest.approx(size, rel=1e-9, abs=1e-6)
        assert s.bytes_between(start, f - 1e-6) < size


def test_rate_schedule_validation():
    with pytest.raises(ValueError, match="zero capacity"):
        RateSchedule([0.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="non-decreasing"):
        RateSchedule([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=">= 0"):
        RateSchedule([0.0, 1.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="period_s"):
        RateSchedule([0.0, 1.0], [1.0, 1.0], period_s=1.0)


def test_rate_log_to_mahimahi_lines():
    s = RateSchedule([0.0], [1504 * 8 * 1000.0], period_s=1.0)  # one 1504-byte opportunity per ms
    ms = s.to_mahimahi_ms(1504)
    assert ms.tolist() == list(range(1, 1001))
    back = OpportunitySchedule(ms, 1504)
    assert back.mean_rate_bps == pytest.approx(s.mean_rate_bps)
