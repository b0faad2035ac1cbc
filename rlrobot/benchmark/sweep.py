"""``rlrobot sweep``: hyperparameter search on Optuna, each trial several seeds of a bench trial.

An Optuna trial is one config: its parameters come from the sampler (``tpe``, seeded, by
default; ``random``; ``grid`` over lists), and it trains one bench trial (``TrialSpec``) per
seed. Its value is the mean final evaluation return across seeds.

Pruning, and where trials run. A pruner must see a trial's evaluations while it trains, so an
Optuna trial runs in one process: its seeds one after the other, each through ``run_trial``
(the bench's code: same results as ``rlrobot bench``), with a hook on every periodic
evaluation. The hook reports the running estimate of the trial's value, the mean of the
finished seeds' final returns and the current seed's latest return, at step
``seed_index * (steps // eval_interval + 1) + step // eval_interval``, so that every trial
reports at the same steps whatever its rollout size; the median or successive-halving pruner
compares trials there, and a pruned trial stops training at once. Parallelism is across Optuna
trials: ``n_jobs`` processes (the local pool, or Ray tasks on a cluster) each run
``study.optimize`` on one shared storage. Their seeds' results are also stored as bench trials
(``OUT/trials/<key>.json``; a config met again reuses them) and as run folders
(``OUT/runs/trial_NNNN/seed_S/``: ``config.yaml`` and ``evaluations.csv``) for ``rlrobot plot``.

Storage: ``sqlite:///OUT/study.db`` unless ``--storage`` names another database URL; the study
is loaded if it exists, so a rerun continues it (its trial count goes on) and several
processes or machines can work on one study (a database they all reach: a sqlite file works on
one machine or a shared disk, PostgreSQL or MySQL across machines). Trials of a process that
died are marked failed by Optuna's heartbeat and tried again.

Parameter syntax (``--param``):
- ``learning_rate=[1e-4, 3e-4, 1e-3]``: a list of values (YAML), a categorical parameter;
- ``learning_rate=loguniform(1e-5, 1e-2)``, ``clip_range=uniform(0.1, 0.3)``,
  ``n_epochs=randint(3, 20)`` (both ends included): distributions (not for the grid sampler).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.runner import (
    ClusterError,
    Execution,
    Log,
    TrialStore,
    run_calls,
    with_partial_report,
)
from rlrobot.benchmark.trial import TrialSpec, run_trial
from rlrobot.common.stats import bootstrap_ci, interquartile_mean
from rlrobot.errors import ConfigError

# YAML 1.1 reads exponent notation without a dot ("1e-4") as a string.
EXPONENT_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
DISTRIBUTION = re.compile(r"^(loguniform|uniform|randint)\(\s*([^,]+?)\s*,\s*([^,]+?)\s*\)$")
SWEEP_FILE = "sweep.json"
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "halving")
# Trials the TPE sampler and the median pruner leave alone before they act (the RL Zoo's).
STARTUP_TRIALS = 5
# Seconds between a trial's heartbeats, and without one before it counts as dead.
HEARTBEAT_S = 60
GRACE_S = 180
# What ``rlrobot train --optimize-hyperparameters`` searches when no --param is given.
COMMON_SPACE = ("learning_rate=loguniform(1e-5, 1e-2)", "gamma=[0.95, 0.98, 0.99, 0.995, 0.999]")
DEFAULT_SPACES = {
    "ppo": (
        *COMMON_SPACE,
        "gae_lambda=uniform(0.8, 1.0)",
        "ent_coef=loguniform(1e-8, 0.1)",
        "n_epochs=randint(3, 20)",
        "clip_range=[0.1, 0.2, 0.3]",
    ),
    "a2c": (*COMMON_SPACE, "gae_lambda=uniform(0.8, 1.0)", "ent_coef=loguniform(1e-8, 0.1)"),
    "reinforce": (*COMMON_SPACE, "ent_coef=loguniform(1e-8, 0.1)"),
    "sac": (*COMMON_SPACE, "tau=[0.005, 0.01, 0.02]", "batch_size=[64, 128, 256, 512]"),
    "td3": (*COMMON_SPACE, "tau=[0.005, 0.01, 0.02]", "batch_size=[64, 128, 256, 512]"),
}


@dataclass(frozen=True)
class Parameter:
    """One swept config key: a list of ``choices`` or a distribution over ``[low, high]``."""

    key: str
    choices: tuple[Any, ...] = ()
    distribution: str | None = None
    low: float = 0.0
    high: float = 0.0

    def suggest(self, trial: Any) -> Any:
        """Return the value the Optuna ``trial`` suggests for this key."""
        if self.distribution == "loguniform":
            return trial.suggest_float(self.key, self.low, self.high, log=True)
        if self.distribution == "uniform":
            return trial.suggest_float(self.key, self.low, self.high)
        if self.distribution == "randint":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return decode_choice(trial.suggest_categorical(self.key, self.optuna_choices))

    @property
    def optuna_choices(self) -> list[Any]:
        """Return the choices as Optuna stores them (lists and dicts as JSON text)."""
        return [encode_choice(choice) for choice in self.choices]


def encode_choice(value: Any) -> Any:
    """Return a categorical value as Optuna can store it: a scalar, or JSON text for the rest."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value)


