"""Chatterbox's bursty-loss target over paired seeds, judged by emu.testing (not one lucky seed).

5 % loss in bursts of 3 packets, 100 ms RTT, 10 Mbit/s, 6 responses per seed, seeds 1-8. Measured
(`python -m pytest -q -s tests/apps/test_chatterbox_seeds.py`): chatterbox/stream stall ratio 0.55, 95 % CI
[0.50, 0.61], one-sided p = 0.004; the README's target is a 50 % cut, so what holds at 95 % is a cut of at least
35 % (asserted), and the gap to 50 % is stated in the README.
"""
from __future__ import annotations

from functools import lru_cache

import pytest

from emu.apps.chatterbox.eval import ChatterboxEvalConfig, evaluate
from emu.testing import assert_improves, compare

SEEDS = range(1, 9)
CONFIG = ChatterboxEvalConfig(loss=0.05, burst=3, n_responses=6)


@lru_cache(maxsize=None)
def _run(seed: int) -> dict:
    return evaluate(CONFIG, schemes=("stream", "duplicate", "chatterbox"), seed=seed)


def scheme(name: str):
    return lambda seed: _run(seed)[name]


def test_chatterbox_cuts_bursty_stalls_against_stream_over_seeds():
    result = assert_improves(scheme("stream"), scheme("chatterbox"), metric="stall_ratio", seeds=SEEDS, by=0.35)
    print(result.describe())


def test_chatterbox_cuts_bursty_stalls_against_duplicate_over_seeds():
    result = assert_improves(scheme("duplicate"), scheme("chatterbox"), metric="stall_ratio", seeds=SEEDS, by=0.3)
    print(result.describe())


def test_the_same_judge_refuses_a_scheme_that_is_no_better():
    """Stream against itself on the same runs: ratio 1, and assert_improves refuses even a 0 % improvement."""
    same = compare(scheme("stream"), scheme("stream"), metric="stall_ratio", seeds=SEEDS)
    assert same.ratio == 1.0 and same.p_value > 0.05
    with pytest.raises(AssertionError):
        assert_improves(scheme("stream"), scheme("stream"), metric="stall_ratio", seeds=SEEDS, by=0.0)
