"""Benchmark statistics against hand-computed values."""

import numpy as np
import pytest

from rlrobot.common.stats import (
    Crossing,
    aggregate_iqm,
    bootstrap_ci,
    bootstrap_ci_two_sample,
    first_crossing,
    interquartile_mean,
    mean_difference,
    normalize_scores,
    optimality_gap,
    performance_profile,
    probability_of_improvement,
    safe_ratio,
    steps_to_threshold,
    stratified_bootstrap_ci,
)

# Nine final returns whose mean differs in the last bit from the mean of the same numbers as
# the last column of a (seeds, checkpoints) curve (numpy sums a 1-D array pairwise and an axis
# row by row).
FINALS_SUMMED_TWO_WAYS = [-180.3, -203.0, -166.7, -167.8, -194.5, -183.7, -171.4, -188.9, -172.0]


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


def test_first_crossing_tells_a_threshold_met_at_the_start_from_one_learned():
    steps, returns = [0, 100, 200, 300], [1.0, 5.0, 4.0, 9.0]
    assert first_crossing(steps, returns, 5.0) == Crossing(100, at_start=False)
    assert first_crossing(steps, returns, 1.0) == Crossing(0, at_start=True)
    assert first_crossing(steps, returns, -3.0) == Crossing(0, at_start=True)
    assert first_crossing(steps, returns, 10.0) == Crossing(None, at_start=False)
    # A curve that does not start at step 0 is still "at start" at its first checkpoint.
    assert first_crossing([50, 100], [3.0, 4.0], 2.0) == Crossing(50, at_start=True)


def test_a_curve_reaches_its_own_final_mean_summed_in_another_order():
    finals = np.array(FINALS_SUMMED_TWO_WAYS)
    curves = np.stack([finals - 50.0, finals], axis=1)  # (seeds, checkpoints)
    curve_mean = curves.mean(axis=0)
    assert curve_mean[-1] < finals.mean()  # the rounding this test is about
    assert first_crossing([0, 1000], curve_mean, finals.mean()) == Crossing(1000, False)
    assert steps_to_threshold([0, 1000], curve_mean, finals.mean()) == 1000
    # The tolerance is relative and tiny: a real shortfall is still not reached.
    assert first_crossing([0, 1000], curve_mean, finals.mean() + 1e-6).step is None


