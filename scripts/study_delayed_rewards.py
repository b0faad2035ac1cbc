"""Delayed-reward study: which agent learns Reach and CartPole under dense, sparse, delayed rewards.

Tasks and the score that is comparable across reward modes:

- ``rlrobot/Reach-v0``: success rate (end effector within 5 cm of the target at the last step);
- ``rlrobot/CartPoleContinuous-v0``: episode length (steps balanced, at most 500).

Reward modes are the robot envs' ``reward_mode`` (``"delayed"`` withholds the dense rewards
and releases their sum at the episode's end, with the same accumulator as the
``DelayedReward`` wrapper). Agents: PPO, A2C, REINFORCE (8 or 4 envs, 20k–40k steps) and SAC,
SAC+HER (one env, 6k steps; HER needs ``compute_reward``, which Reach does not define under
delayed rewards). Hyperparameters come from ``configs/<algo>.yaml`` for each env; only the
reward mode (and, for SAC, the replay buffer) changes. Each (task, mode, agent) runs for
several seeds, two trials at a time with one torch thread each; deterministic evaluations of
10 episodes every tenth of the budget give the curves. Writes
``docs/benchmarks/delayed_rewards.md`` and ``delayed_rewards.png``.

    python scripts/study_delayed_rewards.py            # full study
    python scripts/study_delayed_rewards.py --quick    # smoke run (a few minutes), temp folder
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = {
    "rlrobot/Reach-v0": {"score": "success_rate", "label": "success rate", "solved": 0.95},
    "rlrobot/CartPoleContinuous-v0": {"score": "mean_length", "label": "steps balanced",
                                      "solved": 475.0},
}  # fmt: skip
REWARD_MODES = ["dense", "sparse", "delayed"]
AGENTS = ["ppo", "a2c", "reinforce", "sac", "sac+her"]
ON_POLICY_STEPS = {"rlrobot/Reach-v0": 20_000, "rlrobot/CartPoleContinuous-v0": 40_000}
OFF_POLICY_STEPS = 6_000
SEEDS = [0, 1, 2]
EVAL_EPISODES = 10


def agent_settings(agent: str, env_id: str) -> tuple[str, dict[str, Any], int]:
    """Return ``(algo, config, n_envs)`` for an agent label (``sac+her``…) on one env."""
    from rlrobot.benchmark.bench import resolve_trial_config

    algo = agent.split("+")[0]
    resolved = resolve_trial_config(algo, env_id)
    config = dict(resolved.config)
    if algo == "sac":
        config["replay_buffer"] = "her" if agent == "sac+her" else "standard"
    return algo, config, resolved.n_envs


def is_applicable(agent: str, reward_mode: str, env_id: str) -> bool:
    """HER needs a goal env with ``compute_reward`` (Reach, not under delayed rewards)."""
    return agent != "sac+her" or ("Reach" in env_id and reward_mode != "delayed")


def build_specs(quick: bool, budget_scale: float, seeds: list[int]) -> list[Any]:
    """Return one trial per task × reward mode × agent × seed (quick: sparse/delayed Reach)."""
    from rlrobot.benchmark.trial import TrialSpec

    specs = []
    for env_id in list(TASKS)[:1] if quick else TASKS:
        for reward_mode in ["sparse", "delayed"] if quick else REWARD_MODES:
            for agent in ["ppo", "sac", "sac+her"] if quick else AGENTS:
                if not is_applicable(agent, reward_mode, env_id):
                    continue
                algo, config, n_envs = agent_settings(agent, env_id)
                budget = OFF_POLICY_STEPS if algo == "sac" else ON_POLICY_STEPS[env_id]
                steps = 1200 if quick else int(budget * budget_scale)
                for seed in seeds:
                    specs.append(
                        TrialSpec(
                            env_id=env_id,
                            algo=algo,
                            seed=seed,
                            steps=steps,
                            config=config,
                            env_kwargs={"reward_mode": reward_mode},
                            n_envs=n_envs,
                            eval_interval=max(1, steps // 10),
                            eval_episodes=2 if quick else EVAL_EPISODES,
                        )
                    )
    return specs


def agent_label(result: dict[str, Any]) -> str:
    """Return ``ppo``, ``sac``, ``sac+her``… for a trial result."""
    spec = result["spec"]
    her = spec["config"].get("replay_buffer") == "her"
    return spec["algo"] + ("+her" if her else "")


def group_curves(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Return per (env, reward mode, agent): steps, scores ``(seeds, checkpoints)``, finals."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        if result.get("status") != "ok":
            continue
        spec = result["spec"]
        key = (spec["env_id"], spec["env_kwargs"]["reward_mode"], agent_label(result))
        groups.setdefault(key, []).append(result)
    curves = {}
    for (env_id, mode, agent), runs in groups.items():
        score = TASKS[env_id]["score"]
        length = min(len(r["curve"]) for r in runs)
        steps = np.array([c["step"] for c in runs[0]["curve"][:length]])
        scores = np.array([[c[score] for c in r["curve"][:length]] for r in runs], dtype=float)
        returns = np.array([r["curve"][length - 1]["mean_return"] for r in runs])
        curves[(env_id, mode, agent)] = {"steps": steps, "scores": scores, "returns": returns}
    return curves


def steps_to_solve(steps: np.ndarray, scores: np.ndarray, threshold: float) -> int | None:
    """First checkpoint at which the seed-mean score reaches ``threshold`` (None: never)."""
    reached = np.flatnonzero(scores.mean(axis=0) >= threshold)
    return int(steps[reached[0]]) if reached.size else None


def plot(curves: dict[tuple[str, str, str], dict[str, Any]], path: Path) -> None:
    """Grid of tasks × reward modes; one line (seed mean, min–max band) per agent."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colors = dict(zip(AGENTS, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"],
                      strict=True))  # fmt: skip
    figure, axes = plt.subplots(
        len(TASKS), len(REWARD_MODES), figsize=(4.2 * len(REWARD_MODES), 3.3 * len(TASKS))
    )
    for row, (env_id, task) in enumerate(TASKS.items()):
        for column, mode in enumerate(REWARD_MODES):
            axis = axes[row, column]
            for agent in AGENTS:
                curve = curves.get((env_id, mode, agent))
                if curve is None:
                    continue
                scores = curve["scores"]
                label = f"{agent} ({len(scores)} seeds)"
                axis.plot(curve["steps"], scores.mean(axis=0), color=colors[agent], label=label)
                axis.fill_between(curve["steps"], scores.min(axis=0), scores.max(axis=0),
                                  color=colors[agent], alpha=0.15)  # fmt: skip
            axis.set_xscale("symlog", linthresh=1000, linscale=0.5)
            ticks = [0, 1000, 3000, 10_000, 30_000]
            axis.set_xticks(ticks, [f"{t // 1000}k" if t else "0" for t in ticks])
            axis.set_title(f"{env_id.split('/')[-1]} — {mode} reward", fontsize=9)
            axis.set_xlabel("env steps")
            axis.set_ylabel(task["label"])
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def render_markdown(
    curves: dict[tuple[str, str, str], dict[str, Any]],
    results: list[dict[str, Any]],
    quick: bool,
    wall: float,
) -> str:
    """Return the study's Markdown: settings, final-score and steps-to-solve tables, plot."""
    from rlrobot.benchmark.stats import bootstrap_ci

    lines = [
        "# Delayed rewards: which agent learns, and how fast",
        "",
        "Written by `scripts/study_delayed_rewards.py`"
        + (" in `--quick` mode (smoke run, numbers meaningless)." if quick else ".")
        + f" Whole run: {wall / 60:.1f} min on a 2-core machine shared with other jobs.",
        "",
        "- Reward modes (the robot envs' `reward_mode`): **dense** (Reach: −distance in m per "
        "step; CartPole: +1 per step upright), **sparse** (Reach: 0 on success, −1 otherwise; "
        "CartPole: 1 while the pole is within 0.05 rad of upright), **delayed** (the dense "
        "rewards withheld and released in one sum at the episode's end; same accumulator as "
        "the `DelayedReward` wrapper).",
        "- Scores comparable across modes: Reach success rate, CartPole steps balanced (max "
        f"500); deterministic evaluation of {EVAL_EPISODES} episodes at 11 checkpoints.",
        f"- Budgets: on-policy agents {ON_POLICY_STEPS['rlrobot/Reach-v0']:,} env steps on "
        f"Reach and {ON_POLICY_STEPS['rlrobot/CartPoleContinuous-v0']:,} on CartPole; SAC and "
        f"SAC+HER {OFF_POLICY_STEPS:,} on both (off-policy agents do one gradient step per "
        "env step and cost more per step). Hyperparameters from `configs/<algo>.yaml` for "
        "each env (defaults where an algorithm has no entry for CartPoleContinuous: A2C and "
        "REINFORCE); SAC+HER only differs from SAC by its replay buffer (future strategy, "
        "k = 4).",
        "- HER is not applicable to delayed Reach: there the reward depends on the whole "
        "episode, so the env defines no `compute_reward` and relabelling refuses it.",
        "",
    ]
    for env_id, task in TASKS.items():
        lines += [
            f"## {env_id}: final {task['label']} (mean over seeds [95% bootstrap CI]) "
            f"and env steps until the seed mean reaches {task['solved']:g}",
            "",
            "| agent | " + " | ".join(REWARD_MODES) + " |",
            "|---|" + "---|" * len(REWARD_MODES),
        ]
        for agent in AGENTS:
            cells = []
            for mode in REWARD_MODES:
                curve = curves.get((env_id, mode, agent))
                if curve is None:
                    cells.append("n/a")
                    continue
                finals = curve["scores"][:, -1]
                low, high = bootstrap_ci(finals)
                solved = steps_to_solve(curve["steps"], curve["scores"], task["solved"])
                reached = f"{solved:,} steps" if solved is not None else "not reached"
                cells.append(f"{finals.mean():.3g} [{low:.3g}, {high:.3g}]; {reached}")
            lines.append(f"| {agent} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["![learning curves](delayed_rewards.png)", "", "## Reading the results", ""]
    lines += observations(curves)
    failed = [r for r in results if r.get("status") != "ok"]
    lines += ["", "## Failed trials", ""]
    lines += [
        f"- {r['spec']['algo']} {r['spec']['env_id']} {r['spec']['env_kwargs']} seed "
        f"{r['spec']['seed']}: `{(r.get('error') or '?').strip().splitlines()[-1]}`"
        for r in failed
    ] or ["None."]
    return "\n".join(lines) + "\n"


def observations(curves: dict[tuple[str, str, str], dict[str, Any]]) -> list[str]:
    """Return measured statements about the expected shape of the result."""
    lines = []

    def final(env_id: str, mode: str, agent: str) -> float | None:
        curve = curves.get((env_id, mode, agent))
        return None if curve is None else float(curve["scores"][:, -1].mean())

    reach = "rlrobot/Reach-v0"
    her, plain = final(reach, "sparse", "sac+her"), final(reach, "sparse", "sac")
    if her is not None and plain is not None:
        curve = curves[(reach, "sparse", "sac+her")]
        solved = steps_to_solve(curve["steps"], curve["scores"], 0.95)
        when = f"at {solved:,} steps" if solved is not None else "not within the budget"
        lines.append(
            f"- Sparse Reach: SAC+HER ends at {her:.0%} success (≥ 95 % {when}); SAC without "
            f"HER ends at {plain:.0%}."
        )
    for env_id, task in TASKS.items():
        for mode in REWARD_MODES:
            solved = [
                agent
                for agent in AGENTS
                if (curve := curves.get((env_id, mode, agent))) is not None
                and steps_to_solve(curve["steps"], curve["scores"], task["solved"]) is not None
            ]
            lines.append(
                f"- {env_id.split('/')[-1]}, {mode} reward: "
                + (", ".join(solved) if solved else "no agent")
                + f" reached {task['label']} {task['solved']:g} within its budget."
            )
    for env_id in TASKS:
        for agent in AGENTS:
            dense, delayed = final(env_id, "dense", agent), final(env_id, "delayed", agent)
            if dense is not None and delayed is not None:
                label = TASKS[env_id]["label"]
                lines.append(
                    f"- {env_id.split('/')[-1]}, {agent}: {label} {dense:.3g} with dense, "
                    f"{delayed:.3g} with delayed rewards."
                )
    return lines


def main(argv: list[str] | None = None) -> Path:
    """Run the study and write the report; return the markdown path."""
    from rlrobot.benchmark.runner import (
        Execution,
        add_trial_arguments,
        open_trial_outputs,
        run_trials,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_trial_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help="seeds")
    args = parser.parse_args(argv)
    out_dir, store = open_trial_outputs(args, "study_delayed", ROOT / "docs" / "benchmarks")
    start = time.perf_counter()
    specs = build_specs(args.quick, args.budget_scale, args.seeds[:1] if args.quick else args.seeds)
    # Longest first (Reach on-policy runs) keeps both workers busy to the end.
    specs.sort(key=lambda s: -s.steps * (4 if "Reach" in s.env_id else 1))
    results = run_trials(specs, store, Execution(workers=args.workers))
    curves = group_curves(results)
    plot(curves, out_dir / "delayed_rewards.png")
    markdown = out_dir / "delayed_rewards.md"
    markdown.write_text(render_markdown(curves, results, args.quick, time.perf_counter() - start))
    print(f"wrote {markdown}")
    return markdown


if __name__ == "__main__":
    main()
