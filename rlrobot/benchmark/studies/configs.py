"""Configs study: do the tuned defaults in ``rlrobot/configs/`` learn? Train each env × algo
entry and compare it with a random policy.

Each trial is one ``rlrobot train`` run (the run API: ``resolve_config`` + ``train``) of the
entry in ``rlrobot/configs/<algo>.yaml``, with the budget of ``PLAN`` (shorter than the entry's
``n_timesteps`` where the machine cannot afford it) and periodic evaluations of 5 episodes every
5,000 steps. The final policy is then evaluated deterministically for ``EVAL_EPISODES``
episodes (seeds 1000, 1001, …) and a uniformly random policy for the same episodes of the same
env (same ``env_kwargs``). Run folders go to the trials folder (``runs/bench_configs/``) and are
reused: a finished run is only evaluated again (cached in the folder), an interrupted one
resumes, so the plan can be run piece by piece (``--only ENV:ALGO``). Writes ``configs.md``:
one row per run folder found, then its hand-written findings, kept.

    rlrobot bench --study configs --out docs/benchmarks          # the whole plan (~3 h)
    rlrobot bench --study configs --out docs/benchmarks --only rlrobot/Quadruped-v0:sac
    rlrobot bench --study configs --quick                        # smoke run, temp folders
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlrobot.benchmark.report import write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.errors import ConfigError

# (env id, algo, env steps run): 10-30 minutes for the most promising algo of each robot
# env, less for the others, on 2 cores shared with other work (off-policy ~30-60 steps/s);
# SAC+HER on Push: its entry's whole 1M steps (~4.2 h); a larger budget here resumes
# the run folder from its last checkpoint, replay buffer included.
PLAN = [
    ("rlrobot/Quadruped-v0", "sac", 100_000),
    ("rlrobot/Navigate-v0", "sac", 40_000),
    ("rlrobot/Push-v0", "sac", 1_000_000),
    ("rlrobot/Navigate-v0", "ppo", 100_000),
    ("rlrobot/Quadruped-v0", "ppo", 1_000_000),
    ("rlrobot/Push-v0", "ppo", 60_000),
    ("rlrobot/CartPoleContinuous-v0", "a2c", 100_000),
    ("rlrobot/CartPoleContinuous-v0", "reinforce", 200_000),
    ("rlrobot/Quadruped-v0", "td3", 10_000),
    ("rlrobot/Navigate-v0", "td3", 40_000),
    ("rlrobot/Push-v0", "td3", 10_000),
    ("rlrobot/Navigate-v0", "a2c", 50_000),
    ("rlrobot/Quadruped-v0", "a2c", 50_000),
    ("rlrobot/Push-v0", "a2c", 50_000),
    ("rlrobot/Navigate-v0", "reinforce", 50_000),
    ("rlrobot/Quadruped-v0", "reinforce", 50_000),
    ("rlrobot/Push-v0", "reinforce", 50_000),
]
# The parts ``--only`` chooses from: ``ENV:ALGO`` of each planned trial.
PARTS = tuple(f"{env_id}:{algo}" for env_id, algo, _ in PLAN)
# Periodic evaluations during training (the learning curve in each run folder).
TRAINING_OVERRIDES = ("eval_freq=5000", "eval_episodes=5")
EVAL_SEED = 1000
EVAL_EPISODES = 20
QUICK_ENV = "rlrobot/CartPoleContinuous-v0"
EVAL_CACHE = "bench_configs_eval.json"
TIME_FILE = "bench_configs_time.json"
# What the scores mean per env (from the env docstrings), printed under the table.
ENV_NOTES = {
    "rlrobot/Quadruped-v0": "return ≈ 1,000 alive bonus (1 per step, 1000 steps) + forward "
    "distance × 60 (x velocity summed over 1/60 s steps) − energy; success: torso ≥ 2 m ahead "
    "at the episode's end",
    "rlrobot/Navigate-v0": "dense return: −Σ distance to the goal (m) over 200 steps; success: "
    "within 0.3 m at the episode's end",
    "rlrobot/Push-v0": "sparse return: −(steps with the cube > 5 cm from the goal), of 50; "
    "dense: −Σ distance (m); success: cube within 5 cm at the episode's end",
    "rlrobot/CartPoleContinuous-v0": "return: steps balanced, at most 500",
}


class RandomPolicy:
    """Uniformly random actions, with SB3's ``predict`` signature."""

    def __init__(self, action_space: Any, seed: int) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(self, observation: Any, deterministic: bool = False) -> tuple[Any, None]:
        """Return a random action (the observation is ignored)."""
        return self.action_space.sample(), None