def decode_choice(value: Any) -> Any:
    """Undo ``encode_choice`` (a JSON list or dict back to the object)."""
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def parse_parameter(text: str) -> Parameter:
    """Parse ``key=[v1, v2]``, ``key=value`` or ``key=loguniform(a, b)`` (see module docstring).

    Raises:
        ConfigError: Malformed text, an empty list or a bad range.
    """
    import yaml

    from rlrobot.common.yaml_loading import load_yaml

    key, separator, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not separator or not key or not raw:
        raise ConfigError(f"--param expects key=[values] or key=distribution(a, b), got {text!r}")
    match = DISTRIBUTION.match(raw)
    if match:
        name, low, high = match.group(1), float(match.group(2)), float(match.group(3))
        if not low < high or (name == "loguniform" and low <= 0):
            raise ConfigError(f"--param {key}: need 0 < low < high for {name}, got {raw}")
        return Parameter(key, distribution=name, low=low, high=high)
    try:
        value = load_yaml(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--param {key}: {raw!r} is not a valid YAML value") from None
    choices = tuple(
        float(choice) if isinstance(choice, str) and EXPONENT_NUMBER.match(choice) else choice
        for choice in (value if isinstance(value, list) else [value])
    )
    if not choices:
        raise ConfigError(f"--param {key}: the list of values is empty")
    return Parameter(key, choices=choices)


def default_parameters(algo: str) -> list[str]:
    """Return the ``--param`` texts ``train --optimize-hyperparameters`` searches for ``algo``."""
    return list(DEFAULT_SPACES.get(algo, COMMON_SPACE))


@dataclass(frozen=True)
class SweepPlan:
    """What every worker of a sweep needs (plain data: it travels to processes and Ray tasks).

    Attributes:
        env_id: Env id.
        algo: Algorithm name.
        parameters: The swept keys.
        base_config: The resolved config the parameters are put over.
        seeds: Seeds of every Optuna trial.
        steps: Env steps per seed.
        n_envs: Envs per seed.
        env_kwargs: ``gym.make`` keywords.
        eval_interval: Env steps between evaluations (the pruner's checkpoints).
        eval_episodes: Episodes per evaluation.
        out: The sweep's folder.
        storage: Optuna storage URL.
        study_name: Optuna study name.
        sampler: One of ``SAMPLERS``.
        pruner: One of ``PRUNERS``.
        sampler_seed: Seed of the sampler.
        retries: Extra attempts of a seed that fails.
        fixed: The env's entry of the tuned configs as every trial uses it (``fixed_entry``),
            under the best parameters in the report's YAML.
    """

    env_id: str
    algo: str
    parameters: tuple[Parameter, ...]
    base_config: dict[str, Any]
    seeds: tuple[int, ...]
    steps: int
    n_envs: int
    env_kwargs: dict[str, Any]
    eval_interval: int
    eval_episodes: int
    out: str
    storage: str
    study_name: str
    sampler: str = "tpe"
    pruner: str = "median"
    sampler_seed: int = 0
    retries: int = 1
    fixed: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"pruner must be one of {PRUNERS}, got {self.pruner!r}")
        continuous = [p.key for p in self.parameters if p.distribution is not None]
        if self.sampler == "grid" and continuous:
            raise ConfigError(
                f"the grid sampler needs lists of values, not distributions: {continuous}"
            )

    @property
    def checkpoints_per_seed(self) -> int:
        """Return the pruner's steps per seed (one per evaluation interval, and step 0)."""
        return self.steps // self.eval_interval + 1

    @property
    def grid_size(self) -> int:
        """Return the number of combinations of the parameters' lists."""
        return math.prod(len(p.choices) for p in self.parameters)

    def identity(self) -> dict[str, Any]:
        """Return what trials of one study must share (checked when a study is continued)."""
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "base_config": self.base_config,
            "seeds": list(self.seeds),
            "steps": self.steps,
            "n_envs": self.n_envs,
            "env_kwargs": self.env_kwargs,
            "eval_interval": self.eval_interval,
            "eval_episodes": self.eval_episodes,
        }

    def spec(self, params: dict[str, Any], seed: int) -> TrialSpec:
        """Return the bench trial of one seed of a config (the config validated)."""
        from rlrobot.agents import ALGORITHMS

        config = ALGORITHMS[self.algo].config_class.from_dict({**self.base_config, **params})
        return TrialSpec(
            env_id=self.env_id,
            algo=self.algo,
            seed=seed,
            steps=self.steps,
            config=config.to_dict(),
            env_kwargs=self.env_kwargs,
            n_envs=self.n_envs,
            eval_interval=self.eval_interval,
            eval_episodes=self.eval_episodes,
        )


