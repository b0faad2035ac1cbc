"""One benchmark trial: train one agent (ours or SB3's) on one env with one seed, evaluating it.

A ``TrialSpec`` is plain JSON data, so it travels to worker processes and Ray tasks unchanged;
its ``key`` (a hash of everything that changes the outcome) names the result file, which is how
finished trials are found again after a restart. ``run_trial`` is the only code that runs in a
worker, for every backend, so the same spec gives the same result everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.common.evaluation import EvaluationResult, evaluate_policy

FRAMEWORKS = ("rlrobot", "sb3")

# Evaluation episodes are seeded apart from the training envs (seed + i), and identically for
# ours and SB3's, so both face the same start states (common random numbers).
EVAL_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class TrialSpec:
    """Everything that defines a trial (JSON values only).

    Attributes:
        env_id: Gymnasium id, e.g. ``"rlrobot/Reach-v0"`` or ``"CartPole-v1"``.
        algo: Our algorithm name (``"ppo"``, ``"a2c"``…).
        seed: Seed of the agent; training env ``i`` is seeded with ``seed + i``.
        steps: Training budget in env steps (over all envs; rounded up to whole rollouts).
        framework: ``"rlrobot"`` (ours) or ``"sb3"`` (the Stable-Baselines3 counterpart).
        config: The full resolved config of the algorithm (every field).
        env_kwargs: ``gym.make`` keywords.
        n_envs: Number of parallel training envs (sequential vector env for both).
        eval_interval: Evaluate every this many env steps (at the first update past it).
        eval_episodes: Deterministic evaluation episodes per checkpoint.
    """

    env_id: str
    algo: str
    seed: int
    steps: int
    framework: str = "rlrobot"
    config: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    n_envs: int = 1
    eval_interval: int = 10_000
    eval_episodes: int = 5

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {FRAMEWORKS}, got {self.framework!r}")
        if self.steps < 1 or self.eval_interval < 1 or self.eval_episodes < 1 or self.n_envs < 1:
            raise ValueError(f"steps, eval_interval, eval_episodes and n_envs must be >= 1: {self}")

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialSpec:
        """Rebuild a spec from ``to_dict``'s output."""
        return cls(**values)

    @property
    def key(self) -> str:
        """Return the cache key: a hash of env, algo, seed, steps, framework, config and more."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Return a short human-readable name, e.g. ``ppo/sb3 CartPole-v1 seed 2``."""
        return f"{self.algo}/{self.framework} {self.env_id} seed {self.seed}"


def checkpoint_record(result: EvaluationResult) -> dict[str, Any]:
    """Return an evaluation in the form the trial results store at each checkpoint.

    Returns:
        ``mean_return``, ``std_return``, ``returns`` (per episode), ``mean_length`` and, when the
        env reports ``info["is_success"]``, ``success_rate`` (at the last step of each episode).
    """
    record: dict[str, Any] = {
        "mean_return": float(np.mean(result.returns)),
        "std_return": float(np.std(result.returns)),
        "returns": result.returns,
        "mean_length": float(np.mean(result.lengths)),
    }
    if result.successes:
        record["success_rate"] = float(np.mean(result.successes))
    return record


class CheckpointEvaluator:
    """Evaluate an agent whenever training has passed the next multiple of ``interval`` steps.

    Called between updates (our agents' ``callback``; SB3's at each rollout start), so a
    checkpoint at step ``t`` is the policy after all updates on the first ``t`` steps. Time
    spent evaluating is accumulated so that it can be left out of the training speed.

    Args:
        env: The single evaluation env.
        interval: Env steps between checkpoints.
        n_episodes: Episodes per checkpoint.
        seed: Seed of the first evaluation episode.
        on_checkpoint: Called with each new checkpoint (``step`` and the record); a sweep's
            pruner raises from it to stop the trial.
        clock: Wall clock in seconds that times the evaluations (a test passes a fake one).
    """

    def __init__(
        self,
        env: Any,
        interval: int,
        n_episodes: int,
        seed: int,
        on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.env, self.interval, self.n_episodes, self.seed = env, interval, n_episodes, seed
        self.on_checkpoint = on_checkpoint
        self.clock = clock
        self.next_step = 0
        self.curve: list[dict[str, Any]] = []
        self.eval_time = 0.0
        self.eval_cpu_time = 0.0

    def evaluate(self, agent: Any) -> None:
        """Evaluate now and append the checkpoint to ``curve``."""
        start, cpu_start = self.clock(), time.process_time()
        result = checkpoint_record(
            evaluate_policy(agent, self.env, self.n_episodes, seed=self.seed)
        )
        self.eval_time += self.clock() - start
        self.eval_cpu_time += time.process_time() - cpu_start
        self.curve.append({"step": int(agent.num_timesteps), **result})
        while self.next_step <= agent.num_timesteps:
            self.next_step += self.interval
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.curve[-1])

    def __call__(self, agent: Any) -> None:
        """Evaluate if ``agent.num_timesteps`` reached the next checkpoint (a training callback)."""
        if agent.num_timesteps >= self.next_step:
            self.evaluate(agent)

    def finish(self, agent: Any) -> None:
        """Evaluate the final policy unless that step was just evaluated."""
        if not self.curve or self.curve[-1]["step"] != agent.num_timesteps:
            self.evaluate(agent)