def run_folder(runs_dir: Path, env_id: str, algo: str, seed: int) -> Path:
    """Return the run folder of one trial, e.g. ``sac-rlrobot_Push-v0-seed0``."""
    return runs_dir / f"{algo}-{env_id.replace('/', '_')}-seed{seed}"


def train_trial(env_id: str, algo: str, steps: int, seed: int, folder: Path) -> None:
    """Train the ``rlrobot/configs/`` entry for ``steps`` env steps, resuming an unfinished run.

    The training wall time (summed over resumes) is kept in the run folder (``TIME_FILE``).
    """
    from rlrobot.run.config import resolve_config
    from rlrobot.run.folder import RunFolder, read_run_state
    from rlrobot.run.training import train

    resolved = resolve_config(
        algo, env_id, seed, overrides=TRAINING_OVERRIDES, explicit={"n_timesteps": steps}
    )
    resume, wall_s = (folder / "config.yaml").is_file(), 0.0
    # None: stopped before its first checkpoint, so the resume trains it from the start.
    checkpoint = RunFolder(folder).find_resume_checkpoint() if resume else None
    if checkpoint is not None:
        if read_run_state(checkpoint)["num_timesteps"] >= steps:
            return
        # Read before the resume rewrites config.yaml (which the fallback times from).
        wall_s = training_wall_time(folder, checkpoint)
    start = time.perf_counter()
    try:
        train(resolved, folder, resume=resume, progress_bar=False)
    finally:
        # An interrupted run (Ctrl-C) still counts its time: the next call resumes from it.
        wall_s += time.perf_counter() - start
        (folder / TIME_FILE).write_text(json.dumps({"wall_s": wall_s}))


def training_wall_time(folder: Path, latest: Path) -> float:
    """Return the training wall time (s) of a run folder.

    Folders trained by plain ``rlrobot train`` have no ``TIME_FILE``: their time runs from the
    config (written when training starts) to the final checkpoint.
    """
    time_file = folder / TIME_FILE
    if time_file.is_file():
        return json.loads(time_file.read_text())["wall_s"]
    return latest.stat().st_mtime - (folder / "config.yaml").stat().st_mtime


def evaluate_trial(folder: Path, episodes: int) -> dict[str, Any]:
    """Evaluate a run's final agent and a random policy on the same episodes.

    The result is cached in the run folder (``EVAL_CACHE``) for its latest checkpoint.
    """
    from rlrobot.common.evaluation import evaluate_policy
    from rlrobot.run.evaluation import load_run_agent, make_env
    from rlrobot.run.folder import read_run_state

    agent, resolved, run = load_run_agent(folder, "latest")
    latest = run.resolve_checkpoint("latest")
    steps = read_run_state(latest)["num_timesteps"]
    cache = folder / EVAL_CACHE
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached["steps"] == steps and cached["trained"]["n_episodes"] == episodes:
            return cached
    env = make_env(resolved)
    try:
        trained = evaluate_policy(agent, env, episodes, deterministic=True, seed=EVAL_SEED)
        random = evaluate_policy(RandomPolicy(env.action_space, EVAL_SEED), env, episodes,
                                seed=EVAL_SEED)  # fmt: skip
    finally:
        env.close()
    result = {
        "env_id": resolved.env,
        "algo": resolved.algo,
        "seed": resolved.seed,
        "steps": steps,
        "env_kwargs": resolved.run.env_kwargs,
        "trained": trained.summary(),
        "random": random.summary(),
        "wall_s": training_wall_time(folder, latest),
    }
    cache.write_text(json.dumps(result, indent=1))
    return result


def format_score(summary: dict[str, Any]) -> str:
    """Return ``-12.3 ± 4.5 / 80%`` (return, success rate where the env reports it)."""
    text = f"{summary['mean_reward']:.1f} ± {summary['std_reward']:.1f}"
    if summary["success_rate"] is not None:
        text += f" / {summary['success_rate']:.0%}"
    return text