def make_sampler(plan: SweepPlan, seed: int) -> Any:
    """Return the plan's Optuna sampler, seeded with ``seed``."""
    import optuna

    if plan.sampler == "grid":
        space = {p.key: p.optuna_choices for p in plan.parameters}
        return optuna.samplers.GridSampler(space, seed=seed)
    if plan.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(n_startup_trials=STARTUP_TRIALS, seed=seed)


def make_pruner(plan: SweepPlan) -> Any:
    """Return the plan's Optuna pruner (median: after a third of the first seed's checkpoints)."""
    import optuna

    if plan.pruner == "median":
        warmup = plan.checkpoints_per_seed // 3
        return optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=warmup)
    if plan.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def default_storage(out: str | Path) -> str:
    """Return the sweep's default storage: ``sqlite:///OUT/study.db``."""
    return f"sqlite:///{(Path(out).resolve() / 'study.db').as_posix()}"


def open_study(plan: SweepPlan, sampler_seed: int | None = None) -> Any:
    """Create the plan's study in its storage, or load it (refusing one of another sweep).

    Raises:
        ConfigError: The study exists with other env, algo, budget, seeds or base config.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine_kwargs = {"connect_args": {"timeout": 60}} if plan.storage.startswith("sqlite") else {}
    with warnings.catch_warnings():  # Optuna marks the heartbeat experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            plan.storage,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                plan.retries
            ),
        )
    study = optuna.create_study(
        storage=storage,
        study_name=plan.study_name,
        direction="maximize",
        load_if_exists=True,
        sampler=make_sampler(plan, plan.sampler_seed if sampler_seed is None else sampler_seed),
        pruner=make_pruner(plan),
    )
    # JSON round trip: the stored attribute comes back with lists where the plan has tuples.
    identity = json.loads(json.dumps(plan.identity()))
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", identity)
    elif stored != identity:
        differing = sorted(key for key in identity if stored.get(key) != identity[key])
        raise ConfigError(
            f"study {plan.study_name!r} in {plan.storage} is another sweep (its {differing} "
            "differ): give another --study-name or --storage"
        )
    return study


class SeedReporter:
    """The evaluation hook of one seed: reports the trial's running value and may prune it.

    Args:
        trial: The Optuna trial.
        plan: The sweep.
        seed_index: Position of the seed in ``plan.seeds``.
        finished: Final returns of the trial's earlier seeds.
        folder: Run folder that receives ``evaluations.csv`` (for ``rlrobot plot``).
    """

    def __init__(
        self, trial: Any, plan: SweepPlan, seed_index: int, finished: list[float], folder: Any
    ) -> None:
        self.trial, self.plan, self.seed_index = trial, plan, seed_index
        self.finished, self.folder = finished, folder
        self.reported: set[int] = set()

    def __call__(self, record: dict[str, Any]) -> None:
        """Log the checkpoint; report it (not step 0: an untrained policy); prune if told."""
        import optuna

        self.folder.append_evaluation(
            {
                "step": record["step"],
                "mean_reward": record["mean_return"],
                "std_reward": record["std_return"],
                "mean_ep_length": record["mean_length"],
                "success_rate": record.get("success_rate"),
            }
        )
        if record["step"] == 0:
            return
        step = self.seed_index * self.plan.checkpoints_per_seed + min(
            record["step"] // self.plan.eval_interval, self.plan.checkpoints_per_seed - 1
        )
        if step in self.reported:  # the final evaluation, in an interval already reported
            return
        self.reported.add(step)
        value = (sum(self.finished) + record["mean_return"]) / (len(self.finished) + 1)
        self.trial.report(value, step)
        if self.trial.should_prune():
            where = f"step {record['step']} of seed {self.plan.seeds[self.seed_index]}"
            self.trial.set_user_attr("pruned_at", where)
            raise optuna.TrialPruned(f"pruned at {where}")


def make_run_folder(plan: SweepPlan, spec: TrialSpec, number: int) -> Any:
    """Create ``OUT/runs/trial_NNNN/seed_S`` with the seed's ``config.yaml``; return it."""
    from rlrobot.run.config import validate_layers
    from rlrobot.run.folder import RunFolder

    folder = RunFolder(Path(plan.out) / "runs" / f"trial_{number:04d}" / f"seed_{spec.seed}")
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.evaluations_path.unlink(missing_ok=True)  # a trial number met again restarts
    values = {
        **spec.config,
        "n_envs": spec.n_envs,
        "n_timesteps": spec.steps,
        "env_kwargs": spec.env_kwargs,
    }
    resolved = validate_layers(
        spec.algo, spec.env_id, spec.seed, [(f"sweep trial {number}", values)]
    )
    folder.config_path.write_text(resolved.to_yaml())
    return folder


