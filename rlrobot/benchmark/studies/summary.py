"""The summary bench: our PPO and A2C against Stable-Baselines3's, side by side, on one budget.

Our CartPole and Reach and Gymnasium's CartPole, 3 seeds, 15,000 env steps per trial: about
20 minutes on 2 shared cores. SAC and TD3 are compared in the ``off_policy`` study: at the
tens of steps per second they run here, they don't fit this budget. Writes the generic bench
report (``report.md``, plots, ``summary.json``) and the per-trial JSON into the trials folder
(``docs/benchmarks/summary/`` for ``make bench``); ``docs/benchmarks/README.md`` reads it by
hand.

Run with ``rlrobot bench --study summary --out docs/benchmarks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlrobot.benchmark.bench import build_bench_specs, run_bench
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.trial import TrialSpec

ENV_IDS = ("rlrobot/CartPole-v0", "rlrobot/Reach-v0", "CartPole-v1")
ALGOS = ("ppo", "a2c")
STEPS = 15_000
EVAL_EPISODES = 5


def build_specs(
    seeds: Sequence[int], budget_scale: float = 1.0, quick: bool = False
) -> list[TrialSpec]:
    """Return the trials: env × algo × seed × (ours, SB3); quick: PPO on CartPole-v1 only."""
    if quick:
        quick_options = {"overrides": ["batch_size=64"], "n_envs": 2, "eval_episodes": 2}
        return build_bench_specs(["CartPole-v1"], ["ppo"], seeds, 1024, **quick_options)
    steps = max(1, round(STEPS * budget_scale))
    return build_bench_specs(ENV_IDS, ALGOS, seeds, steps, eval_episodes=EVAL_EPISODES)


def main(options: StudyOptions) -> Path:
    """Run the trials not yet in the trials folder and write the bench report there."""
    specs = build_specs(options.seeds, options.budget_scale, options.quick)
    settings = {
        "seeds": len(options.seeds),
        "steps": specs[0].steps,
        "eval interval": "a tenth of the steps",
        "eval episodes": specs[0].eval_episodes,
        "baseline": "sb3",
    }
    return run_bench(specs, options.trials_dir, options.execution, settings, options.command)
