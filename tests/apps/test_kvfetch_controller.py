"""KV-fetch controllers on stub menus: every decision pinned on a hand-computed case (no model, no network).

Stub menu: 4 chunks; per chunk level3 100 kB, level2 80 kB, level1 60 kB, level0 50 kB, text 1 kB; receiver
compute 10 ms per KV chunk, 200 ms per text chunk; query prefill 50 ms; SLO 1 s. At 8 Mbit/s a level3 chunk takes
0.1 s, level2 0.08 s, level1 0.06 s, level0 0.05 s.
"""
from __future__ import annotations

import pytest

from emu.apps.kvfetch.controller import (BandwidthMemory, BudgetController, ChunkMenu, FixedController, Observation,
                                         SloSplitController)

LEVELS = ("level3", "level2", "level1", "level0")
SIZES = {"level3": 100_000, "level2": 80_000, "level1": 60_000, "level0": 50_000, "text": 1_000}


def menu(n_chunks: int = 4) -> ChunkMenu:
    return ChunkMenu(nbytes={k: [v] * n_chunks for k, v in SIZES.items()},
                     gpu_s={k: [0.2 if k == "text" else 0.01] * n_chunks for k in SIZES},
                     levels=LEVELS, query_prefill_s=0.05)


def obs(now_s=0.0, thr=None, queued=0, gpu_free_s=0.0) -> Observation:
    return Observation(now_s=now_s, throughput_bps=thr, queued_bytes=queued, gpu_free_s=gpu_free_s)


# BudgetController: share = (SLO - prefill - last decode - (now + queued / thr)) / chunks left; tail = 0.06 s.
@pytest.mark.parametrize("chunk, o, expected", [
    # first chunk, no measurement: prior 8 Mbit/s; share 0.94 / 4 = 0.235 s >= 0.1 s -> best level
    (0, obs(), "level3"),
    # measured 2 Mbit/s: level3 0.4, level2 0.32, level1 0.24 s exceed 0.235 s; level0 0.2 s fits
    (0, obs(thr=2e6), "level0"),
    # 500 kB still queued at 8 Mbit/s from t = 0.3: network free at 0.8 s, share (1 - 0.06 - 0.8) / 2 = 0.07 s:
    # level3 0.1 and level2 0.08 s do not fit, level1 0.06 s does
    (2, obs(now_s=0.3, thr=8e6, queued=500_000), "level1"),
    # the same 500 kB queued at 4 Mbit/s: free at 1.3 s, share negative; text done 1.3 + 0.2 > 0.95 s, level0
    # done 1.3 + 0.1 + 0.01 = 1.41 s; text (1.5 s) is later -> smallest level
    (2, obs(now_s=0.3, thr=4e6, queued=500_000), "level0"),
    # 1 Mbit/s from the start: level0 takes 0.4 s > 0.235 s share; text finishes at 0.2 s <= SLO - prefill
    (0, obs(thr=1e6), "text"),
    # 1.6 Mbit/s: level0 takes 0.25 s > 0.235 s share; the receiver is busy until 0.5 s, so text is done at 0.7 s,
    # later than level0 (0.26 s) but within SLO - prefill = 0.95 s -> text (the network is left to later chunks)
    (0, obs(thr=1.6e6, gpu_free_s=0.5), "text"),
    # last chunk at 0.9 s, 1 Mbit/s: text done 0.9 + 0.2 = 1.1 s misses 0.95 s but beats level0's 0.9 + 0.4 +
    # 0.01 = 1.31 s
    (3, obs(now_s=0.9, thr=1e6, gpu_free_s=0.9), "text"),
    # same, but the receiver is busy until 1.5 s: text done 1.7 s, level0 1.31 s -> level0; it arrives at 1.3 s,
    # before the receiver is free, so its text goes too (a late KV is then recomputed, no waiting)
    (3, obs(now_s=0.9, thr=1e6, gpu_free_s=1.5), "text+level0"),
    # busy until 1.25 s: text done 1.45 s, level0 1.31 s -> level0, arriving at 1.3 s after the receiver is free
    (3, obs(now_s=0.9, thr=1e6, gpu_free_s=1.25), "level0"),
    # a later chunk with no measurement (earlier chunks went as text): probe with the smallest level
    (1, obs(now_s=0.2), "level0"),
])
def test_budget_controller_decisions(chunk, o, expected):
    assert BudgetController(slo_s=1.0, prior_bps=8e6).choose(chunk, o, menu()) == expected


def test_budget_controller_uses_the_prior_only_without_a_measurement():
    ctl = BudgetController(slo_s=1.0, prior_bps=1e6)
    assert ctl.choose(0, obs(), menu()) == "text"              # prior 1 Mbit/s: nothing fits, text in time
    assert ctl.choose(0, obs(thr=8e6), menu()) == "level3"     # the measurement wins over the prior


# SloSplitController: level3, 2, 1 (never level0) if bytes * 8 / thr < SLO / n_chunks = 0.25 s, else text.
@pytest.mark.parametrize("thr, expected", [
    (8e6, "level3"),      # 0.1 s
    (3.5e6, "level3"),    # 0.2286 s
    (3e6, "level2"),      # level3 0.267 s, level2 0.213 s
    (2.2e6, "level1"),    # level2 0.291 s, level1 0.218 s
    (1.5e6, "text"),      # level1 0.32 s; level0 (0.267 s) is not in the released rule
    (None, "level1"),     # no measurement: prior 2.2 Mbit/s
])
def test_slo_split_controller_decisions(thr, expected):
    assert SloSplitController(slo_s=1.0, prior_bps=2.2e6).choose(1, obs(thr=thr), menu()) == expected