def run_seeds(trial: Any, plan: SweepPlan, log: Log = print) -> float:
    """The objective: train the trial's config on every seed; return the mean final return.

    A seed already stored (``OUT/trials/``) is replayed through the pruner, not trained.

    Raises:
        optuna.TrialPruned: The pruner stopped the trial.
        ConfigError: The suggested config is invalid (the trial fails).
    """
    import optuna

    from rlrobot.benchmark.trial import failure_result

    params = {p.key: p.suggest(trial) for p in plan.parameters}
    store = TrialStore(plan.out)
    finals: list[float] = []
    keys: list[str] = []
    speeds: list[float] = []
    name = f"trial {trial.number} [{describe_candidate(params)}]"
    for seed_index, seed in enumerate(plan.seeds):
        spec = plan.spec(params, seed)
        keys.append(spec.key)
        trial.set_user_attr("keys", keys)
        reporter = SeedReporter(
            trial, plan, seed_index, finals, make_run_folder(plan, spec, trial.number)
        )
        result = store.load(spec.key)
        if result is not None and result.get("status") == "ok":
            for record in result["curve"]:
                reporter(record)
        else:
            for attempt in range(plan.retries + 1):
                try:
                    result = run_trial(spec, on_checkpoint=reporter)
                    break
                except optuna.TrialPruned as pruned:
                    log(f"pruned {name}: {pruned}")
                    raise
                except Exception as error:
                    result = failure_result(spec, error)
                    last_line = result["error"].strip().splitlines()[-1]
                    log(f"FAILED {name} seed {seed} (attempt {attempt + 1}): {last_line}")
                    reporter = SeedReporter(
                        trial, plan, seed_index, finals, make_run_folder(plan, spec, trial.number)
                    )
            store.save(result)
            if result["status"] != "ok":
                trial.set_user_attr("error", result["error"].strip().splitlines()[-1])
                raise RuntimeError(f"{name} seed {seed} failed: {trial.user_attrs['error']}")
        finals.append(result["final_return"])
        speeds.append(result["steps_per_second"])
        trial.set_user_attr("finals", finals)
        trial.set_user_attr("steps_per_second", float(np.mean(speeds)))
    value = float(np.mean(finals))
    log(f"done   {name}: mean final return {value:.4g} over {len(finals)} seed(s)")
    return value


