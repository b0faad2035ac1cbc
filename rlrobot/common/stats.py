"""Statistics for comparing agents across a few seeds and envs, the way rliable does it.

With 3–10 seeds a mean alone says little: we report the mean with a percentile-bootstrap
confidence interval, the interquartile mean (IQM, robust to one lucky or unlucky seed), the
difference of two agents' means and the probability that one beats the other on a random pair
of runs (each with a bootstrap interval that resamples both agents' seeds independently), and
the number of environment steps a learning curve needs to reach a threshold (sample
efficiency). Across envs, normalised scores are aggregated into an IQM and an optimality gap
with a stratified bootstrap (seeds resampled within each env), and a performance profile gives
the fraction of runs above each score.

A NaN or infinite score is refused everywhere: it is a broken run, which belongs in the list of
failed trials, and sorting or comparing it would give a number that means nothing.

Reference: Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", NeurIPS 2021 (the ``rliable`` library).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from rlrobot.envs.checks import check_number

ArrayLike = Sequence[float] | np.ndarray
# A curve value this close to the threshold (relative to its size) reaches it: the threshold
# is often a mean of the same numbers summed in another order, a few ulps away.
THRESHOLD_RTOL = 1e-9
TWO_SAMPLE_STATISTICS = ("difference", "probability_of_improvement")


def check_scores(name: str, values: ArrayLike, ndim: int = 1) -> np.ndarray:
    """Return ``values`` as a float64 array of ``ndim`` dimensions; refuse empty or non-finite.

    Args:
        name: What the values are, for the message (e.g. ``"probability_of_improvement x"``).
        values: The scores; with ``ndim=1`` any shape is flattened.
        ndim: 1 for one score per run, 2 for a ``(n_runs, n_tasks)`` matrix.

    Raises:
        ValueError: No values, the wrong shape, or a NaN or infinite score (named by index).
    """
    array = np.asarray(values, dtype=np.float64)
    if ndim == 1:
        array = array.ravel()
    if array.ndim != ndim or array.size == 0:
        shape = "one score per run" if ndim == 1 else "a (runs, tasks) matrix"
        raise ValueError(f"{name} must be {shape} with at least one score, got shape {array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = ", ".join(map(str, bad[0]))
        check_number(f"{name}[{index}]", float(array[tuple(bad[0])]))
    return array


def interquartile_mean(values: ArrayLike) -> float:
    """Return the mean of the middle 50 % of ``values`` (scipy's ``trim_mean(values, 0.25)``).

    ``floor(n / 4)`` values are dropped at each end, as in rliable; for fewer than 4 values
    nothing is dropped and the IQM is the mean.

    Args:
        values: Finite scores, shape ``(n,)``, ``n >= 1``.
    """
    ordered = np.sort(check_scores("interquartile_mean values", values))
    cut = ordered.size // 4
    return float(ordered[cut : ordered.size - cut].mean())


def percentile_interval(statistics: np.ndarray, confidence: float) -> tuple[float, float]:
    """Return the ``(1 ± confidence) / 2`` quantiles of bootstrap ``statistics`` (axis 0)."""
    alpha = (1.0 - check_confidence(confidence)) / 2.0
    low, high = np.quantile(statistics, [alpha, 1.0 - alpha], axis=0)
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def check_confidence(confidence: float) -> float:
    """Return ``confidence``; refuse anything outside (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return confidence


def bootstrap_ci(
    values: ArrayLike,
    statistic: Callable[[np.ndarray], float] | str = "mean",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Return the percentile-bootstrap confidence interval of a statistic.

    Resamples ``values`` with replacement ``n_resamples`` times (one seeded generator, so the
    interval is reproducible), computes the statistic of each resample and returns the
    ``(1 − confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those statistics.
    With 3 values the 95 % interval of the mean is the lowest and highest value.

    Args:
        values: Finite scores, shape ``(n,)`` (e.g. one final return per seed).
        statistic: ``"mean"``, ``"iqm"`` or a function of a 1-D array.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.

    Returns:
        ``(low, high)``.
    """
    data = check_scores("bootstrap_ci values", values)
    check_confidence(confidence)
    rng = np.random.default_rng(seed)
    resamples = data[rng.integers(0, data.size, size=(n_resamples, data.size))]
    if statistic == "mean":
        statistics = resamples.mean(axis=1)
    elif statistic == "iqm":
        ordered = np.sort(resamples, axis=1)
        cut = data.size // 4
        statistics = ordered[:, cut : data.size - cut].mean(axis=1)
    elif callable(statistic):
        statistics = np.array([statistic(row) for row in resamples])
    else:
        raise ValueError(f"statistic must be 'mean', 'iqm' or a function, got {statistic!r}")
    return percentile_interval(statistics, confidence)


# Pairs of runs compared at once when resamples are compared: bounds the memory to ~10 MB.
PAIRS_PER_CHUNK = 1_000_000


def _improvement(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """P(X > Y) of the last axes' runs, ties one half: ``(r, n)`` and ``(r, m)`` → ``(r,)``.

    1-D inputs give a number. Rows are compared a chunk at a time, so that 10,000 resamples
    of 200 against 200 runs do not hold 400 M pairs.
    """
    if first.ndim == 1:
        return _improvement(first[None], second[None])[0]
    chunk = max(1, PAIRS_PER_CHUNK // (first.shape[1] * second.shape[1]))
    parts = []
    for start in range(0, len(first), chunk):
        x = first[start : start + chunk, :, None]
        y = second[start : start + chunk, None, :]
        parts.append(np.mean((x > y) + 0.5 * (x == y), axis=(1, 2)))
    return np.concatenate(parts)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """Return P(X > Y) for a random run of X against one of Y (ties count one half).

    The Mann–Whitney statistic normalised to [0, 1]; 0.5 means neither is better.

    Args:
        x: Finite scores of the first agent, shape ``(n,)``.
        y: Finite scores of the second agent, shape ``(m,)``.
    """
    first = check_scores("probability_of_improvement x", x)
    second = check_scores("probability_of_improvement y", y)
    return float(_improvement(first, second))


def mean_difference(x: ArrayLike, y: ArrayLike) -> float:
    """Return ``mean(x) − mean(y)``: how much higher the first agent scores on average."""
    first = check_scores("mean_difference x", x)
    second = check_scores("mean_difference y", y)
    return float(first.mean() - second.mean())


def bootstrap_ci_two_sample(
    x: ArrayLike,
    y: ArrayLike,
    statistic: str = "difference",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Return the percentile-bootstrap CI of a comparison of two agents.

    Each agent's runs are resampled independently (rliable's ``StratifiedIndependentBootstrap``
    on one task): the agents are separate samples, not pairs.

    Args:
        x: Finite scores of the first agent (ours), shape ``(n,)``.
        y: Finite scores of the second agent (the baseline), shape ``(m,)``.
        statistic: ``"difference"`` (``mean(x) − mean(y)``) or ``"probability_of_improvement"``
            (P(X > Y)).
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.

    Returns:
        ``(low, high)``.
    """
    first = check_scores("bootstrap_ci_two_sample x", x)
    second = check_scores("bootstrap_ci_two_sample y", y)
    if statistic not in TWO_SAMPLE_STATISTICS:
        raise ValueError(f"statistic must be one of {TWO_SAMPLE_STATISTICS}, got {statistic!r}")
    check_confidence(confidence)
    rng = np.random.default_rng(seed)
    first_resamples = first[rng.integers(0, first.size, size=(n_resamples, first.size))]
    second_resamples = second[rng.integers(0, second.size, size=(n_resamples, second.size))]
    if statistic == "difference":
        statistics = first_resamples.mean(axis=1) - second_resamples.mean(axis=1)
    else:
        statistics = _improvement(first_resamples, second_resamples)
    return percentile_interval(statistics, confidence)


class Crossing(NamedTuple):
    """Where a learning curve first reaches a threshold.

    Attributes:
        step: Env steps at the first checkpoint at or above the threshold; None: never.
        at_start: The first checkpoint already reaches it (with a curve that starts at step 0,
            the untrained agent does): the threshold says nothing about learning, and the step
            is no measure of sample efficiency.
    """

    step: int | None
    at_start: bool


def first_crossing(
    steps: ArrayLike, returns: ArrayLike, threshold: float, rtol: float = THRESHOLD_RTOL
) -> Crossing:
    """Return where a learning curve first reaches ``threshold``, and whether it starts there.

    A value within ``rtol`` (relative) of the threshold reaches it, so that a threshold taken
    from a mean of the same numbers (summed in another order) is reached by its own curve.

    Args:
        steps: Env steps of the evaluation checkpoints, increasing, shape ``(k,)``.
        returns: Evaluation return at each checkpoint, shape ``(k,)``.
        threshold: The return to reach.
        rtol: Relative tolerance of the comparison.
    """
    values = np.asarray(returns, dtype=np.float64)
    margin = rtol * max(abs(threshold), 1.0)
    reached = np.flatnonzero(values >= threshold - margin)
    if not reached.size:
        return Crossing(None, False)
    return Crossing(int(np.asarray(steps)[reached[0]]), bool(reached[0] == 0))


def steps_to_threshold(steps: ArrayLike, returns: ArrayLike, threshold: float) -> int | None:
    """Return the first step at which a learning curve reaches ``threshold`` (None: never).

    The first checkpoint's step (0 for curves that start untrained) when the curve starts at
    or above the threshold; ``first_crossing`` says so apart.

    Args:
        steps: Env steps of the evaluation checkpoints, increasing, shape ``(k,)``.
        returns: Evaluation return at each checkpoint, shape ``(k,)``.
        threshold: The return to reach.
    """
    return first_crossing(steps, returns, threshold).step


def normalize_scores(scores: ArrayLike, low: ArrayLike, high: ArrayLike) -> np.ndarray:
    """Return ``(scores − low) / (high − low)``: 0 at ``low``, 1 at ``high`` (per task).

    Args:
        scores: Finite scores, shape ``(n_runs, n_tasks)``.
        low: Reference score of each task mapped to 0 (e.g. a random policy's), ``(n_tasks,)``.
        high: Reference score of each task mapped to 1 (e.g. the task's maximum), ``(n_tasks,)``.
    """
    matrix = check_scores("normalize_scores scores", scores, ndim=2)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if low.shape != (matrix.shape[1],) or high.shape != low.shape or not np.all(high > low):
        raise ValueError(
            f"normalize_scores needs one low < high per task ({matrix.shape[1]}), "
            f"got low {low.tolist()} and high {high.tolist()}"
        )
    return (matrix - low) / (high - low)


def aggregate_iqm(scores: ArrayLike) -> float:
    """Return the IQM of every run of every task together (rliable's ``aggregate_iqm``).

    Args:
        scores: Finite normalised scores, shape ``(n_runs, n_tasks)``.
    """
    return interquartile_mean(check_scores("aggregate_iqm scores", scores, ndim=2))


def optimality_gap(scores: ArrayLike, target: float = 1.0) -> float:
    """Return how far the runs fall short of ``target``: ``target − mean(min(scores, target))``.

    Scores above the target count as the target (rliable's ``aggregate_optimality_gap``,
    ``gamma = target``), so a few runs far above it do not hide the ones below.

    Args:
        scores: Finite normalised scores, shape ``(n_runs, n_tasks)``.
        target: The score that counts as solved (1: the normalisation's high reference).
    """
    matrix = check_scores("optimality_gap scores", scores, ndim=2)
    return float(target - np.minimum(matrix, target).mean())


def performance_profile(scores: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Return the fraction of runs (all tasks together) that score above each threshold.

    rliable's run-score distribution: ``mean(scores > τ)`` for each τ.

    Args:
        scores: Finite normalised scores, shape ``(n_runs, n_tasks)``.
        thresholds: The scores τ, shape ``(k,)``.

    Returns:
        Shape ``(k,)``, non-increasing in τ.
    """
    matrix = check_scores("performance_profile scores", scores, ndim=2)
    taus = np.asarray(thresholds, dtype=np.float64).ravel()
    return (matrix.ravel()[None, :] > taus[:, None]).mean(axis=1)


def stratified_bootstrap_ci(
    scores: ArrayLike,
    statistic: Callable[[np.ndarray], float | np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Return the percentile CI of an aggregate over tasks, with a stratified bootstrap.

    Each resample draws, for every task on its own, as many runs as it has with replacement
    (rliable's ``StratifiedBootstrap``): each task keeps its weight, only its seeds vary.

    Args:
        scores: Finite scores, shape ``(n_runs, n_tasks)``.
        statistic: A function of such a matrix: a number (``aggregate_iqm``,
            ``optimality_gap``) or an array (a ``performance_profile``).
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.

    Returns:
        ``(low, high)``: numbers, or arrays of the statistic's shape.
    """
    matrix = check_scores("stratified_bootstrap_ci scores", scores, ndim=2)
    check_confidence(confidence)
    rng = np.random.default_rng(seed)
    n_runs, n_tasks = matrix.shape
    columns = np.arange(n_tasks)[None, :]
    statistics = np.array(
        [
            statistic(matrix[rng.integers(0, n_runs, size=(n_runs, n_tasks)), columns])
            for _ in range(n_resamples)
        ]
    )
    return percentile_interval(statistics, confidence)


def safe_ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return ``numerator / denominator``, or None when either is missing or the sign is unclear.

    A ratio of returns only reads as "how many times better" when both are positive; for
    negative returns (costs) the report shows the difference instead.
    """
    if numerator is None or denominator is None or denominator <= 0 or numerator < 0:
        return None
    return numerator / denominator
