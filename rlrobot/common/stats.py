"""Statistics for comparing agents across a few seeds, the way rliable does it.

With 3–10 seeds a mean alone says little: we report the mean with a percentile-bootstrap 95 %
confidence interval, the interquartile mean (IQM, robust to one lucky or unlucky seed), the
probability that one agent beats the other on a random pair of runs, and the number of
environment steps a learning curve needs to reach a threshold (sample efficiency).

Reference: Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", NeurIPS 2021.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def interquartile_mean(values: ArrayLike) -> float:
    """Return the mean of the middle 50 % of ``values`` (scipy's ``trim_mean(values, 0.25)``).

    ``floor(n / 4)`` values are dropped at each end, as in rliable; for fewer than 4 values
    nothing is dropped and the IQM is the mean.

    Args:
        values: Scores, shape ``(n,)``, ``n >= 1``.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if ordered.size == 0:
        raise ValueError("interquartile_mean needs at least one value")
    cut = ordered.size // 4
    return float(ordered[cut : ordered.size - cut].mean())


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

    Args:
        values: Scores, shape ``(n,)`` (e.g. one final return per seed).
        statistic: ``"mean"``, ``"iqm"`` or a function of a 1-D array.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.

    Returns:
        ``(low, high)``.
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
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
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [alpha, 1.0 - alpha])
    return float(low), float(high)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """Return P(X > Y) for a random run of X against one of Y (ties count one half).

    The Mann–Whitney statistic normalised to [0, 1]; 0.5 means neither is better.

    Args:
        x: Scores of the first agent, shape ``(n,)``.
        y: Scores of the second agent, shape ``(m,)``.
    """
    first = np.asarray(x, dtype=np.float64).ravel()[:, None]
    second = np.asarray(y, dtype=np.float64).ravel()[None, :]
    if first.size == 0 or second.size == 0:
        raise ValueError("probability_of_improvement needs scores for both agents")
    return float(np.mean((first > second) + 0.5 * (first == second)))


def steps_to_threshold(steps: ArrayLike, returns: ArrayLike, threshold: float) -> int | None:
    """Return the first step at which a learning curve reaches ``threshold`` (None: never).

    Args:
        steps: Env steps of the evaluation checkpoints, increasing, shape ``(k,)``.
        returns: Evaluation return at each checkpoint, shape ``(k,)``.
        threshold: The return to reach.
    """
    steps_array = np.asarray(steps)
    reached = np.flatnonzero(np.asarray(returns, dtype=np.float64) >= threshold)
    return int(steps_array[reached[0]]) if reached.size else None


def safe_ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return ``numerator / denominator``, or None when either is missing or the sign is unclear.

    A ratio of returns only reads as "how many times better" when both are positive; for
    negative returns (costs) the report shows the difference instead.
    """
    if numerator is None or denominator is None or denominator <= 0 or numerator < 0:
        return None
    return numerator / denominator