@pytest.mark.parametrize(
    "function",
    [
        interquartile_mean,
        bootstrap_ci,
        lambda values: probability_of_improvement(values, [1.0, 2.0]),
        lambda values: probability_of_improvement([1.0, 2.0], values),
        lambda values: mean_difference(values, [1.0]),
        lambda values: bootstrap_ci_two_sample(values, [1.0, 2.0]),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_or_infinite_score_is_refused_naming_its_index(function, bad):
    # Sorted, a NaN lands last and counted as the best run; compared, it loses and wins nothing.
    with pytest.raises(ValueError, match=r"\[2\] must be a finite number.*got (nan|inf)"):
        function([1.0, 3.0, bad, 2.0])


def test_empty_scores_are_refused():
    with pytest.raises(ValueError, match="at least one score"):
        interquartile_mean([])
    with pytest.raises(ValueError, match="at least one score"):
        probability_of_improvement([1.0], [])


def test_mean_difference_and_its_two_sample_bootstrap_interval():
    assert mean_difference([3.0, 5.0], [1.0, 2.0, 3.0]) == pytest.approx(2.0)
    # Resampled independently, each of [0, 2] and [0, 1] has means 0, mid, max with
    # probabilities 1/4, 1/2, 1/4: the difference is −1 (P = 1/16 > 2.5 %) … 2 (1/16).
    assert bootstrap_ci_two_sample([0.0, 2.0], [0.0, 1.0], seed=0) == (-1.0, 2.0)
    # Constant agents: the interval is the point.
    assert bootstrap_ci_two_sample([5.0, 5.0], [3.0, 3.0, 3.0]) == (2.0, 2.0)
    with pytest.raises(ValueError, match="statistic"):
        bootstrap_ci_two_sample([1.0], [2.0], statistic="ratio")


def test_probability_of_improvement_interval_resamples_both_agents():
    # Separated agents: every resample has P = 1.
    assert bootstrap_ci_two_sample([5, 6, 7], [1, 2, 3], "probability_of_improvement") == (1, 1)
    # Both constant and equal: ties, P = 0.5 in every resample.
    interval = bootstrap_ci_two_sample([-500] * 3, [-500] * 3, "probability_of_improvement")
    assert interval == (0.5, 0.5)
    # One run each of [0, 1] against [0.5]: a resample of x has 0, 1 or 2 runs above 0.5
    # (P = 1/4, 1/2, 1/4), so P(X > Y) is 0, 0.5 or 1 and the 95 % interval is [0, 1].
    assert bootstrap_ci_two_sample([0.0, 1.0], [0.5], "probability_of_improvement") == (0, 1)
    many_x, many_y = np.random.default_rng(0).normal(1, 1, (2, 100))
    low, high = bootstrap_ci_two_sample(many_x, many_y, "probability_of_improvement")
    point = probability_of_improvement(many_x, many_y)
    assert low < point < high and high - low < 0.2


def test_normalize_scores():
    scores = [[0.0, -500.0], [250.0, -250.0]]
    expected = [[0.0, 0.0], [0.5, 0.5]]
    np.testing.assert_allclose(normalize_scores(scores, [0, -500], [500, 0]), expected)
    with pytest.raises(ValueError, match="low < high"):
        normalize_scores(scores, [0, 0], [500, 0])


def test_aggregates_over_tasks_by_hand():
    # Two tasks × four runs: IQM of all eight drops two at each end.
    scores = np.array([[0.0, 1.0], [0.2, 0.9], [0.4, 1.2], [0.6, 0.8]])
    assert aggregate_iqm(scores) == pytest.approx(np.mean([0.4, 0.6, 0.8, 0.9]))
    # Optimality gap clips 1.2 to 1: 1 − mean(0, 1, 0.2, 0.9, 0.4, 1, 0.6, 0.8) = 1 − 4.9 / 8.
    assert optimality_gap(scores) == pytest.approx(1 - 4.9 / 8)
    assert optimality_gap(scores, target=0.5) == pytest.approx(
        0.5 - 3.1 / 8
    )  # 0, .5, .2, .5, .4, .5 …
    profile = performance_profile(scores, [-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(profile, [1.0, 7 / 8, 5 / 8, 1 / 8, 0.0])


def test_stratified_bootstrap_resamples_runs_within_each_task():
    # Task 0 always scores 0, task 1 always 1: every stratified resample keeps half of each,
    # so the mean is exactly 0.5 (an unstratified bootstrap would vary).
    scores = np.array([[0.0, 1.0]] * 4)
    assert stratified_bootstrap_ci(scores, np.mean) == (0.5, 0.5)
    # Task 0's runs are 0 and 1, task 1's constant 2: the mean over the matrix is
    # (mean of task 0's resample + 2) / 2, task 0's mean 0, 0.5 or 1 (P 1/4, 1/2, 1/4).
    scores = np.array([[0.0, 2.0], [1.0, 2.0]])
    assert stratified_bootstrap_ci(scores, np.mean, seed=1) == (1.0, 1.5)
    # Array statistics give array bounds.
    low, high = stratified_bootstrap_ci(scores, lambda m: performance_profile(m, [0.5, 1.5]))
    np.testing.assert_array_equal(low, [0.5, 0.5])
    np.testing.assert_array_equal(high, [1.0, 0.5])


def test_safe_ratio():
    assert safe_ratio(3.0, 2.0) == 1.5
    assert safe_ratio(0.0, 2.0) == 0.0
    assert safe_ratio(-1.0, 2.0) is None  # signs differ: not "times better"
    assert safe_ratio(1.0, -2.0) is None
    assert safe_ratio(1.0, 0.0) is None
    assert safe_ratio(None, 1.0) is None


def test_matches_rliable_on_ten_runs_of_four_tasks():
    # rliable 1.2 (metrics.aggregate_iqm, aggregate_optimality_gap, probability_of_improvement,
    # library.create_performance_profile and get_interval_estimates with 20,000 reps), run
    # once by hand on these scores; its values are written here so that the test needs no
    # rliable. Intervals agree up to the Monte Carlo noise of two different generators.
    rng = np.random.default_rng(0)
    scores, baseline = rng.normal(0.6, 0.3, size=(10, 4)), rng.normal(0.5, 0.3, size=(10, 4))
    assert aggregate_iqm(scores) == pytest.approx(0.5762193972920138)
    assert optimality_gap(scores) == pytest.approx(0.4195824994133873)
    profile = performance_profile(scores, np.linspace(0, 1.2, 7))
    np.testing.assert_allclose(profile, [0.975, 0.975, 0.8, 0.475, 0.175, 0.05, 0.0])
    assert probability_of_improvement(scores[:, 0], baseline[:, 0]) == pytest.approx(0.39)
    iqm_ci = stratified_bootstrap_ci(scores, aggregate_iqm, n_resamples=4000)
    np.testing.assert_allclose(iqm_ci, [0.5047, 0.6536], atol=0.005)
    gap_ci = stratified_bootstrap_ci(scores, optimality_gap, n_resamples=4000)
    np.testing.assert_allclose(gap_ci, [0.3514, 0.4887], atol=0.005)
    poi_ci = bootstrap_ci_two_sample(scores[:, 0], baseline[:, 0], "probability_of_improvement")
    np.testing.assert_allclose(poi_ci, [0.14, 0.66], atol=0.011)