def get_versions() -> dict[str, str]:
    """Return the versions of Python and of the packages that shape the results."""
    import gymnasium
    import stable_baselines3
    import torch

    import rlrobot

    return {
        "python": platform.python_version(),
        "rlrobot": rlrobot.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }


@functools.cache
def code_version() -> str:
    """Return a hash of the rlrobot package's code and configs: which code ran a trial.

    A hash of the files rather than a git commit: it also covers uncommitted edits, and it is
    the same on a Ray worker that runs a copy of the package (no git there).
    """
    import rlrobot

    package = Path(rlrobot.__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*package.rglob("*.py"), *package.glob("configs/*.yaml")]):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def get_machine() -> dict[str, Any]:
    """Return what the trial ran on (host, Ray node, CPU, core count) and how busy it was.

    ``load_average`` is the 1-, 5- and 15-minute system load average when this is called (at
    the end of a trial): on a shared machine it tells how much other work slowed the timings.
    """
    import sys

    ray = sys.modules.get("ray")  # a Ray worker has it imported; never imported here
    in_ray = ray is not None and ray.is_initialized()
    return {
        "hostname": platform.node(),
        # Hosts can run several Ray nodes (and share names): speeds compare within a node.
        "ray_node": ray.get_runtime_context().get_node_id() if in_ray else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        # Unix only (None elsewhere).
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def register_env_id(env_id: str) -> str:
    """Import the package named in a ``"module:EnvId"`` id (it registers the env); return the id.

    Gymnasium's ``gym.make("panda_gym:PandaReach-v3")`` imports ``panda_gym`` first; doing the
    same here lets a bench use third-party env packages, inside every worker process.

    Returns:
        The id without the module part (``"PandaReach-v3"``), or ``env_id`` unchanged.
    """
    import importlib

    import rlrobot  # noqa: F401 - registers the rlrobot envs in this process

    module, separator, name = env_id.partition(":")
    if not separator:
        return env_id
    importlib.import_module(module)
    return name


def make_agent(spec: TrialSpec, vec_env: str | None = None, torch_threads: int = 1) -> Any:
    """Build the spec's agent: ours from ``ALGORITHMS`` or SB3's through ``to_sb3``.

    Args:
        spec: The trial.
        vec_env: The training envs' vector env: ours one of ``rlrobot.vec.VEC_ENV_CHOICES``,
            SB3's one of ``rlrobot.benchmark.sb3.SB3_VEC_ENVS`` (None: in this process, both).
        torch_threads: Our agent's torch threads during ``learn`` (SB3's are the process's).
    """
    from rlrobot.agents import ALGORITHMS

    env_id = register_env_id(spec.env_id)
    config = ALGORITHMS[spec.algo].config_class.from_dict(spec.config)
    if spec.framework == "sb3":
        from rlrobot.benchmark.sb3 import make_sb3_agent

        return make_sb3_agent(
            spec.algo, config, env_id, spec.env_kwargs, spec.n_envs, spec.seed, vec_env or "dummy"
        )
    return ALGORITHMS[spec.algo](
        env_id,
        n_envs=spec.n_envs,
        vec_env=vec_env or "sync",
        env_kwargs=dict(spec.env_kwargs),
        seed=spec.seed,
        device="cpu",
        torch_threads=torch_threads,
        config=config,
    )


def run_trial(
    spec: TrialSpec, on_checkpoint: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Train and evaluate one trial in this process with one torch thread; return its result.

    Args:
        spec: The trial.
        on_checkpoint: Called with each checkpoint record as it is made (see
            ``CheckpointEvaluator``); what it raises stops the trial and propagates.

    Returns:
        A JSON-friendly dict: ``key``, ``spec``, ``status="ok"``, ``curve`` (one entry per
        checkpoint: ``step``, ``mean_return``, ``std_return``, ``returns``, ``mean_length``,
        optionally ``success_rate``), ``final_return``, ``total_timesteps``,
        ``train_time_s`` (learning without evaluation), ``eval_time_s``, ``wall_time_s``,
        ``steps_per_second``, ``train_cpu_time_s`` and ``cpu_steps_per_second`` (the same on
        this process's CPU time: less disturbed by other jobs on a shared machine; sync vector
        envs step inside it), ``torch_threads``, ``versions``, ``code_version``
        (``code_version()``) and ``machine``.
    """
    import gymnasium as gym
    import torch

    torch.set_num_threads(1)
    wall_start = time.perf_counter()
    agent = make_agent(spec)
    try:
        eval_env = gym.make(register_env_id(spec.env_id), **spec.env_kwargs)
        evaluator = CheckpointEvaluator(
            eval_env,
            spec.eval_interval,
            spec.eval_episodes,
            spec.seed + EVAL_SEED_OFFSET,
            on_checkpoint,
        )
        try:
            evaluator(agent)
            learn_start, eval_time_before = time.perf_counter(), evaluator.eval_time
            cpu_start, eval_cpu_before = time.process_time(), evaluator.eval_cpu_time
            agent.learn(spec.steps, callback=evaluator)
            # Evaluations inside learn() are not training time.
            learn_time = time.perf_counter() - learn_start
            train_time = max(learn_time - (evaluator.eval_time - eval_time_before), 1e-9)
            learn_cpu_time = time.process_time() - cpu_start
            train_cpu_time = max(learn_cpu_time - (evaluator.eval_cpu_time - eval_cpu_before), 1e-9)
            evaluator.finish(agent)
        finally:
            eval_env.close()
    finally:
        if agent.env is not None:
            agent.env.close()
    return {
        "key": spec.key,
        "spec": spec.to_dict(),
        "status": "ok",
        "curve": evaluator.curve,
        "final_return": evaluator.curve[-1]["mean_return"],
        "total_timesteps": int(agent.num_timesteps),
        "train_time_s": train_time,
        "eval_time_s": evaluator.eval_time,
        "wall_time_s": time.perf_counter() - wall_start,
        "steps_per_second": agent.num_timesteps / train_time,
        "train_cpu_time_s": train_cpu_time,
        "cpu_steps_per_second": agent.num_timesteps / train_cpu_time,
        "torch_threads": torch.get_num_threads(),
        "versions": get_versions(),
        "code_version": code_version(),
        "machine": get_machine(),
    }


def failure_result(spec: TrialSpec, error: BaseException | str) -> dict[str, Any]:
    """Return the result record of a trial that raised ``error``."""
    if isinstance(error, BaseException):
        message = "".join(traceback.format_exception(error)).strip()
    else:
        message = error
    return {"key": spec.key, "spec": spec.to_dict(), "status": "failed", "error": message}


def execute_trial(
    spec_dict: dict[str, Any],
    expected_code_version: str | None = None,
    spec_class: Any = TrialSpec,
    run: Callable[[Any], dict[str, Any]] = run_trial,
) -> dict[str, Any]:
    """Run a trial from its dict form and return a result record, never raising (worker entry).

    Args:
        spec_dict: ``TrialSpec.to_dict()``.
        expected_code_version: The driver's ``code_version()``: a worker running other code
            (a Ray node with another checkout) fails the trial instead of mixing results.
        spec_class: The spec's class (a study's own, with ``from_dict``, ``key`` and
            ``to_dict``, e.g. the time-to-solve study's).
        run: Runs the spec in this process and returns its result (``run_trial`` for a
            ``TrialSpec``).
    """
    spec = spec_class.from_dict(spec_dict)
    if expected_code_version is not None and expected_code_version != code_version():
        failed = failure_result(
            spec,
            f"this worker runs rlrobot code {code_version()} (in {Path(__file__).parent.parent}), "
            f"the driver {expected_code_version}: give the node the driver's code",
        )
        return {**failed, "machine": get_machine()}  # the node, for the driver's retries
    try:
        return run(spec)
    except Exception as error:
        return {**failure_result(spec, error), "machine": get_machine()}
