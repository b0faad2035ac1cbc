"""Time-to-solve study: how long a user waits until the agent does the task, ours against SB3.

For each case (env × algorithm) and series (ours, SB3, ours with SB3's hyperparameters, and
ways to use the cores) every seed trains until a periodic deterministic evaluation first
reaches the env's solve threshold (``THRESHOLDS``), then stops. The time to solve is the
wall-clock from the start of the trial (agent and env workers made) to that evaluation, the
evaluations themselves left out: ``SolveTimer`` reads the time the ``CheckpointEvaluator``
spent evaluating and subtracts it, and that time is reported on its own. A run that never
solves is censored at its budget. The simulator's bound of a run is the wall-clock the same
vector env (same envs, same worker processes) takes to step as many env steps with random
actions; the report divides training time by it.

Statistics (``summarize_series``, ``compare_series``), with ``rlrobot.common.stats``: a
censored run counts as slower than every run that solved. The median is the ⌈n/2⌉-th smallest
time (the Kaplan–Meier median when no run is censored before the last solve), reported only
when at least half of the runs solved; its 95 % CI is a percentile bootstrap of that median,
whose upper end is open ("> budget") when too many resamples have no finite median.
P(ours solves sooner) compares random pairs of runs (two censored runs tie).

Trials run one at a time by default (``--workers 1``): each gets the whole machine.

    rlrobot bench --time-to-solve --out docs/benchmarks                  # every case
    rlrobot bench --time-to-solve --only Pendulum-v1:sac --out docs/benchmarks   # one case
    rlrobot bench --time-to-solve --quick                                # smoke run
    rlrobot bench --time-to-solve --report-only docs/benchmarks          # rewrite the page
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.report import (
    failed_trial_lines,
    format_number,
    markdown_table,
    write_keeping_findings,
)
from rlrobot.benchmark.runner import Execution, TrialStore, run_trials
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.trial import (
    EVAL_SEED_OFFSET,
    CheckpointEvaluator,
    TrialSpec,
    code_version,
    execute_trial,
    get_machine,
    get_versions,
    make_agent,
    register_env_id,
)
from rlrobot.common.stats import (
    bootstrap_ci,
    bootstrap_ci_two_sample,
    first_crossing,
    probability_of_improvement,
)
from rlrobot.errors import ConfigError

RESULTS_FILE = "time_to_solve.json"
PAGE_FILE = "time_to_solve.md"
METRICS = ("mean_return", "mean_length", "success_rate")
# A censored run's time in the statistics: finite (the stats functions refuse infinities)
# and above any real time, so it sorts after every run that solved.
CENSORED = 1e300
# Vector-env steps the simulator's bound times at most; longer runs are scaled from them.
BOUND_STEPS = 5000
EVAL_EPISODES = 10
OURS, SB3 = "rlrobot", "sb3"
# Per-run costs that mean the same for a censored run (the others are medians of solved runs).
ALL_RUNS_KEYS = ("eval_time_s", "setup_s")


@dataclass(frozen=True)
class SolveThreshold:
    """When an env counts as solved: the mean of ``metric`` over one evaluation ≥ ``value``.

    Attributes:
        metric: A key of the evaluation record: ``mean_return``, ``mean_length`` (steps an
            episode lasted) or ``success_rate``.
        value: The threshold.
        meaning: What it means, for the report.
    """

    metric: str
    value: float
    meaning: str


CARTPOLE = SolveThreshold("mean_length", 475, "475 of 500 steps balanced")
THRESHOLDS: dict[str, SolveThreshold] = {
    "rlrobot/CartPole-v0": CARTPOLE,
    "rlrobot/CartPoleContinuous-v0": CARTPOLE,
    "CartPole-v1": CARTPOLE,  # Gymnasium's reward_threshold
    "Acrobot-v1": SolveThreshold("mean_return", -100, "return ≥ −100 (Gymnasium's)"),
    "Pendulum-v1": SolveThreshold("mean_return", -200, "return ≥ −200"),
    "MountainCarContinuous-v0": SolveThreshold("mean_return", 90, "return ≥ 90 (Gymnasium's)"),
    "LunarLander-v3": SolveThreshold("mean_return", 200, "return ≥ 200 (Gymnasium's)"),
    "rlrobot/Reach-v0": SolveThreshold("success_rate", 0.95, "95 % success"),
    "rlrobot/Push-v0": SolveThreshold("success_rate", 0.9, "90 % success"),
    "rlrobot/Navigate-v0": SolveThreshold("success_rate", 0.9, "90 % success"),
    "rlrobot/Quadruped-v0": SolveThreshold("success_rate", 0.9, "90 % success"),
}


def solve_threshold(env_id: str) -> SolveThreshold:
    """Return the env's solve threshold; refuse an env without one."""
    if env_id not in THRESHOLDS:
        raise ConfigError(f"no solve threshold for env {env_id!r}; have {sorted(THRESHOLDS)}")
    return THRESHOLDS[env_id]


