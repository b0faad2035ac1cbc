"""Delayed-reward study: do the agents learn when the reward is paid only at the episode's end?

Each task is trained under five conditions, with the env's entry of
``rlrobot/configs/<algo>.yaml``:

- ``dense``: the dense reward (the reference score);
- ``delayed``: ``reward_mode="delayed"``, no redistribution;
- ``delayed+uniform`` and ``delayed+rrd``: the same with ``reward_redistribution``;
- ``sb3 delayed``: Stable-Baselines3's agent on the delayed task, hyperparameters mapped by
  ``rlrobot.benchmark.sb3`` (what a user has today).

Delayed conditions resolve their config as ``rlrobot train --set env_kwargs.reward_mode=delayed``
does, so the configs' ``delayed:`` sub-entries apply, and only ``reward_redistribution`` is set
on top. Scores are comparable across reward modes: steps balanced on CartPole, success rate on
Reach, return on wrapped Gymnasium envs. The untrained agent's score (the step-0 evaluation)
stands for random; the normalised score is ``(score − random) / (dense − random)``.

Run with ``rlrobot bench --study delayed_rewards``; writes ``delayed_rewards.md``, its JSON and a
learning-curve figure (see ``write_report``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.bench import resolve_trial_config
from rlrobot.benchmark.report import format_interval, format_number, write_keeping_findings
from rlrobot.benchmark.runner import Execution, TrialStore, run_trials
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.trial import TrialSpec
from rlrobot.common.stats import bootstrap_ci, probability_of_improvement, steps_to_threshold
from rlrobot.envs.registration import DELAYED_ENV_ID
from rlrobot.errors import ConfigError

CONDITIONS = ("dense", "delayed", "delayed+uniform", "delayed+rrd", "sb3 delayed")
REDISTRIBUTION = {"delayed": None, "delayed+uniform": "uniform", "delayed+rrd": "rrd"}
GOAL_NORMALIZED = 0.9  # the goal for redistribution at the dense budget
EVAL_EPISODES = 5
N_CHECKPOINTS = 10


@dataclass(frozen=True)
class Task:
    """One env of the study: how it is scored and what each agent trains for.

    Attributes:
        env_id: Gymnasium id.
        score: Key of the evaluation result that is compared (``mean_length`` …).
        label: The score's name in the report.
        budgets: Env steps per trial by algorithm (the dense config's budget, or its cut).
        config_budgets: The dense config's ``n_timesteps`` by algorithm, for the report.
        wrapped: A Gymnasium env without ``reward_mode``: its delayed conditions run
            ``rlrobot/Delayed-v0`` (``DelayedReward`` around it) under its entry with its
            ``delayed:`` sub-entries.
    """

    env_id: str
    score: str
    label: str
    budgets: dict[str, int]
    config_budgets: dict[str, int]
    wrapped: bool = False


TASKS = (
    Task(
        "rlrobot/CartPoleContinuous-v0",
        "mean_length",
        "steps balanced",
        {"ppo": 30_000, "sac": 6_000, "a2c": 30_000},
        {"ppo": 60_000, "sac": 10_000, "a2c": 100_000},
    ),
    Task(
        "rlrobot/Reach-v0",
        "success_rate",
        "success rate",
        {"ppo": 30_000, "sac": 10_000},
        {"ppo": 30_000, "sac": 10_000},
    ),
    # The robots below need 100k–1M steps under the dense reward; their budgets are cut to what
    # 25 trials per agent allow on 2 cores (docs/benchmarks/delayed_rewards.md, "Budgets"), so
    # they are scored on the return, which moves before success does.
    Task(
        "rlrobot/Navigate-v0",
        "mean_return",
        "return",
        {"ppo": 50_000, "sac": 10_000},
        {"ppo": 500_000, "sac": 100_000},
    ),
    Task(
        "rlrobot/Quadruped-v0",
        "mean_return",
        "return",
        {"ppo": 50_000, "sac": 10_000},
        {"ppo": 1_000_000, "sac": 1_000_000},
    ),
    Task("rlrobot/Push-v0", "mean_return", "return", {"sac": 10_000}, {"sac": 1_000_000}),
    Task(
        "CartPole-v1",
        "mean_length",
        "steps balanced",
        {"ppo": 20_000, "a2c": 20_000},
        {"ppo": 50_000, "a2c": 50_000},
        True,
    ),
    Task("Pendulum-v1", "mean_return", "return", {"sac": 5_000}, {"sac": 20_000}, True),
)

PARTS = tuple(f"{task.env_id.split('/')[-1]}:{algo}" for task in TASKS for algo in task.budgets)


def condition_spec(
    task: Task, algo: str, condition: str, seed: int, budget_scale: float, quick: bool
) -> TrialSpec:
    """Return the trial of one task × algorithm × condition × seed."""
    method = REDISTRIBUTION.get(condition)
    redistribution = f"reward_redistribution={method if method else 'null'}"
    env_id = task.env_id
    if task.wrapped and condition == "dense":
        resolved = resolve_trial_config(algo, env_id, [redistribution])
    elif task.wrapped:
        # As `rlrobot train --env rlrobot/Delayed-v0 --set env_kwargs.env_id=…` resolves it.
        env_id = DELAYED_ENV_ID
        resolved = resolve_trial_config(
            algo, env_id, [f"env_kwargs.env_id={task.env_id}", redistribution]
        )
    elif condition == "dense":
        resolved = resolve_trial_config(algo, env_id, ["env_kwargs.reward_mode=dense"])
    else:
        resolved = resolve_trial_config(
            algo, env_id, ["env_kwargs.reward_mode=delayed", redistribution]
        )
    steps = 600 if quick else int(task.budgets[algo] * budget_scale)
    if quick and algo == "ppo":
        resolved.config.update(n_steps=32, batch_size=32)  # a few rollouts in 600 steps
    return TrialSpec(
        env_id=env_id,
        algo=algo,
        seed=seed,
        steps=steps,
        framework="sb3" if condition.startswith("sb3") else "rlrobot",
        config=resolved.config,
        env_kwargs=resolved.env_kwargs,
        n_envs=resolved.n_envs,
        eval_interval=max(1, steps // N_CHECKPOINTS),
        eval_episodes=1 if quick else EVAL_EPISODES,
    )


def build_specs(
    seeds: Sequence[int],
    budget_scale: float = 1.0,
    quick: bool = False,
    only: Sequence[str] = (),
) -> list[tuple[str, TrialSpec]]:
    """Return ``(condition, spec)`` for every task × algorithm × condition × seed.

    Args:
        only: Names of ``PARTS`` (``"Reach-v0:sac"``) to keep; empty: every part.
    """
    specs = []
    for task in TASKS[:1] if quick else TASKS:
        for algo in task.budgets:
            if only and f"{task.env_id.split('/')[-1]}:{algo}" not in only:
                continue
            for condition in CONDITIONS:
                for seed in seeds:
                    spec = condition_spec(task, algo, condition, seed, budget_scale, quick)
                    specs.append((condition, spec))
    return specs


def summarize(pairs: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Return one row per task × algorithm × condition with scores, CIs and curves.

    Args:
        pairs: ``(condition, trial result)`` of finished trials.
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for condition, result in pairs:
        if result.get("status") == "ok":
            spec = result["spec"]
            env_id = (
                spec["env_kwargs"]["env_id"] if spec["env_id"] == DELAYED_ENV_ID else spec["env_id"]
            )
            groups.setdefault((env_id, spec["algo"], condition), []).append(result)
    tasks = {task.env_id: task for task in TASKS}
    rows = []
    for (env_id, algo, condition), results in groups.items():
        score = tasks[env_id].score
        length = min(len(result["curve"]) for result in results)
        curves = np.array([[c[score] for c in r["curve"][:length]] for r in results], dtype=float)
        finals = curves[:, -1]
        rows.append(
            {
                "env_id": env_id,
                "algo": algo,
                "condition": condition,
                "seeds": sorted(r["spec"]["seed"] for r in results),
                "steps": [c["step"] for c in results[0]["curve"][:length]],
                "curve_mean": curves.mean(axis=0).tolist(),
                "finals": finals.tolist(),
                "final_mean": float(finals.mean()),
                "final_ci": list(bootstrap_ci(finals)),
                "random_mean": float(curves[:, 0].mean()),
                "train_time_s": float(np.median([r["train_time_s"] for r in results])),
            }
        )
    add_comparisons(rows)
    return sorted(rows, key=lambda row: (row["env_id"], row["algo"], row["condition"]))


def add_comparisons(rows: list[dict[str, Any]]) -> None:
    """Add the normalised score, steps to 90 % of dense, and P(ours > SB3) to each row."""
    by_key = {(row["env_id"], row["algo"], row["condition"]): row for row in rows}
    for row in rows:
        dense = by_key.get((row["env_id"], row["algo"], "dense"))
        sb3 = by_key.get((row["env_id"], row["algo"], "sb3 delayed"))
        row["normalized"] = row["steps_to_90_dense"] = row["p_beats_sb3"] = None
        if dense is not None:
            random, span = dense["random_mean"], dense["final_mean"] - dense["random_mean"]
            if span > 0:  # else dense learned nothing to compare with
                row["normalized"] = (row["final_mean"] - random) / span
                target = random + 0.9 * span
                row["steps_to_90_dense"] = steps_to_threshold(
                    row["steps"], row["curve_mean"], target
                )
        if sb3 is not None and row["condition"].startswith("delayed"):
            row["p_beats_sb3"] = probability_of_improvement(row["finals"], sb3["finals"])


def render_markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """Return the report: settings, one table per task, the figure, what missed the goal."""
    tasks = {task.env_id: task for task in TASKS}
    lines = [
        "# Delayed rewards: do the agents learn when the reward comes at the end?",
        "",
        "Written by `rlrobot bench --study delayed_rewards` "
        f"(`{settings['command']}`); every number is in `delayed_rewards.json`. "
        f"{settings['n_trials']} trials, {settings['trial_hours']:.1f} h of trial time in all, "
        f"run {settings['workers']} at a time (one torch thread each) on a 2-core machine.",
        "",
        "- **Conditions** (module docstring of `rlrobot/benchmark/studies/delayed_rewards.py`):"
        " dense reward; delayed (the episode's dense rewards paid in one sum at its last "
        "step) without redistribution; delayed with `reward_redistribution=uniform` or `rrd`; "
        "SB3's agent on the delayed task.",
        f"- **Score**: deterministic evaluation of {settings['eval_episodes']} episodes at "
        f"{N_CHECKPOINTS} checkpoints and at step 0 (the untrained agent, standing for random)."
        " Final score: mean over seeds with its 95 % bootstrap CI. *normalised* = (score − "
        "random) / (dense − random); *steps to 90 %*: first checkpoint where the seed mean "
        "reaches random + 0.9·(dense − random). *P(> SB3)*: probability that a seed of the row "
        "beats a seed of SB3 on the delayed task.",
        f"- **Budgets**: {settings['budgets']}.",
        "",
    ]
    for env_id, task in tasks.items():
        for algo in task.budgets:
            selected = [r for r in rows if r["env_id"] == env_id and r["algo"] == algo]
            if not selected:
                continue
            lines += [
                f"## {env_id}, {algo}: final {task.label}",
                "",
                "| condition | seeds | final [95 % CI] | normalised | steps to 90 % of dense "
                "| P(> SB3) | train s (median) |",
                "|---|---|---|---|---|---|---|",
            ]
            for row in sorted(selected, key=lambda r: CONDITIONS.index(r["condition"])):
                reached = row["steps_to_90_dense"]
                lines.append(
                    f"| {row['condition']} | {len(row['seeds'])} | "
                    f"{format_interval(row, 'final_mean', 'final_ci')} | "
                    f"{format_number(row['normalized'], 2)} | "
                    f"{'not reached' if reached is None else f'{reached:,}'} | "
                    f"{format_number(row['p_beats_sb3'], 2)} | {row['train_time_s']:.0f} |"
                )
            lines.append("")
    lines += ["![learning curves](delayed_rewards.png)", "", "## Against the goal", ""]
    lines += goal_lines(rows)
    return "\n".join(lines) + "\n"


def goal_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Say, per redistributed row, whether it meets normalised ≥ 0.9 and beats SB3."""
    lines = []
    for row in rows:
        if row["condition"] not in ("delayed+uniform", "delayed+rrd"):
            continue
        name = f"{row['env_id'].split('/')[-1]} {row['algo']} {row['condition']}"
        normalized, beats = row["normalized"], row["p_beats_sb3"]
        verdict = "meets" if normalized is not None and normalized >= GOAL_NORMALIZED else "misses"
        lines.append(
            f"- {name}: normalised {format_number(normalized, 2)} ({verdict} the ≥ "
            f"{GOAL_NORMALIZED} goal at this budget); P(> SB3 delayed) = {format_number(beats, 2)}."
        )
    return lines


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per task × algorithm, the seed-mean curve of each condition in its own colour."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colors = dict(zip(CONDITIONS, ["tab:red", "tab:gray", "tab:green", "tab:blue", "tab:purple"],
                      strict=True))  # fmt: skip
    panels = sorted({(row["env_id"], row["algo"]) for row in rows})
    tasks = {task.env_id: task for task in TASKS}
    n_columns = min(3, len(panels))
    n_rows = -(-len(panels) // n_columns)
    figure, axes = plt.subplots(
        n_rows, n_columns, figsize=(4.4 * n_columns, 3.2 * n_rows), squeeze=False
    )
    for axis, (env_id, algo) in zip(axes.flat, panels, strict=False):
        for row in sorted(rows, key=lambda r: CONDITIONS.index(r["condition"])):
            if (row["env_id"], row["algo"]) == (env_id, algo):
                axis.plot(
                    row["steps"],
                    row["curve_mean"],
                    marker=".",
                    color=colors[row["condition"]],
                    label=row["condition"],
                )
        seeds = max(len(r["seeds"]) for r in rows if (r["env_id"], r["algo"]) == (env_id, algo))
        axis.set_title(f"{env_id.split('/')[-1]}, {algo} (mean of {seeds} seeds)", fontsize=10)
        axis.set_xlabel("env steps")
        axis.set_ylabel(tasks[env_id].label)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_report(
    pairs: Sequence[tuple[str, dict[str, Any]]], out_dir: Path, settings: dict[str, Any]
) -> Path:
    """Write ``delayed_rewards.md``, ``delayed_rewards.json`` and the figure; return the md."""
    rows = summarize(pairs)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(rows, out_dir / "delayed_rewards.png")
    (out_dir / "delayed_rewards.json").write_text(
        json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n"
    )
    markdown = out_dir / "delayed_rewards.md"
    write_keeping_findings(markdown, render_markdown(rows, settings))
    return markdown


def main(options: StudyOptions) -> Path:
    """Run the missing trials of the parts ``only`` names (or all); report every finished one."""
    seeds, budget_scale, quick = options.seeds, options.budget_scale, options.quick
    selected = build_specs(seeds, budget_scale, quick, options.only)
    # Longest first keeps both workers busy to the end.
    selected.sort(key=lambda pair: -pair[1].steps * (8 if pair[1].algo == "sac" else 1))
    labels = {spec.key: f"{condition} {spec.label}" for condition, spec in selected}
    execution = options.execution or Execution(workers=2)
    store = TrialStore(options.trials_dir)
    run_trials([spec for _, spec in selected], store, execution, labels=labels)
    pairs = build_specs(seeds, budget_scale, quick)
    stored = [store.load(spec.key) for _, spec in pairs]
    finished = [(pair, result) for pair, result in zip(pairs, stored, strict=True) if result]
    pairs, results = [pair for pair, _ in finished], [result for _, result in finished]
    budgets = "; ".join(
        f"{task.env_id.split('/')[-1]} {algo} {steps:,} steps (config: "
        f"{task.config_budgets[algo]:,})"
        for task in TASKS
        for algo, steps in task.budgets.items()
    )
    settings = {
        "command": options.command,
        "seeds": list(seeds),
        "workers": execution.workers or os.cpu_count() or 1,
        "budget_scale": budget_scale,
        "budgets": budgets if budget_scale == 1.0 else f"{budgets}, all × {budget_scale}",
        "eval_episodes": 1 if quick else EVAL_EPISODES,
        "n_trials": len(results),
        "trial_hours": sum(r.get("wall_time_s", 0.0) for r in results) / 3600,
    }
    pairs_done = [
        (condition, result) for (condition, _), result in zip(pairs, results, strict=True)
    ]
    return write_report(pairs_done, options.out_dir, settings)


# The learning tests' trials: delayed CartPoleContinuous at half the study's budget, with and
# without RRD (tests/agents/test_agent_redistribution.py runs seed 0 of each).
MARGIN_BUDGET_SCALE = 0.5
MARGIN_CONDITIONS = ("delayed", "delayed+rrd")
MARGIN_ALGOS = ("ppo", "sac")


def margin_spec(algo: str, condition: str, seed: int) -> TrialSpec:
    """Return one trial of the learning tests' margin measurement."""
    return condition_spec(TASKS[0], algo, condition, seed, MARGIN_BUDGET_SCALE, quick=False)


def main_margins(options: StudyOptions) -> Path:
    """Measure the learning tests' seed margins; write ``delayed_rewards_test_margins.md``."""
    if options.budget_scale != 1.0 or options.quick:
        raise ConfigError("the margin study runs the tests' exact trials: no scale, no --quick")
    pairs = [
        (condition, margin_spec(algo, condition, seed))
        for algo in MARGIN_ALGOS
        for condition in MARGIN_CONDITIONS
        for seed in options.seeds
    ]
    store = TrialStore(options.trials_dir)
    results = run_trials([spec for _, spec in pairs], store, options.execution)
    table: dict[str, Any] = {}
    for (condition, spec), result in zip(pairs, results, strict=True):
        if result.get("status") == "ok":
            entry = table.setdefault(f"{spec.algo} {condition}", {"steps": spec.steps})
            entry.setdefault("finals", {})[spec.seed] = result["curve"][-1]["mean_length"]
    lines = [
        "# Delayed rewards: the seed margins of the learning tests",
        "",
        f"Written by `{options.command}`. The learning tests of "
        "`tests/agents/test_agent_redistribution.py` run seed 0 of these trials (delayed "
        f"`{TASKS[0].env_id}`, the env's tuned config, half the study's budget) and assert a "
        "score with `reward_redistribution=rrd` that the agent without it misses. Score: "
        f"steps balanced over {EVAL_EPISODES} deterministic episodes (at most 500).",
        "",
        "| agent and condition | env steps | seeds | min | max | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in table.items():
        finals = entry["finals"]
        values = list(finals.values())
        per_seed = ", ".join(f"{seed}: {value:.0f}" for seed, value in sorted(finals.items()))
        lines.append(
            f"| {name} | {entry['steps']:,} | {len(values)} | {min(values):.0f} | "
            f"{max(values):.0f} | {per_seed} |"
        )
    out_dir = options.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "delayed_rewards_test_margins.json").write_text(json.dumps(table, indent=1) + "\n")
    markdown = out_dir / "delayed_rewards_test_margins.md"
    markdown.write_text("\n".join(lines) + "\n")
    return markdown


def measure_reward_model(
    env_id: str, algo: str, seed: int, n_episodes: int = 5, budget_scale: float = 1.0
) -> dict[str, Any]:
    """Train one ``delayed+rrd`` trial of the study and compare its r̂ with the dense reward.

    The agent trains as in the study; then its deterministic policy runs ``n_episodes`` on the
    dense env, and each step's ``r̂(s, a, s′)`` is compared with the reward the dense env paid
    (which the agent never saw). Returns the Pearson correlation over steps, the mean r̂ and
    the mean dense reward, and the final score.
    """
    import gymnasium as gym
    import torch

    from rlrobot.benchmark.trial import checkpoint_record, make_agent
    from rlrobot.common.evaluation import evaluate_policy
    from rlrobot.common.networks import to_tensors

    torch.set_num_threads(1)
    task = next(task for task in TASKS if task.env_id == env_id)
    spec = condition_spec(task, algo, "delayed+rrd", seed, budget_scale, quick=False)
    agent = make_agent(spec)
    agent.learn(spec.steps)
    dense_kwargs = {} if task.wrapped else {**spec.env_kwargs, "reward_mode": "dense"}
    env = gym.make(env_id, **dense_kwargs)
    predicted, paid = [], []

    def compare_rewards(
        observation: Any, action: Any, reward: float, next_observation: Any
    ) -> None:
        batch = [
            to_tensors({k: v[None] for k, v in o.items()} if isinstance(o, dict) else o[None],
                       agent.device)
            for o in (observation, next_observation)
        ]  # fmt: skip
        actions = to_tensors(np.asarray(action)[None], agent.device)
        predicted.append(float(agent.reward_redistributor.predict(batch[0], actions, batch[1])))
        paid.append(reward)

    evaluate_policy(agent, env, n_episodes, seed=seed, on_step=compare_rewards)
    score = checkpoint_record(evaluate_policy(agent, env, EVAL_EPISODES, seed=seed))[task.score]
    env.close()
    agent.env.close()
    return {
        "env_id": env_id,
        "algo": algo,
        "seed": seed,
        "steps": spec.steps,
        "correlation": float(np.corrcoef(predicted, paid)[0, 1]),
        "mean_predicted": float(np.mean(predicted)),
        "mean_paid": float(np.mean(paid)),
        "score": float(score),
    }