def test_slo_split_is_strictly_below_the_share():
    # level3 at exactly 0.25 s (3.2 Mbit/s) is not chosen: the released rule compares with "<"
    assert SloSplitController(slo_s=1.0, prior_bps=1e6).choose(0, obs(thr=3.2e6), menu()) == "level2"


def test_fixed_controller_and_validation():
    assert FixedController("level2").choose(3, obs(thr=1.0), menu()) == "level2"
    with pytest.raises(ValueError, match="slo_s"):
        BudgetController(slo_s=0.0, prior_bps=1e6)
    with pytest.raises(ValueError, match="prior_bps"):
        BudgetController(slo_s=1.0, prior_bps=0.0)
    with pytest.raises(ValueError, match="slo_s"):
        SloSplitController(slo_s=-1.0, prior_bps=1e6)
    with pytest.raises(ValueError, match="one entry per chunk"):
        ChunkMenu(nbytes={"level0": [1, 2], "text": [1]}, gpu_s={"level0": [0.1, 0.1], "text": [0.1]},
                  levels=("level0",), query_prefill_s=0.0)
    with pytest.raises(ValueError, match="same options"):
        ChunkMenu(nbytes={"level0": [1]}, gpu_s={"text": [0.1]}, levels=(), query_prefill_s=0.0)
    with pytest.raises(ValueError, match="level 'level9'"):
        ChunkMenu(nbytes={"level0": [1]}, gpu_s={"level0": [0.1]}, levels=("level9",), query_prefill_s=0.0)
    assert menu().n_chunks == 4 and menu().options == tuple(SIZES)


def test_budget_controller_without_a_text_option_falls_back_to_the_smallest_level():
    """A menu of KV levels only (no text): where no level fits its share, the smallest level goes (it used to
    raise KeyError('text')); a menu of text only sends text."""
    kv_only = ChunkMenu(nbytes={k: [v] * 4 for k, v in SIZES.items() if k != "text"},
                        gpu_s={k: [0.01] * 4 for k in SIZES if k != "text"}, levels=LEVELS, query_prefill_s=0.05)
    ctl = BudgetController(slo_s=1.0, prior_bps=8e6)
    assert ctl.choose(0, obs(thr=1e6), kv_only) == "level0"
    assert ctl.choose(3, obs(now_s=0.9, thr=1e6, gpu_free_s=1.5), kv_only) == "level0"
    text_only = ChunkMenu(nbytes={"text": [1_000] * 4}, gpu_s={"text": [0.2] * 4}, levels=(), query_prefill_s=0.05)
    assert ctl.choose(0, obs(thr=1e9), text_only) == "text"


def test_connection_memory_starts_the_controller_or_makes_it_hedge():
    """``begin``: with no measurement younger than ``forget_s`` the request hedges (and the next chunks have no
    prior to trust); with one, the first chunk is chosen on the measured average, and a later chunk without a
    measurement of its own (earlier chunks went as text) uses it too instead of probing."""
    memory = BandwidthMemory(prior_bps=20e6, half_life_s=10.0, forget_s=60.0)
    ctl = BudgetController(slo_s=1.0, prior_bps=20e6, memory=memory)
    ctl.begin(0.0)
    assert ctl.hedge and not ctl.informed and ctl.prior_bps == 20e6
    memory.update(1e6, now_s=5.0)
    ctl.begin(30.0)
    assert not ctl.hedge and ctl.informed and ctl.prior_bps == 1e6       # no decay toward the prior
    assert ctl.choose(0, obs(), menu()) == "text"                         # 1 Mbit/s: level0 0.4 s > 0.235 s
    assert ctl.choose(1, obs(now_s=0.2), menu()) == "text"                # no probe: the memory knows the path
    ctl.begin(65.0)                                                       # 60 s after the measurement: stale
    assert ctl.hedge and memory.recent(65.0) is None and memory.recent(64.9) == 1e6
    assert FixedController("level1").hedge is False and SloSplitController(1.0, 1e6).hedge is False


def test_bandwidth_memory_clock_offset_is_trace_time():
    """Each request of an evaluation is its own simulation starting at 0; ``clock_offset_s`` (its trace offset)
    makes ages trace time."""
    memory = BandwidthMemory(prior_bps=20e6, half_life_s=10.0, forget_s=60.0)
    memory.clock_offset_s = 100.0
    memory.update(4e6, now_s=1.0)            # trace time 101 s
    memory.clock_offset_s = 150.0
    assert memory.recent(0.0) == 4e6         # 49 s later
    memory.update(2e6, now_s=1.0)            # trace time 151 s: 50 s later, weight 1 - 0.5 ** 5 on the new value
    assert memory.estimate_bps == pytest.approx(4e6 / 32 + 2e6 * 31 / 32)
    with pytest.raises(ValueError, match="forget_s"):
        BandwidthMemory(forget_s=0.0)