def worker_seed(sampler_seed: int, job_index: int, n_trials_before: int) -> int:
    """Return the sampler seed of sweep job ``job_index`` joining a study of ``n_trials_before``.

    Job 0 takes ``sampler_seed + n_trials_before`` (a continued one-job sweep draws new
    configs). Other jobs take a seed from the triple: ``sampler_seed + job + trials`` could
    give two jobs that start a moment apart the same seed, hence the same configs.
    """
    if job_index == 0:
        return sampler_seed + n_trials_before
    sequence = np.random.SeedSequence([sampler_seed, job_index, n_trials_before])
    return int(sequence.generate_state(1)[0])


def optimize(plan: SweepPlan, n_trials: int, job_index: int = 0, log: Log = print) -> int:
    """Run ``n_trials`` Optuna trials of the plan's study in this process (one sweep worker).

    The sampler's seed depends on the job and on the trials already in the study
    (``worker_seed``), so that parallel jobs and continued studies draw new configs. Returns
    the trials run.
    """
    import torch

    torch.set_num_threads(1)
    study = open_study(plan)
    seed = worker_seed(plan.sampler_seed, job_index, len(study.trials))
    study = open_study(plan, sampler_seed=seed)
    before = len(study.trials)
    # catch: a failed trial (bad suggested config, a crashing seed) is recorded, not fatal.
    study.optimize(lambda trial: run_seeds(trial, plan, log), n_trials=n_trials, catch=(Exception,))
    return len(study.trials) - before