def format_difference(trained: dict[str, Any], random: dict[str, Any]) -> str:
    """Return the difference of mean returns ± two standard errors, e.g. ``+166 ± 57``."""
    variance = sum(s["std_reward"] ** 2 / s["n_episodes"] for s in (trained, random))
    difference = trained["mean_reward"] - random["mean_reward"]
    return f"{difference:+.1f} ± {2 * variance**0.5:.1f}"


def render_markdown(rows: Sequence[dict[str, Any]], episodes: int, command: str) -> str:
    """Return the report: one table row per trial."""
    lines = [
        "# Tuned defaults in `rlrobot/configs/`: do they learn?",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d')}. Each row trains the env's "
        "entry of `rlrobot/configs/<algo>.yaml` (one seed, torch threads 1, `nice -n 5`, "
        "one training "
        "at a time on 2 CPU cores shared with other work) for the steps shown, usually fewer "
        "than the entry's `n_timesteps`. Return / success: mean ± std over "
        f"{episodes} episodes (seeds {EVAL_SEED}…) of the final policy acting deterministically, "
        "and of a uniformly random policy on the same episodes. Wall time: of training, "
        "including periodic evaluations (5 episodes every 5,000 steps); the machine's load "
        "varies, so times are rough.",
        "",
        "| env | algo | reward | steps run | seed | final return / success | random return / "
        "success | return − random (± 2 s.e.) | wall time |",
        "| --- | --- | --- | ---: | ---: | --- | --- | --- | ---: |",
    ]
    for row in rows:
        reward = row["env_kwargs"].get("reward_mode", "dense")
        lines.append(
            f"| {row['env_id']} | {row['algo']} | {reward} | {row['steps']:,} | {row['seed']} "
            f"| {format_score(row['trained'])} | {format_score(row['random'])} "
            f"| {format_difference(row['trained'], row['random'])} | {row['wall_s'] / 60:.1f} min |"
        )
    lines += ["", "Reading the scores:", ""]
    for env_id in dict.fromkeys(row["env_id"] for row in rows):
        lines.append(f"- {env_id}: {ENV_NOTES.get(env_id, 'see the env docstring')}.")
    return "\n".join(lines) + "\n"


def select_plan(
    only: Sequence[str], budget_scale: float, quick: bool
) -> list[tuple[str, str, int]]:
    """Return the ``(env id, algo, steps)`` to train: ``PLAN``, or its ``ENV:ALGO`` parts.

    Raises:
        ConfigError: A part that is not in the plan.
    """
    # The smoke run trains the fast env's trials only.
    plan = [trial for trial in PLAN if trial[0] == QUICK_ENV] if quick else PLAN
    names = [f"{env_id}:{algo}" for env_id, algo, _ in plan]
    unknown = [part for part in only if part not in names]
    if unknown:
        raise ConfigError(f"--only {unknown} not in the configs study's plan; choose from {names}")
    return [
        (env_id, algo, 2_000 if quick else max(1, round(steps * budget_scale)))
        for env_id, algo, steps in plan
        if not only or f"{env_id}:{algo}" in only
    ]


def main(options: StudyOptions) -> Path:
    """Train the selected trials of ``PLAN``, evaluate every run folder, write ``configs.md``.

    Each trial trains once per seed of ``options``, in a run folder of its trials folder that
    resumes where it stopped; ``only`` selects ``ENV:ALGO`` parts of ``PLAN`` to train, and
    every run folder found is reported. The trainings run one at a time in this process
    (``options.execution`` is not used).
    """
    only, budget_scale, quick = options.only, options.budget_scale, options.quick
    seeds, trials_dir = options.seeds, options.trials_dir
    selected = select_plan(only, budget_scale, quick)
    for seed in seeds:
        for env_id, algo, steps in selected:
            print(f"=== {algo} on {env_id}, seed {seed}: {steps:,} steps", flush=True)
            train_trial(env_id, algo, steps, seed, run_folder(trials_dir, env_id, algo, seed))
    episodes = 2 if quick else EVAL_EPISODES
    rows = []
    for env_id, algo, _ in select_plan((), budget_scale, quick):
        for seed in seeds:
            folder = run_folder(trials_dir, env_id, algo, seed)
            if (folder / "config.yaml").is_file():
                rows.append(evaluate_trial(folder, episodes))
                print(f"{algo} on {env_id}: {format_score(rows[-1]['trained'])}", flush=True)
    markdown = options.out_dir / "configs.md"
    write_keeping_findings(markdown, render_markdown(rows, episodes, options.command))
    return markdown
