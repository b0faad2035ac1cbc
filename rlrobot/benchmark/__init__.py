"""Side-by-side benchmarks against Stable-Baselines3, sweeps, and the statistics behind them.

- ``stats``: bootstrap confidence intervals, IQM, probability of improvement, steps to a return.
- ``sb3``: ``to_sb3`` (our config → SB3 kwargs, field by field) and ``make_sb3_agent``.
- ``trial``: ``TrialSpec`` (cache key), ``CheckpointEvaluator``, ``run_trial``.
- ``runner``: ``run_trials`` on a local process pool or Ray, with caching and one retry.
- ``report`` / ``bench`` / ``sweep``: ``rlrobot bench`` and ``rlrobot sweep`` (see ``cli``).
- ``studies``: the planned studies behind ``rlrobot bench --study NAME`` and ``make bench``.
"""

from rlrobot.benchmark.runner import Execution, TrialStore, run_trials
from rlrobot.benchmark.trial import TrialSpec, run_trial
from rlrobot.common.stats import (
    bootstrap_ci,
    interquartile_mean,
    probability_of_improvement,
    steps_to_threshold,
)

__all__ = [
    "Execution",
    "TrialSpec",
    "TrialStore",
    "bootstrap_ci",
    "interquartile_mean",
    "probability_of_improvement",
    "run_trial",
    "run_trials",
    "steps_to_threshold",
]
