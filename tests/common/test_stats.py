"""Benchmark statistics against hand-computed values."""

import numpy as np
import pytest

from rlrobot.common.stats import (
    bootstrap_ci,
    interquartile_mean,
    probability_of_improvement,
    safe_ratio,
    steps_to_threshold,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),  # drop 2 at each end: mean(3, 4, 5, 6)
        ([1, 2, 3, 100], 2.5),  # drop 1 at each end: mean(2, 3); the outlier is ignored
        ([5, 1, 3], 3.0),  # fewer than 4 values: nothing dropped
        ([10, 0, 1, 2, 3, 4, 5, 6, 7], 4.0),  # n=9: drop 2 each end → mean(2, 3, 4, 5, 6)
    ],
)
def test_interquartile_mean(values, expected):
    assert interquartile_mean(values) == pytest.approx(expected)


def test_bootstrap_ci_of_two_values_matches_the_exact_resampling_distribution():
    # Resamples of [0, 1] have means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 95 % interval is [0, 1] and the central 40 % interval (quantiles 0.3, 0.7) is [0.5, 0.5].
    assert bootstrap_ci([0.0, 1.0], seed=0) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], confidence=0.4, seed=0) == (0.5, 0.5)


def test_bootstrap_ci_of_three_values():
    # Resample sums of [0, 1, 2] take 0…6 with counts 1, 3, 6, 7, 6, 3, 1 out of 27: the mean 0
    # has probability 1/27 ≈ 3.7 % > 2.5 %, so the 95 % interval spans [0, 2]; the central 50 %
    # (quantiles 0.25, 0.75) is [2/3, 4/3] since P(mean ≤ 1/3) = 4/27 < 25 % < 10/27.
    low, high = bootstrap_ci([0.0, 1.0, 2.0], seed=3)
    assert (low, high) == (0.0, 2.0)
    assert bootstrap_ci([0.0, 1.0, 2.0], confidence=0.5, seed=3) == pytest.approx((2 / 3, 4 / 3))


def test_bootstrap_ci_is_reproducible_and_near_the_normal_interval():
    values = np.random.default_rng(0).normal(10.0, 2.0, size=400)
    first = bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) == first
    half_width = 1.96 * values.std() / np.sqrt(values.size)
    assert first[0] == pytest.approx(values.mean() - half_width, abs=0.03)
    assert first[1] == pytest.approx(values.mean() + half_width, abs=0.03)


def test_bootstrap_ci_of_iqm_and_of_a_constant():
    assert bootstrap_ci([4.0, 4.0, 4.0], statistic="iqm") == (4.0, 4.0)
    # A resample of [0, 10, 10, 10] with k zeros has IQM 10 (k ≤ 1), 5 (k = 2) or 0 (k ≥ 3);
    # k ~ Binomial(4, 1/4): P(k ≥ 3) = 13/256 ≈ 5 % > 2.5 % and P(k ≤ 1) = 189/256 ≈ 74 %.
    low, high = bootstrap_ci([0.0, 10.0, 10.0, 10.0], statistic="iqm", seed=0)
    assert (low, high) == (0.0, 10.0)
    # The max of a resample of [1, 2, 3] is 1 with probability 1/27 ≈ 3.7 % > 2.5 %.
    assert bootstrap_ci([1.0, 2.0, 3.0], statistic=np.max, seed=0) == (1.0, 3.0)
    with pytest.raises(ValueError, match="statistic"):
        bootstrap_ci([1.0], statistic="median")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.0)


def test_probability_of_improvement():
    # Pairs: 1 loses twice; 2 ties twice (0.5 each); 3 wins twice → 3 / 6.
    assert probability_of_improvement([1, 2, 3], [2, 2]) == pytest.approx(0.5)
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert probability_of_improvement([1, 5], [3]) == pytest.approx(0.5)


def test_steps_to_threshold():
    steps, returns = [0, 100, 200, 300], [1.0, 5.0, 4.0, 9.0]
    assert steps_to_threshold(steps, returns, 5.0) == 100
    assert steps_to_threshold(steps, returns, 6.0) == 300
    assert steps_to_threshold(steps, returns, 0.5) == 0
    assert steps_to_threshold(steps, returns, 10.0) is None
    # Negative returns (costs): the threshold is reached when the cost is small enough.
    assert steps_to_threshold(steps, [-9.0, -4.0, -2.0, -1.0], -2.5) == 200


def test_safe_ratio():
    assert safe_ratio(3.0, 2.0) == 1.5
    assert safe_ratio(0.0, 2.0) == 0.0
    assert safe_ratio(-1.0, 2.0) is None  # signs differ: not "times better"
    assert safe_ratio(1.0, -2.0) is None
    assert safe_ratio(1.0, 0.0) is None
    assert safe_ratio(None, 1.0) is None