# -- the plan ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """One way to train a case: a library, its vector env and whose hyperparameters.

    Attributes:
        name: Shown in the report.
        framework: ``rlrobot`` or ``sb3``.
        vec_env: Ours: one of ``rlrobot.vec.VEC_ENV_CHOICES``; SB3's: ``dummy`` or ``subproc``.
        hyperparameters: ``ours`` (our tuned entry in ``rlrobot/configs``) or ``sb3``
            (SB3's tuned one: the RL Zoo's).
    """

    name: str
    framework: str
    vec_env: str
    hyperparameters: str


@dataclass(frozen=True)
class Case:
    """An env × algorithm of the study.

    Attributes:
        env_id: Gymnasium id (it needs a ``THRESHOLDS`` entry).
        algo: Our algorithm name (with an SB3 counterpart).
        eval_interval: Env steps between evaluations: the resolution of the time to solve.
        vec_envs: Ours and SB3's vector env for the main series: in-process for envs whose
            step costs less than a process round trip, worker processes for the robots.
        sb3_overrides: ``key=value`` settings that turn our tuned entry into SB3's tuned one
            (the RL Zoo's); empty where ours is the RL Zoo's (the two series of ours are then
            the same trials).
        extra_series: More series, e.g. other vector envs.
    """

    env_id: str
    algo: str
    eval_interval: int
    vec_envs: tuple[str, str] = ("sync", "dummy")
    sb3_overrides: tuple[str, ...] = ()
    extra_series: tuple[Series, ...] = ()

    @property
    def name(self) -> str:
        """The case's name for ``--only``, e.g. ``Pendulum-v1:sac``."""
        return f"{self.env_id}:{self.algo}"

    def series(self) -> tuple[Series, ...]:
        """Return its series: ours, SB3's, ours with SB3's hyperparameters, then the extra."""
        ours, theirs = self.vec_envs
        return (
            Series(OURS, OURS, ours, "ours"),
            Series(SB3, SB3, theirs, "sb3"),
            Series("rlrobot, SB3's hyperparameters", OURS, ours, "sb3"),
            *self.extra_series,
        )


# Where cores can help, the other choice of vector env of each library.
CORES_SERIES = (
    Series("sb3, SubprocVecEnv", SB3, "subproc", "sb3"),
    Series('rlrobot, vec_env="shm"', OURS, "shm", "ours"),
)
WORKERS = ("shm", "subproc")
CASES: tuple[Case, ...] = (
    Case("CartPole-v1", "ppo", 2560, extra_series=CORES_SERIES),
    Case("Pendulum-v1", "sac", 1000),
    Case("rlrobot/CartPole-v0", "ppo", 2560),
    Case("Acrobot-v1", "ppo", 5120),
    Case("rlrobot/Reach-v0", "sac", 1000),
    Case("rlrobot/Navigate-v0", "sac", 5000),
    Case("rlrobot/Quadruped-v0", "sac", 20_000),
    Case("rlrobot/Push-v0", "sac", 20_000),
)
PARTS = tuple(case.name for case in CASES)


@dataclass(frozen=True)
class SolveSpec:
    """One time-to-solve trial: a benchmark trial, how it uses the machine, and its threshold.

    Attributes:
        trial: The trial (env, algorithm, config, seed, budget, evaluation schedule).
        vec_env: The training envs' vector env (see ``Series.vec_env``).
        metric: The evaluation key compared with ``threshold``.
        threshold: Training stops at the first evaluation whose ``metric`` reaches it.
        torch_threads: torch's CPU threads.
        bound_steps: Vector-env steps the simulator's bound times at most.
    """

    trial: TrialSpec
    vec_env: str
    metric: str
    threshold: float
    torch_threads: int = 1
    bound_steps: int = BOUND_STEPS

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the trial's fields and this spec's, flat (as the reports read ``spec``)."""
        own = {name: value for name, value in asdict(self).items() if name != "trial"}
        return {**self.trial.to_dict(), **own}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SolveSpec:
        """Rebuild a spec from ``to_dict``'s output."""
        own = {name for name in cls.__dataclass_fields__ if name != "trial"}
        trial = TrialSpec.from_dict({k: v for k, v in values.items() if k not in own})
        return cls(trial, **{k: v for k, v in values.items() if k in own})

    @property
    def key(self) -> str:
        """Return the cache key: a hash of every field."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "tts-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Return a short name, e.g. ``ppo/sb3 CartPole-v1 seed 2 (subproc)``."""
        return f"{self.trial.label} ({self.vec_env})"


@dataclass(frozen=True)
class PlannedTrial:
    """A trial of the plan with the case and series it belongs to."""

    case: Case
    series: Series
    spec: SolveSpec


def build_plan(
    cases: Sequence[Case], seeds: Sequence[int], quick: bool = False, budget_scale: float = 1.0
) -> list[PlannedTrial]:
    """Return every case × seed × series, each seed's series back to back (same machine load).

    Budgets: the ``n_timesteps`` of our tuned entry, scaled; ``quick``: a few hundred steps.
    """
    from rlrobot.benchmark.bench import resolve_trial_config

    plan = []
    for case in cases:
        threshold = solve_threshold(case.env_id)
        configs = {
            "ours": resolve_trial_config(case.algo, case.env_id),
            "sb3": resolve_trial_config(case.algo, case.env_id, case.sb3_overrides),
        }
        budget = max(1, round(configs["ours"].steps * budget_scale))
        for seed in seeds:
            for series in case.series():
                resolved = configs[series.hyperparameters]
                trial = TrialSpec(
                    env_id=case.env_id,
                    algo=case.algo,
                    seed=seed,
                    steps=600 if quick else budget,
                    framework=series.framework,
                    config=resolved.config,
                    env_kwargs=resolved.env_kwargs,
                    n_envs=resolved.n_envs,
                    eval_interval=200 if quick else case.eval_interval,
                    eval_episodes=2 if quick else EVAL_EPISODES,
                )
                spec = SolveSpec(
                    trial, series.vec_env, threshold.metric, threshold.value,
                    bound_steps=100 if quick else BOUND_STEPS,
                )  # fmt: skip
                plan.append(PlannedTrial(case, series, spec))
    return plan


# -- one trial --------------------------------------------------------------------------------
class Solved(Exception):
    """Raised from an evaluation that reaches the threshold: it ends training there."""


def solve_checkpoint(curve: Sequence[dict[str, Any]], metric: str, threshold: float) -> int | None:
    """Return the index of the first checkpoint of ``curve`` whose ``metric`` reaches
    ``threshold`` (``first_crossing``'s tolerance), or None.

    Raises:
        ConfigError: A checkpoint has no ``metric`` (e.g. the env reports no success).
    """
    missing = [record["step"] for record in curve if metric not in record]
    if missing:
        raise ConfigError(f"the evaluations report no {metric!r} (checkpoint at {missing[0]})")
    crossing = first_crossing(range(len(curve)), [record[metric] for record in curve], threshold)
    return crossing.step


class SolveTimer:
    """The evaluator's ``on_checkpoint``: stamps each checkpoint with the training time so far
    and raises ``Solved`` at the first that reaches the threshold.

    Training time = ``clock()`` − ``start`` − the evaluator's evaluation time: the clock is
    stopped while evaluating.

    Args:
        evaluator: The evaluator whose checkpoints it stamps (set it as its ``on_checkpoint``).
        metric: The evaluation key compared with ``threshold``.
        threshold: The value that solves the env.
        start: ``clock()`` at the start of the trial.
        clock: Wall clock in seconds (the evaluator's).
    """

    def __init__(
        self,
        evaluator: CheckpointEvaluator,
        metric: str,
        threshold: float,
        start: float,
        clock: Callable[[], float],
    ) -> None:
        self.evaluator, self.metric, self.threshold = evaluator, metric, threshold
        self.start, self.clock = start, clock

    def training_time(self) -> float:
        """Seconds since ``start`` that were not spent evaluating."""
        return self.clock() - self.start - self.evaluator.eval_time

    def __call__(self, record: dict[str, Any]) -> None:
        """Stamp the new checkpoint; raise ``Solved`` if the curve now reaches the threshold."""
        record["train_time_s"] = self.training_time()
        if solve_checkpoint(self.evaluator.curve, self.metric, self.threshold) is not None:
            raise Solved


def train_until_solved(
    agent: Any,
    evaluator: CheckpointEvaluator,
    spec: SolveSpec,
    start: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Train ``agent`` until an evaluation solves the env or the budget ends; return the outcome.

    Evaluations run every ``eval_interval`` steps (none at step 0: it is no part of training)
    and once more on the final policy of a run that has not solved.

    Returns:
        ``solved``; ``time_to_solve_s`` (training time at the solving evaluation, or at the
        end of the budget for a censored run); ``solve_step`` (None: censored);
        ``trained_steps``; ``eval_time_s`` (all evaluations); ``setup_s`` (from ``start``
        to the first env step: making the agent, its env workers and the evaluation env);
        ``curve`` (the checkpoints, each with ``train_time_s``).
    """
    evaluator.on_checkpoint = SolveTimer(evaluator, spec.metric, spec.threshold, start, clock)
    evaluator.next_step = evaluator.interval
    setup = clock() - start
    try:
        agent.learn(spec.trial.steps, callback=evaluator)
        evaluator.finish(agent)
    except Solved:
        pass
    index = solve_checkpoint(evaluator.curve, spec.metric, spec.threshold)
    last = evaluator.curve[-1 if index is None else index]
    return {
        "solved": index is not None,
        "time_to_solve_s": last["train_time_s"],
        "solve_step": None if index is None else last["step"],
        "trained_steps": int(agent.num_timesteps),
        "eval_time_s": evaluator.eval_time,
        "setup_s": setup,
        "curve": evaluator.curve,
    }


def make_training_vec_env(spec: SolveSpec) -> Any:
    """Return a fresh vector env made as the trial's agent makes its own (same workers)."""
    trial = spec.trial
    env_id = register_env_id(trial.env_id)
    if trial.framework == SB3:
        from rlrobot.benchmark.sb3 import make_sb3_vec_env

        return make_sb3_vec_env(env_id, trial.env_kwargs, trial.n_envs, trial.seed, spec.vec_env)
    from rlrobot.vec import make_vec_env

    return make_vec_env(env_id, trial.n_envs, spec.vec_env, trial.seed, dict(trial.env_kwargs))


def simulator_seconds(
    env: Any, env_steps: int, max_vector_steps: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Return the seconds ``env`` (a vector env, ours or SB3's) needs for ``env_steps`` env
    steps with uniformly random actions, timed over at most ``max_vector_steps`` vector steps
    and scaled linearly. The actions are drawn before the clock starts.
    """
    n_envs = env.num_envs
    vector_steps = max(1, math.ceil(env_steps / n_envs))
    timed = min(vector_steps, max_vector_steps)
    space = env.action_space
    space.seed(0)
    if hasattr(env, "step_async"):  # SB3's VecEnv: its action space is one env's
        actions = [np.stack([space.sample() for _ in range(n_envs)]) for _ in range(timed)]
    else:
        actions = [space.sample() for _ in range(timed)]
    env.reset()
    begin = clock()
    for action in actions:
        env.step(action)
    return (clock() - begin) * vector_steps / timed


def warm_up(trial: TrialSpec) -> None:
    """Make the trial's agent once on in-process envs and close it, before the clock starts.

    A fresh process pays one-time costs at its first agent (imports, torch loading its linear
    algebra library at the first orthogonal initialisation: seconds on a loaded machine),
    which a worker that has already run a trial of the same library would not pay.
    """
    agent = make_agent(trial)
    agent.env.close()


def run_solve_trial(
    spec: SolveSpec, clock: Callable[[], float] = time.perf_counter
) -> dict[str, Any]:
    """Run one time-to-solve trial in this process, then time the simulator's bound of it.

    Returns:
        ``key``, ``spec``, ``status="ok"``, the outcome of ``train_until_solved``,
        ``bound_s`` (the simulator's seconds for the run's steps: to the solve, or the
        whole budget), ``train_over_bound``, the fields ``run_trials`` logs
        (``final_return``, ``steps_per_second``, ``wall_time_s``), ``torch_threads``,
        ``versions``, ``code_version`` and ``machine``.
    """
    import gymnasium as gym
    import torch

    torch.set_num_threads(spec.torch_threads)
    trial = spec.trial
    warm_up(trial)
    start = clock()
    agent = make_agent(trial, spec.vec_env, spec.torch_threads)
    try:
        eval_env = gym.make(register_env_id(trial.env_id), **trial.env_kwargs)
        try:
            evaluator = CheckpointEvaluator(
                eval_env,
                trial.eval_interval,
                trial.eval_episodes,
                trial.seed + EVAL_SEED_OFFSET,
                clock=clock,
            )
            outcome = train_until_solved(agent, evaluator, spec, start, clock)
        finally:
            eval_env.close()
    finally:
        if agent.env is not None:
            agent.env.close()
    wall = clock() - start
    steps = outcome["solve_step"] or outcome["trained_steps"]
    bound_env = make_training_vec_env(spec)
    try:
        bound = simulator_seconds(bound_env, steps, spec.bound_steps, clock)
    finally:
        bound_env.close()
    return {
        "key": spec.key,
        "spec": spec.to_dict(),
        "status": "ok",
        **outcome,
        "bound_s": bound,
        "train_over_bound": outcome["time_to_solve_s"] / bound,
        "final_return": outcome["curve"][-1]["mean_return"],
        "steps_per_second": outcome["trained_steps"] / outcome["time_to_solve_s"],
        "wall_time_s": wall,
        "torch_threads": torch.get_num_threads(),
        "versions": get_versions(),
        "code_version": code_version(),
        "machine": get_machine(),
    }


def execute_solve_trial(
    spec_dict: dict[str, Any], expected_code_version: str | None = None
) -> dict[str, Any]:
    """``run_trials``'s worker entry: ``run_solve_trial`` of a ``SolveSpec`` dict, never raising."""
    return execute_trial(spec_dict, expected_code_version, SolveSpec, run_solve_trial)


# -- statistics -------------------------------------------------------------------------------
def censored_scores(runs: Sequence[dict[str, Any]]) -> np.ndarray:
    """Return the runs' times to solve, ``CENSORED`` for a run that never solved."""
    return np.array([r["time_to_solve_s"] if r["solved"] else CENSORED for r in runs])


def censored_median(times: np.ndarray) -> float:
    """Return the ⌈n/2⌉-th smallest of ``times`` (``CENSORED`` when half or more are)."""
    # np.quantile(times, 0.5, method="inverted_cdf"), ten times faster: the bootstrap calls it
    # for every resample.
    return float(np.partition(times, (len(times) - 1) // 2)[(len(times) - 1) // 2])


def _finite(value: float, largest: float) -> float | None:
    """``value``, or None where a censored run reaches it (anything above every real time)."""
    return None if value > largest else float(value)


def summarize_series(runs: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Return one series' statistics over its seeds (see the module docstring).

    Returns:
        ``n``, ``n_solved``, ``median_s`` (None: fewer than half solved), ``ci_s`` (low,
        high; None where open or undefined), the medians of ``eval_time_s`` and ``setup_s``
        over all runs, and those of ``solve_step``, ``ms_per_step`` (time to solve ÷ steps
        to solve, in ms), ``bound_s`` and ``train_over_bound`` over the runs that solved (None
        when none did).
    """
    times = censored_scores(runs)
    solved = [r for r in runs if r["solved"]]
    largest = max((r["time_to_solve_s"] for r in solved), default=0.0)
    summary: dict[str, Any] = {
        "n": len(runs),
        "n_solved": len(solved),
        "median_s": _finite(censored_median(times), largest),
        "ci_s": [None, None],
    }
    if solved:
        low, high = bootstrap_ci(times, censored_median, seed=seed)
        summary["ci_s"] = [_finite(low, largest), _finite(high, largest)]
    for key in ("solve_step", "eval_time_s", "setup_s", "bound_s", "train_over_bound"):
        values = [r[key] for r in (runs if key in ALL_RUNS_KEYS else solved)]
        summary[key] = float(np.median(values)) if values else None
    # Speed apart from sample efficiency: training time per env step of the solving runs.
    per_step = [r["time_to_solve_s"] / r["solve_step"] * 1e3 for r in solved]
    summary["ms_per_step"] = float(np.median(per_step)) if per_step else None
    return summary


def compare_series(
    ours: Sequence[dict[str, Any]], theirs: Sequence[dict[str, Any]], seed: int = 0
) -> dict[str, Any]:
    """Return ours against a baseline: the ratio of median times and P(ours solves sooner).

    Returns:
        ``time_ratio`` (ours ÷ theirs, None unless both medians exist),
        ``p_sooner`` (a censored run is slower than any solved one; two censored runs tie)
        and ``p_sooner_ci`` (its bootstrap CI, both sides' seeds resampled independently).
    """
    first, second = -censored_scores(ours), -censored_scores(theirs)
    medians = [censored_median(-scores) for scores in (first, second)]
    return {
        "time_ratio": None if CENSORED in medians else medians[0] / medians[1],
        "p_sooner": probability_of_improvement(first, second),
        "p_sooner_ci": list(
            bootstrap_ci_two_sample(first, second, "probability_of_improvement", seed=seed)
        ),
    }


# -- report -----------------------------------------------------------------------------------
def per_seed_record(planned: PlannedTrial, result: dict[str, Any]) -> dict[str, Any]:
    """Return what the JSON keeps of one trial (enough to recompute every table)."""
    spec = planned.spec
    keys = ("solved", "time_to_solve_s", "solve_step", "trained_steps", "eval_time_s",
            "setup_s", "bound_s", "train_over_bound", "wall_time_s")  # fmt: skip
    return {
        "series": planned.series.name,
        "seed": spec.trial.seed,
        "key": spec.key,
        "vec_env": spec.vec_env,
        "n_envs": spec.trial.n_envs,
        "budget": spec.trial.steps,
        "load_average": result["machine"]["load_average"],
        **{key: result[key] for key in keys},
    }


def case_results(plan: Sequence[PlannedTrial], results: Sequence[dict[str, Any]]) -> dict:
    """Return each case's entry of the JSON: settings, per-seed records and statistics."""
    by_key = {r["key"]: r for r in results if r.get("status") == "ok"}
    entries: dict[str, Any] = {}
    for planned in plan:
        case, series = planned.case, planned.series
        threshold = solve_threshold(case.env_id)
        entry = entries.setdefault(
            case.name,
            {
                "env_id": case.env_id,
                "algo": case.algo,
                "threshold": asdict(threshold),
                "eval_interval": planned.spec.trial.eval_interval,
                "eval_episodes": planned.spec.trial.eval_episodes,
                "budget": planned.spec.trial.steps,
                "series": {},
                "same_as": {},
                "runs": [],
            },
        )
        entry["series"][series.name] = {
            "framework": series.framework,
            "vec_env": series.vec_env,
            "hyperparameters": series.hyperparameters,
            "n_envs": planned.spec.trial.n_envs,
        }
        result = by_key.get(planned.spec.key)
        if result is not None:
            entry["runs"].append(per_seed_record(planned, result))
    for name, entry in entries.items():
        entry["same_as"] = same_trials(plan, name)
        summarize_case(entry)
    return entries


def summarize_case(entry: dict[str, Any]) -> None:
    """Set a case entry's ``summaries`` (per series) and ``comparisons`` (ours against SB3)
    from its per-seed ``runs``."""
    runs = {s: [r for r in entry["runs"] if r["series"] == s] for s in entry["series"]}
    entry["summaries"] = {s: summarize_series(r) for s, r in runs.items() if r}
    entry["comparisons"] = {
        s: compare_series(r, runs[SB3])
        for s, r in runs.items()
        if r and runs.get(SB3) and entry["series"][s]["framework"] == OURS
    }


def same_trials(plan: Sequence[PlannedTrial], case_name: str) -> dict[str, str]:
    """Return the series of a case whose trials are an earlier series' (same specs)."""
    first: dict[tuple[str, ...], str] = {}
    same = {}
    for name in dict.fromkeys(p.series.name for p in plan if p.case.name == case_name):
        keys = tuple(p.spec.key for p in plan if p.case.name == case_name and p.series.name == name)
        if keys in first:
            same[name] = first[keys]
        else:
            first[keys] = name
    return same


def _seconds(value: float | None) -> str:
    return "—" if value is None else format_number(value)


def _interval(summary: dict[str, Any]) -> str:
    """``median [low, high]`` of a series' time to solve, with open or missing ends said."""
    if summary["median_s"] is None:
        return f"not solved by half ({summary['n_solved']}/{summary['n']})"
    low, high = summary["ci_s"]
    return (
        f"{_seconds(summary['median_s'])} [{_seconds(low)}, "
        f"{'> budget' if high is None else _seconds(high)}]"
    )


SERIES_COLUMNS = (
    "series", "vector env × envs", "solved", "time to solve, s: median [95% CI]",
    "steps to solve", "ms per step", "eval time, s (excluded)", "setup, s (included)",
    "simulator bound, s", "training ÷ bound",
)  # fmt: skip


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{format_number(value)}×"


def load_range(runs: Sequence[dict[str, Any]]) -> str:
    """The range of the 1-minute load averages the runs ended with, e.g. ``"7.9–15.2"``."""
    loads = [r["load_average"][0] for r in runs if r.get("load_average")]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "unknown"


def case_section(entry: dict[str, Any]) -> list[str]:
    """Return the Markdown of one case: the series table and ours against SB3."""
    threshold = entry["threshold"]
    rows = []
    for name, summary in entry["summaries"].items():
        series = entry["series"][name]
        same = entry["same_as"].get(name)
        rows.append(
            [
                name + (f" (= {same}: the same trials)" if same else ""),
                f"`{series['vec_env']}` × {series['n_envs']}",
                f"{summary['n_solved']}/{summary['n']}",
                _interval(summary),
                format_number(summary["solve_step"]),
                format_number(summary["ms_per_step"]),
                _seconds(summary["eval_time_s"]),
                _seconds(summary["setup_s"]),
                _seconds(summary["bound_s"]),
                format_number(summary["train_over_bound"]),
            ]
        )
    summaries = entry["summaries"]
    comparisons = [
        [
            name,
            _ratio(values["time_ratio"]),
            f"{values['p_sooner']:.2f} [{values['p_sooner_ci'][0]:.2f}, "
            f"{values['p_sooner_ci'][1]:.2f}]",
            _ratio(
                None
                if None in (summaries[name]["ms_per_step"], summaries[SB3]["ms_per_step"])
                else summaries[name]["ms_per_step"] / summaries[SB3]["ms_per_step"]
            ),
        ]
        for name, values in entry["comparisons"].items()
    ]
    lines = [
        f"### {entry['env_id']}, {entry['algo'].upper()}",
        "",
        f"Solved: {threshold['meaning']} (`{threshold['metric']}` ≥ {threshold['value']:g}) "
        f"over {entry['eval_episodes']} deterministic episodes, evaluated every "
        f"{entry['eval_interval']:,} env steps; budget {entry['budget']:,} env steps. "
        f"Run by `{entry.get('command', '?')}`; load average (1 min) at the end of its trials "
        f"{load_range(entry['runs'])}.",
        "",
        *markdown_table(SERIES_COLUMNS, rows),
        "",
    ]
    if comparisons:
        lines += [
            *markdown_table(
                [
                    "ours",
                    "time to solve ÷ SB3's (medians)",
                    "P(ours solves sooner) [95% CI]",
                    "ms per step ÷ SB3's (medians)",
                ],
                comparisons,
            ),
            "",
        ]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of ``time_to_solve.md`` from the saved JSON."""
    cases = results["cases"]
    done = [case for case in CASES if case.name in cases]
    missing = [case.name for case in CASES if case.name not in cases]
    lines = [
        "# Time to solve: ours against Stable-Baselines3, and against the simulator",
        "",
        f"Written by `rlrobot bench --study time_to_solve` (`--time-to-solve`); last run "
        f"`{results['command']}` on {results['machine']['cpu_count']} CPU cores shared with "
        "other jobs (each case says its command and the machine's load). Every number, per "
        f"seed, is in `{RESULTS_FILE}`.",
        "",
        "## What is measured",
        "",
        "- **Time to solve**: wall-clock from the start of the trial (agent, env workers and "
        "evaluation env made: *setup*, included) until a periodic deterministic evaluation "
        "first reaches the env's threshold; training stops there. The evaluations are left "
        "out (the clock stops while evaluating) and reported on their own. Resolution: the "
        "evaluation interval, the same in env steps for every series. Before the clock "
        "starts, each trial makes and closes one throwaway agent on in-process envs, so that "
        "one-time costs of a fresh process (imports, torch's first linear-algebra call) are "
        "not counted against whichever library a worker runs first.",
        "- **Censoring**: a run that has not solved by its budget (its final policy evaluated "
        "too) is censored there and counts as slower than every run that solved. The median "
        "is the ⌈n/2⌉-th smallest time (the Kaplan–Meier median when no run is censored "
        "before the last solve) and is given only when at least half solved; its 95 % CI is "
        "a percentile bootstrap of that median (10,000 resamples), its upper end *> budget* "
        "when more than 2.5 % of resamples have no finite median. The steps, ms per step "
        "(time to solve ÷ steps to solve: speed apart from sample efficiency), bound and "
        "ratio columns are medians over the runs that solved, eval time and setup over all "
        "runs.",
        "- **P(ours solves sooner)**: for a random run of ours and one of SB3's, the chance "
        "that ours solves first (a censored run loses to any solved one; two censored runs "
        "tie), with a bootstrap CI over both sides' seeds.",
        "- **Simulator bound**: the wall-clock the same vector env (same envs, same worker "
        "processes, made afresh after training) takes for the run's env steps (to the solve, "
        f"or the budget) with random actions, timed over at most {BOUND_STEPS:,} vector "
        "steps and scaled. *training ÷ bound* = time to solve ÷ bound: 1 would be an agent "
        "that costs nothing beside the env.",
        "- **Series**: *rlrobot* and *sb3* each run their library's tuned entry (ours: "
        "`rlrobot/configs/<algo>.yaml`; SB3's: the RL Zoo's) with their vector env; "
        "*rlrobot, SB3's hyperparameters* runs ours with SB3's entry, which separates speed "
        "from sample efficiency (where our entry is the RL Zoo's the two are the same "
        "trials). Each trial has the whole machine: trials run one at a time, one torch "
        "thread each (the networks are small; more threads only contend with the env "
        "workers). Cheap classic-control envs step in-process for both (SB3's docs: "
        "`DummyVecEnv` is usually faster than `SubprocVecEnv` when a step costs less than "
        "the inter-process round trip); where the cores may help, the worker-process series "
        '(SB3\'s `SubprocVecEnv`, our `vec_env="shm"`) are measured too.',
        "- Goals (issue #21): time to solve ≤ 0.5× SB3's where both solve; ours solves "
        "wherever SB3 does; training ≤ 1.5× the simulator's bound on the PyBullet robots.",
        "",
        "## Results",
        "",
    ]
    for case in done:
        lines += case_section(cases[case.name])
    lines += [
        "## Not run yet",
        "",
        "Cases of the plan without results here: "
        + (", ".join(f"`{name}`" for name in missing) if missing else "none")
        + ". Thresholds without a case (no tuned config, or the env's package is missing): "
        + ", ".join(
            f"`{env_id}` ({threshold.meaning})"
            for env_id, threshold in THRESHOLDS.items()
            if env_id not in {case.env_id for case in CASES}
        )
        + ". Delayed-reward variants are not planned yet.",
        "",
    ]
    if missing:
        lines += [
            "To run them (hours on 2 cores; results merge into the JSON):",
            "",
            "    rlrobot bench --time-to-solve --seeds 5 --workers 1 --out docs/benchmarks "
            f"--only {' '.join(missing)}",
            "",
        ]
    lines += ["## Failed trials", "", *results.get("failed", ["None."]), ""]
    return "\n".join(lines)


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/time_to_solve.md`` from the per-seed runs in ``time_to_solve.json``
    (its statistics recomputed and saved too)."""
    path = out_dir / RESULTS_FILE
    results = json.loads(path.read_text())
    for entry in results["cases"].values():
        summarize_case(entry)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return write_keeping_findings(out_dir / PAGE_FILE, render_markdown(results))


def main(options: StudyOptions) -> Path:
    """Run the chosen cases' trials not yet cached, merge them into the JSON, write the page."""
    chosen = [case for case in CASES if not options.only or case.name in options.only]
    if options.quick:
        chosen = chosen[:1]
    plan = build_plan(chosen, options.seeds, options.quick, options.budget_scale)
    execution = options.execution or Execution()
    if execution.workers is None:  # each trial gets the whole machine
        execution = replace(execution, workers=1)
    labels: dict[str, str] = {}
    for planned in plan:  # a series that shares another's trials keeps the first name
        labels.setdefault(planned.spec.key, f"{planned.series.name}: {planned.spec.label}")
    specs = list({p.spec.key: p.spec for p in plan}.values())
    results = run_trials(
        specs, TrialStore(options.trials_dir), execution, labels=labels,
        function=execute_solve_trial,
    )  # fmt: skip
    path = options.out_dir / RESULTS_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved_cases = saved.get("cases", {})
    for name, entry in case_results(plan, results).items():
        saved_cases[name] = {**entry, "command": options.command}
    merged = {
        "command": options.command,
        "machine": {"cpu_count": os.cpu_count()},
        "cases": saved_cases,
        "failed": [line for line in failed_trial_lines(results) if line != "None."] or ["None."],
    }
    options.out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return rewrite_report(options.out_dir)
