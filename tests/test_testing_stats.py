"""The statistics behind emu.testing: it finds a real improvement, and refuses A-vs-A and noise at its stated rate."""
from __future__ import annotations

import math

import numpy as np
import pytest

from emu.testing import (
    EXACT_MAX_SEEDS, assert_improves, bootstrap_ci, compare, sign_flip_p_value,
)


class Noisy:
    """A synthetic scheme: metric = scale x lognormal(0, sigma) noise, drawn from (seed, stream).

    Two instances with different ``stream`` values are independent draws of the same kind of run, i.e. an A-vs-A
    comparison where the seed does not pin the outcome (as with real runs that differ in more than the seed)."""

    def __init__(self, scale: float, sigma: float, stream: int, trial: int = 0) -> None:
        self.scale, self.sigma, self.stream, self.trial = scale, sigma, stream, trial

    def __call__(self, seed: int) -> dict:
        rng = np.random.default_rng([self.trial, seed, self.stream])
        return {"p99_s": self.scale * float(rng.lognormal(0.0, self.sigma))}


def test_bootstrap_interval_is_reproducible_and_contains_the_ratio():
    d = np.log([0.8, 0.7, 0.9, 0.75, 0.85, 0.6, 0.95, 0.7])
    assert bootstrap_ci(d) == bootstrap_ci(d)
    lo, hi = bootstrap_ci(d)
    assert lo < math.exp(d.mean()) < hi < 1.0


def test_sign_flip_p_value_exact_and_monte_carlo():
    # all 8 ratios improve: only the all-negative sign pattern is as extreme -> p = 1/256 exactly
    d = -np.linspace(0.1, 0.8, 8)
    assert sign_flip_p_value(d) == pytest.approx(1 / 256)
    assert sign_flip_p_value(d, lower_is_better=False) == pytest.approx(1.0)
    many = -np.linspace(0.1, 0.8, EXACT_MAX_SEEDS + 4)
    assert sign_flip_p_value(many) < 1e-3  # Monte Carlo branch, (hits + 1) / (permutations + 1)


def test_detects_a_known_large_improvement():
    result = assert_improves(Noisy(1.0, 0.2, stream=0), Noisy(0.5, 0.2, stream=1), metric="p99_s", seeds=8, by=0.3)
    assert 0.4 < result.ratio < 0.65
    assert result.ci[1] <= 0.7
    assert result.p_value <= 1 / 256 + 1e-12
    assert result.n == 8


def test_higher_is_better_direction():
    result = assert_improves(Noisy(1.0, 0.1, 0), Noisy(2.0, 0.1, 1), metric="p99_s", seeds=8, by=0.5,
                             lower_is_better=False)
    assert result.ci[0] >= 1.5
    with pytest.raises(AssertionError):
        assert_improves(Noisy(2.0, 0.1, 0), Noisy(1.0, 0.1, 1), metric="p99_s", seeds=8, lower_is_better=False)


def test_refuses_a_vs_a():
    with pytest.raises(AssertionError, match="no improvement shown"):
        assert_improves(Noisy(1.0, 0.3, 0), Noisy(1.0, 0.3, 1), metric="p99_s", seeds=8)
    with pytest.raises(AssertionError, match="no improvement shown"):  # the very same runs: every ratio is 1
        assert_improves(Noisy(1.0, 0.3, 0), Noisy(1.0, 0.3, 0), metric="p99_s", seeds=8)


def test_refuses_a_small_improvement_drowned_in_noise():
    with pytest.raises(AssertionError) as info:
        assert_improves(Noisy(1.0, 0.4, 0), Noisy(0.95, 0.4, 1), metric="p99_s", seeds=8)
    message = str(info.value)
    assert "95 % paired bootstrap CI" in message and "required: the whole interval < 1" in message
    assert "seed" in message and "baseline" in message and "candidate" in message  # the per-seed table


def test_refuses_an_improvement_smaller_than_required():
    with pytest.raises(AssertionError, match=r"required: the whole interval <= 0.5"):
        assert_improves(Noisy(1.0, 0.05, 0), Noisy(0.7, 0.05, 1), metric="p99_s", seeds=8, by=0.5)


def false_positive_rate(trials: int, n_seeds: int, sigma: float) -> float:
    """Share of A-vs-A comparisons (independent draws of one scheme) that assert_improves lets pass."""
    passed = 0
    for trial in range(trials):
        try:
            assert_improves(Noisy(1.0, sigma, 0, trial), Noisy(1.0, sigma, 1, trial), metric="p99_s",
                            seeds=n_seeds)
            passed += 1
        except AssertionError:
            pass
    return passed / trials


def test_false_positive_rate_on_a_vs_a_is_at_most_5_percent():
    rate = false_positive_rate(trials=1000, n_seeds=8, sigma=0.3)
    print(f"false-positive rate of assert_improves over 1000 A-vs-A comparisons, 8 seeds: {rate:.3f}")
    assert rate <= 0.05


def test_power_against_a_moderate_improvement():
    # a 30 % lower metric with 20 % (lognormal sigma) run-to-run noise on each side, 8 seeds: the paired t
    # statistic is about 3.6 (> t_0.975,7 = 2.36), so it should be found most of the time
    found = 0
    for trial in range(200):
        try:
            assert_improves(Noisy(1.0, 0.2, 0, trial), Noisy(0.7, 0.2, 1, trial), metric="p99_s", seeds=8)
            found += 1
        except AssertionError:
            pass
    print(f"power against a 30 % improvement in sigma=0.2 noise, 8 seeds: {found / 200:.3f}")
    assert found / 200 >= 0.8


def test_compare_reports_per_seed_table():
    result = compare(Noisy(1.0, 0.2, 0), Noisy(0.8, 0.2, 1), metric="p99_s", seeds=[3, 5, 9])
    table = result.table()
    assert list(table.columns) == ["seed", "baseline", "candidate", "ratio"]
    assert list(table["seed"]) == [3, 5, 9]
    assert table["ratio"].tolist() == pytest.approx((table["candidate"] / table["baseline"]).tolist())
    assert result.ratio == pytest.approx(float(np.exp(np.log(table["ratio"]).mean())))