def split_trials(n_trials: int, n_jobs: int) -> list[int]:
    """Return how many trials each of ``n_jobs`` workers runs (``n_trials`` in all, none empty)."""
    if n_trials <= 0:
        return []
    n_jobs = max(1, min(n_jobs, n_trials))
    return [n_trials // n_jobs + (index < n_trials % n_jobs) for index in range(n_jobs)]


def run_sweep(
    plan: SweepPlan,
    n_trials: int,
    n_jobs: int = 1,
    execution: Execution | None = None,
    info: dict[str, Any] | None = None,
    log: Log = print,
) -> Path:
    """Run ``n_trials`` more trials of the plan's study on ``n_jobs`` workers; write the report.

    One job on the local backend runs here; otherwise each job is a worker process (or Ray
    task) running ``optimize`` on the shared storage.
    """
    execution = execution or Execution()
    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(plan)  # made (or checked) once, before the workers race to create it
    if plan.sampler == "grid":
        # Optuna's grid sampler repeats points once the grid is done: run only what is left.
        done = {json.dumps(t.params, sort_keys=True) for t in study.trials if t.state.is_finished()}
        n_trials = min(n_trials, plan.grid_size - len(done))
        if n_trials <= 0:
            log(f"the grid's {plan.grid_size} points are done in study {plan.study_name!r}")
    info = {
        **(info or {}),
        "env_id": plan.env_id,
        "algo": plan.algo,
        "keys": [p.key for p in plan.parameters],
        "fixed": plan.fixed,
        "storage": plan.storage,
        "study_name": plan.study_name,
    }
    (out / SWEEP_FILE).write_text(json.dumps(info, indent=1))
    shares = split_trials(n_trials, n_jobs)
    if execution.backend == "local" and len(shares) == 1:
        optimize(plan, shares[0], 0, log)
    elif shares:
        calls = [(plan, share, index) for index, share in enumerate(shares)]
        # Locally one process per job; on Ray the cluster's CPUs decide.
        workers = len(shares) if execution.backend == "local" else execution.workers
        pool = Execution(
            execution.backend,
            workers,
            execution.ray_address,
            execution.cpus_per_trial,
            execution.retries,
        )
        failed_jobs = []
        try:
            for index, outcome in run_calls(optimize, calls, pool, log):
                if isinstance(outcome, BaseException):
                    last_line = str(outcome).strip().splitlines()[-1] if str(outcome) else ""
                    failed_jobs.append(f"job {index}: {type(outcome).__name__}: {last_line}")
                    log(f"FAILED sweep {failed_jobs[-1]}")
        except ClusterError as error:  # the study keeps the finished trials
            raise with_partial_report(error, lambda: write_sweep_report(out)) from None
        if failed_jobs:
            info["failed_jobs"] = failed_jobs
            (out / SWEEP_FILE).write_text(json.dumps(info, indent=1))
    return write_sweep_report(out)


def fixed_entry(
    algo: str,
    env_id: str,
    overrides: Sequence[str],
    run_values: dict[str, Any],
    config_dir: str | None = None,
) -> dict[str, Any]:
    """Return the ``rlrobot/configs/<algo>.yaml`` entry of ``env_id`` as every trial used it.

    The tuned entry (``tuned_entry``: ``default`` merged with the env's entry, the ``delayed``
    sub-entries kept under their key), updated by the sweep's ``--set`` overrides and then by
    ``run_values`` (``n_envs``, ``n_timesteps``). With a candidate's parameters on top, it is the
    entry that reproduces the candidate's trials when it replaces the env's entry in the file.
    """
    from rlrobot.run.config import deep_merge, parse_override, tuned_entry

    entry = tuned_entry(algo, env_id, config_dir=config_dir).as_file_entry()
    for text in overrides:
        entry = deep_merge(entry, parse_override(text))
    return {**entry, **run_values}


def describe_candidate(candidate: dict[str, Any]) -> str:
    """Return ``learning_rate=0.001 n_epochs=4``: a candidate's values, for progress lines."""
    return " ".join(f"{key}={value}" for key, value in candidate.items())


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """Return one row per Optuna trial: best mean final return first, then pruned, failed."""
    order = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 2, "FAIL": 3}
    rows = []
    for trial in study.trials:
        finals = trial.user_attrs.get("finals", [])
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "params": {key: decode_choice(value) for key, value in trial.params.items()},
            "n_seeds_done": len(finals),
            "keys": trial.user_attrs.get("keys", []),
        }
        if trial.state.name == "COMPLETE":
            row.update(
                mean=trial.value,
                ci=bootstrap_ci(finals),
                iqm=interquartile_mean(finals),
                finals=finals,
                steps_per_second=trial.user_attrs.get("steps_per_second"),
            )
        for name in ("pruned_at", "error"):
            if name in trial.user_attrs:
                row[name] = trial.user_attrs[name]
        rows.append(row)
    rows.sort(key=lambda row: (order[row["state"]], -row.get("mean", 0.0), row["number"]))
    return rows


