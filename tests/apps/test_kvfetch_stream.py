"""kvfetch controllers (pure, literal observations) and the KV server/client over the emulator."""
from __future__ import annotations

import pytest

from emu.apps.kvfetch.app import REQUEST_BYTES, run_fetch
from emu.apps.kvfetch.controller import (BudgetController, ChunkMenu, FixedController, Observation,
                                         SloSplitController)

N = 4
MB = 1_000_000


def menu(query_prefill_s=0.01) -> ChunkMenu:
    return ChunkMenu(
        nbytes={"level3": [500_000] * N, "level2": [400_000] * N, "level1": [300_000] * N, "text": [2_000] * N,
                "quant8": [1_000_000] * N},
        gpu_s={"level3": [0.05] * N, "level2": [0.05] * N, "level1": [0.05] * N, "text": [0.2] * N,
               "quant8": [0.0] * N},
        levels=("level3", "level2", "level1"), query_prefill_s=query_prefill_s)


def test_budget_controller_picks_by_throughput_and_budget():
    m = menu()
    c = BudgetController(slo_s=1.0, prior_bps=20e6)
    # 1 s over 4 chunks, ~0.24 s each: 500 kB needs >= 17 Mbit/s, 300 kB >= 10 Mbit/s
    assert c.choose(0, Observation(0.0, 100e6, 0, 0.0), m) == "level3"
    assert c.choose(0, Observation(0.0, 14e6, 0, 0.0), m) == "level2"
    assert c.choose(0, Observation(0.0, 11e6, 0, 0.0), m) == "level1"
    assert c.choose(0, Observation(0.0, 2e6, 0, 0.0), m) == "text"          # receiver idle: recompute fits
    assert c.choose(0, Observation(0.0, None, 0, 0.0), m) == "level3"       # prior 20 Mbit/s
    # queued bytes eat the budget: 1 MB still queued at 20 Mbit/s is 0.4 s
    assert c.choose(1, Observation(0.1, 20e6, 1 * MB, 0.0), m) == "level1"
    # a busy receiver makes text pointless; the smallest level is the fallback
    assert c.choose(3, Observation(0.9, 2e6, 0, 2.0), m) == "level1"


def test_code_rule_splits_the_slo_evenly():
    m = menu()
    c = SloSplitController(slo_s=1.0, prior_bps=20e6)
    assert c.choose(0, Observation(0.0, 17e6, 0, 0.0), m) == "level3"       # 500 kB in 0.235 s < 0.25 s
    assert c.choose(0, Observation(0.0, 13e6, 0, 0.0), m) == "level2"
    assert c.choose(0, Observation(0.0, 5e6, 0, 0.0), m) == "text"


def test_menu_validation():
    with pytest.raises(ValueError, match="one entry per chunk"):
        ChunkMenu(nbytes={"a": [1, 2]}, gpu_s={"a": [0.1]}, levels=("a",), query_prefill_s=0.0)
    with pytest.raises(ValueError, match="level"):
        ChunkMenu(nbytes={"a": [1]}, gpu_s={"a": [0.1]}, levels=("b",), query_prefill_s=0.0)
    with pytest.raises(ValueError, match="slo_s"):
        BudgetController(slo_s=0.0, prior_bps=1e6)


def test_fixed_fetch_on_constant_link_matches_hand_computation():
    m = menu()
    rate, rtt = 20e6, 0.04
    res = run_fetch(m, FixedController("level1"), rate_bps=rate, rtt_s=rtt)
    assert res.choices == ["level1"] * N and res.total_bytes == 4 * 300_000
    # request (~1/2 RTT) + 1.2 MB at 20 Mbit/s (with 1500/1448 header overhead) + slow-start ramp
    wire_s = 1.2 * MB * 8 / rate * 1500 / 1448
    assert wire_s + rtt / 2 < res.fetch_s < wire_s + rtt / 2 + 8 * rtt
    # the receiver decodes chunk by chunk while later chunks arrive: TTFT = last arrival + last decode + query
    assert res.ttft_s == pytest.approx(max(res.fetch_s, res.processed_s[-2]) + 0.05 + 0.01)
    assert res.arrived_s == sorted(res.arrived_s)


def test_text_fetch_is_recompute_bound():
    res = run_fetch(menu(), FixedController("text"), rate_bps=20e6, rtt_s=0.04)
    assert res.ttft_s == pytest.approx(res.arrived_s[0] + 4 * 0.2 + 0.01, abs=0.01)
    assert res.total_bytes == 4 * 2000


def test_adaptive_fetch_uses_text_on_a_slow_link_and_kv_on_a_fast_one():
    m = menu()
    slow = run_fetch(m, BudgetController(1.0, prior_bps=2e6), rate_bps=2e6, rtt_s=0.04)
    fast = run_fetch(m, BudgetController(1.0, prior_bps=2e6), rate_bps=200e6, rtt_s=0.04)
    # the prior says text; chunk 1 probes the path with the smallest level, then the measurement decides
    assert slow.choices[:2] == ["text", "level1"] and slow.choices[2:] == ["text", "text"]
    assert fast.choices[:2] == ["text", "level1"] and fast.choices[3] == "level3"
    assert fast.ttft_s < 0.6 < slow.ttft_s


def test_fetch_is_deterministic():
    a = run_fetch(menu(), BudgetController(1.0, 20e6), rate_bps=30e6, seed=3)
    b = run_fetch(menu(), BudgetController(1.0, 20e6), rate_bps=30e6, seed=3)
    assert (a.choices, a.arrived_s, a.ttft_s) == (b.choices, b.arrived_s, b.ttft_s)
    assert REQUEST_BYTES > 0