def render_sweep_markdown(rows: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    """Return ``sweep.md``: the best entry as YAML for the tuned configs, the trials, the plots."""
    import yaml

    keys = info["keys"]
    lines = [f"# Sweep: {info['algo']} on {info['env_id']}", ""]
    lines += ["Settings: " + ", ".join(f"{k} = {v}" for k, v in info["settings"].items()), ""]
    if info.get("command"):
        lines += ["Reproduce (or continue: the study is loaded from its storage):", ""]
        lines += ["```", info["command"], "```", ""]
    counts = {
        state: sum(row["state"] == state for row in rows)
        for state in ("COMPLETE", "PRUNED", "FAIL")
    }
    lines += [
        f"{len(rows)} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed (study `{info['study_name']}` in `{info['storage']}`).",
        "",
    ]
    if rows and rows[0]["state"] == "COMPLETE":
        best = {info["env_id"]: {**info.get("fixed", {}), **rows[0]["params"]}}
        where = f"`rlrobot/configs/{info['algo']}.yaml`"
        lines += [
            f"Best config (trial {rows[0]['number']}): the env's whole entry for {where}, "
            "`--set` overrides included:",
            "",
            "```yaml",
            yaml.safe_dump(best, sort_keys=False).strip(),
            "```",
            "",
        ]
    lines += [
        "Trials, ranked by mean final evaluation return across seeds (95 % bootstrap CI); "
        "pruned trials stopped where shown.",
        "",
        "| trial | state | " + " | ".join(keys) + " | mean [95% CI] | IQM | seeds | steps/s |",
        "|---|---|" + "---|" * len(keys) + "---|---|---|---|",
    ]
    for row in rows:
        values = " | ".join(f"{row['params'].get(key, '—')!r}" for key in keys)
        if "mean" in row:
            low, high = row["ci"]
            speed = row["steps_per_second"]
            score = f"{row['mean']:.4g} [{low:.4g}, {high:.4g}] | {row['iqm']:.4g}"
            score += f" | {row['n_seeds_done']} | {speed:.0f}" if speed else " | —"
        else:
            note = (
                f"pruned at step {row['pruned_at']}"
                if "pruned_at" in row
                else row.get("error", "—")
            )
            score = f"{note} | — | {row['n_seeds_done']} | —"
        lines.append(f"| {row['number']} | {row['state'].lower()} | {values} | {score} |")
    for name, caption in info.get("plots", {}).items():
        lines += ["", f"![{caption}]({name})"]
    for note in info.get("plot_notes", []):
        lines += ["", note]
    if info.get("failed_jobs"):
        lines += ["", "Sweep workers that failed (their trials are missing):", ""]
        lines += [f"- {job}" for job in info["failed_jobs"]]
    return "\n".join(lines) + "\n"


def write_study_plots(study: Any, out: Path, n_params: int) -> tuple[dict[str, str], list[str]]:
    """Save Optuna's optimisation history and parameter importances as PNGs in ``out``.

    Returns:
        ``{file name: caption}`` of the plots written, and notes on the ones that could not be.
    """

    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    plots, notes = {}, []
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    wanted = [
        ("optimization_history.png", "Optimisation history", optuna_plots.plot_optimization_history)
    ]
    if n_params < 2:
        notes.append("No parameter importances: they need at least 2 swept parameters.")
    elif len(complete) < 2:
        notes.append("No parameter importances: they need at least 2 complete trials.")
    else:
        wanted.append(
            ("param_importances.png", "Parameter importances", optuna_plots.plot_param_importances)
        )
    if not complete:
        return {}, ["No plots: no trial is complete yet."]
    for name, caption, plot in wanted:
        with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
            warnings.simplefilter("ignore")
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as error:  # e.g. parameters that never varied
                notes.append(f"No {caption.lower()}: {error}")
                continue
        figure = axes.figure
        figure.tight_layout()
        figure.savefig(out / name, dpi=100)
        plt.close(figure)
        plots[name] = caption
    return plots, notes


def write_sweep_report(out: str | Path) -> Path:
    """Rank the trials of the sweep in ``out`` (from its study) and write ``sweep.md``."""
    import optuna

    out = Path(out)
    info = json.loads((out / SWEEP_FILE).read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    rows = trial_rows(study)
    (out / "ranking.json").write_text(json.dumps(rows, indent=1))
    plots, notes = write_study_plots(study, out, len(info["keys"]))
    path = out / "sweep.md"
    path.write_text(render_sweep_markdown(rows, {**info, "plots": plots, "plot_notes": notes}))
    return path
