"""Vector-env construction and episode statistics on Gymnasium's own vector envs.

The vector envs use ``AutoresetMode.SAME_STEP``: a sub-env that terminates or truncates is
reset inside the same ``step`` call; the returned observation is the first of the next episode
and the real final observation is in ``info["final_obs"][i]`` (mask ``info["_final_obs"]``).
We chose it deliberately over the default ``NEXT_STEP``, where the step after an episode end is
a dummy reset step whose action is ignored: with ``SAME_STEP`` every stored transition is a
real one (no masking of dummy steps in the rollout), and truncated episodes can bootstrap from
their real final observation.

Mistakes and faults are reported by name: ``make_env`` and ``make_vec_env`` raise
``EnvMakeError`` for an unknown env id or ``gym.make`` keyword (suggesting close matches) and
for option values the env rejects; async vector envs raise ``EnvWorkerError`` naming the env,
its process and the vector step when a worker process dies or raises.
"""

from __future__ import annotations

import difflib
import inspect
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from rlrobot.errors import EnvMakeError

EnvSpec = str | gym.Env | Callable[[], gym.Env]
# Keywords ``gym.make`` takes itself rather than passing them to the env.
_MAKE_KEYWORDS = frozenset(inspect.signature(gym.make).parameters) - {"id", "kwargs"}
# The ``vec_env`` choices of ``make_vec_env`` (``RunConfig.vec_env`` lists the same).
VEC_ENV_CHOICES = ("sync", "async", "shm", "shm_workers")


class EnvWorkerError(RuntimeError):
    """A sub-env process of a vector env died, raised or hung; names the env and the step."""


def check_worker_timeout(worker_timeout_s: float | None) -> float | None:
    """Return ``worker_timeout_s`` as a float (or None); raise ``ValueError`` unless > 0."""
    if worker_timeout_s is None:
        return None
    if isinstance(worker_timeout_s, bool) or not float(worker_timeout_s) > 0:
        raise ValueError(f"worker_timeout_s must be > 0 or None, got {worker_timeout_s!r}")
    return float(worker_timeout_s)


def _env_keywords(entry_point: Any) -> set[str] | None:
    """Keywords an env's constructor accepts (through ``**kwargs`` chains); None: any."""
    if isinstance(entry_point, str):
        entry_point = gym.envs.registration.load_env_creator(entry_point)
    if isinstance(entry_point, type):
        functions = [cls.__init__ for cls in entry_point.__mro__ if "__init__" in vars(cls)]
    else:
        functions = [entry_point]
    names: set[str] = set()
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # builtins without a signature accept what they accept
            return None
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return names - {"self"}
    return None


def _close_env_ids(env_id: str, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Registered ids whose names (without namespace) are most like that of ``env_id``."""
    name = env_id.split("/")[-1]

    def similarity(candidate: str) -> float:
        return difflib.SequenceMatcher(None, name, candidate.split("/")[-1]).ratio()

    scored = sorted(((similarity(c), c) for c in gym.registry), reverse=True)[:n]
    return [candidate for score, candidate in scored if score >= cutoff]


def check_env_id(
    env_id: str, env_kwargs: dict[str, Any] | None = None
) -> gym.envs.registration.EnvSpec:
    """Return the registered spec of ``env_id`` after checking the ``gym.make`` keywords.

    Raises:
        EnvMakeError: The id is unknown (close ids are suggested) or the env takes no such
            keyword (close keywords are suggested).
    """
    if env_id.startswith("rlrobot/"):
        import rlrobot  # noqa: F401 - registers the rlrobot envs (also in worker processes)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        close = _close_env_ids(env_id)
        if close:
            message = f"unknown env id {env_id!r}; did you mean {' or '.join(map(repr, close))}?"
        else:
            message = f"unknown env id {env_id!r}: {error}"
        raise EnvMakeError(message) from None
    accepted = _env_keywords(spec.entry_point)
    if accepted is not None:
        for key in env_kwargs or {}:
            if key not in accepted and key not in _MAKE_KEYWORDS:
                close = difflib.get_close_matches(key, sorted(accepted | _MAKE_KEYWORDS), n=3)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise EnvMakeError(f"{env_id} takes no keyword {key!r}{hint}")
    return spec


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` whose mistakes raise ``EnvMakeError`` naming them.

    Unknown ids and keywords are caught before the env is built (with close matches); an
    option value the env rejects (``TypeError``/``ValueError`` from its constructor) is
    re-raised as ``EnvMakeError`` with the original error chained.
    """
    check_env_id(env_id, env_kwargs)
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except (TypeError, ValueError) as error:
        raise EnvMakeError(f"cannot make {env_id} with {env_kwargs or {}}: {error}") from error


def _make_env_factory(env_id: str, env_kwargs: dict[str, Any]) -> Callable[[], gym.Env]:
    def factory() -> gym.Env:
        return make_env(env_id, env_kwargs)

    return factory


class ReportingAsyncVectorEnv(gym.vector.AsyncVectorEnv):
    """``AsyncVectorEnv`` that turns a dead or failing worker into an ``EnvWorkerError``.

    Gymnasium reports a worker killed by a signal or ``os._exit`` as a bare ``EOFError`` from
    the pipe, and an exception inside a worker as that exception without the env's index.
    This subclass names the env, its process and exit status, and the vector step (counted
    from construction), stops the remaining workers, and marks the vector env closed.
    ``worker_timeout_s`` (seconds, ``None``: no limit) is the default ``timeout`` of
    ``step_wait`` and ``reset_wait``: a worker that has not answered by then is reported the
    same way.
    """

    def __init__(self, *args: Any, worker_timeout_s: float | None = None, **kwargs: Any) -> None:
        # Set first: the parent constructor already talks to the workers.
        self.vector_steps = 0
        self._call_name = "construction"
        self.worker_timeout_s = check_worker_timeout(worker_timeout_s)
        super().__init__(*args, **kwargs)

    def reset_wait(self, timeout: float | None = None) -> Any:
        """Gymnasium's ``reset_wait``, with worker failures reported as ``EnvWorkerError``."""
        self._call_name = f"reset after vector step {self.vector_steps}"
        return self._reporting(super().reset_wait, timeout)

    def step_wait(self, timeout: float | None = None) -> Any:
        """Gymnasium's ``step_wait``, with worker failures reported as ``EnvWorkerError``."""
        self._call_name = f"vector step {self.vector_steps + 1}"
        result = self._reporting(super().step_wait, timeout)
        self.vector_steps += 1
        return result

    def close_extras(self, *args: Any, **kwargs: Any) -> None:
        """Stop the workers (Gymnasium's ``close_extras``) and close the error queue's pipe."""
        super().close_extras(*args, **kwargs)
        self.error_queue.close()  # its pipe would stay open until garbage collection

    def _reporting(self, wait: Callable[..., Any], timeout: float | None) -> Any:
        timeout = timeout if timeout is not None else self.worker_timeout_s
        try:
            return wait(timeout=timeout)
        except EnvWorkerError:
            raise
        except (EOFError, ConnectionError) as error:
            message = self._describe_dead_workers()
            self._stop_workers()
            raise EnvWorkerError(f"{message} during {self._call_name}") from error
        except multiprocessing.TimeoutError as error:
            late = [index for index, pipe in enumerate(self.parent_pipes) if not pipe.poll()]
            message = (
                "; ".join(
                    f"env {index} of {self.num_envs} (worker pid {self.processes[index].pid}) did "
                    f"not answer within {timeout:g} s"
                    for index in late
                )
                or f"a worker of this {self.num_envs}-env AsyncVectorEnv answered after "
                f"{timeout:g} s"
            )
            self._stop_workers()
            raise EnvWorkerError(f"{message} during {self._call_name}") from error

    def _raise_if_errors(self, successes: Any) -> None:
        successes = list(successes)
        failed = [index for index, success in enumerate(successes) if not success]
        try:
            super()._raise_if_errors(successes)
        except Exception as error:
            self._stop_workers()
            raise EnvWorkerError(
                f"env {failed[-1] if failed else '?'} of {self.num_envs} raised "
                f"{type(error).__name__}: {error} during {self._call_name} (the worker's "
                "traceback was logged above)"
            ) from error

    def _describe_dead_workers(self, wait_s: float = 2.0) -> str:
        """Name the workers that exited, waiting briefly for them to be reaped."""
        deadline = time.monotonic() + wait_s
        while True:
            dead = [(i, p) for i, p in enumerate(self.processes) if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not dead:
            return f"a worker of this {self.num_envs}-env AsyncVectorEnv closed its pipe"
        return "; ".join(
            f"env {index} of {self.num_envs} (worker pid {process.pid}) died "
            f"({_describe_exit_code(process.exitcode)})"
            for index, process in dead
        )

    def _stop_workers(self) -> None:
        """Terminate every worker and mark the vector env closed (it cannot go on)."""
        from gymnasium.vector.async_vector_env import AsyncState

        self._state = AsyncState.DEFAULT
        self.close(terminate=True)


def _describe_exit_code(exit_code: int | None) -> str:
    if exit_code is None:
        return "still exiting"
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"


def make_vec_env(
    env: EnvSpec | gym.vector.VectorEnv,
    n_envs: int = 1,
    vec_env: str = "sync",
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    worker_timeout_s: float | None = None,
) -> gym.vector.VectorEnv:
    """Create a Gymnasium vector env with ``SAME_STEP`` autoreset.

    Args:
        env: An env id (``"CartPole-v1"``, ``"rlrobot/Reach-v0"``), a factory returning an env,
            an env instance (then ``n_envs`` must be 1), or a ``SAME_STEP`` vector env.
        n_envs: Number of parallel envs.
        vec_env: ``"sync"`` (one process), ``"async"`` (one subprocess per env,
            ``ReportingAsyncVectorEnv``), ``"shm"`` (``SharedMemoryVectorEnv``: step data in
            shared memory, one process per core, the main one stepping its share of the envs
            itself (``default_main_envs``), infos only where episodes end; the fastest on
            several cores) or ``"shm_workers"`` (the same with every env in a worker process,
            ``n_main_envs=0``: the main process only runs the policy).
        seed: Env ``i`` is reset with ``seed + i``; the action spaces are seeded too.
        env_kwargs: Keyword arguments for ``gym.make`` (env ids only).
        worker_timeout_s: With worker processes (``"async"``, ``"shm"``, ``"shm_workers"``):
            seconds a worker may take for a step or reset before every worker is stopped and
            ``EnvWorkerError`` names the one that hangs (``None``: no limit).

    Returns:
        The vector env, already reset.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if vec_env not in VEC_ENV_CHOICES:
        raise ValueError(
            f"vec_env must be one of {', '.join(map(repr, VEC_ENV_CHOICES))}, got {vec_env!r}"
        )
    if check_worker_timeout(worker_timeout_s) is not None:
        if isinstance(env, gym.vector.VectorEnv):
            raise ValueError("worker_timeout_s applies to vector envs made here, not a given one")
        if vec_env == "sync":
            raise ValueError('worker_timeout_s needs worker processes; vec_env="sync" has none')
    if isinstance(env, gym.vector.VectorEnv):
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(
                "vector envs passed to rlrobot must use autoreset_mode=AutoresetMode.SAME_STEP "
                "(so the real final observation of each episode is kept)"
            )
        vector = env
    else:
        if env_kwargs and not isinstance(env, str):
            raise ValueError("env_kwargs can only be used with an env id")
        if isinstance(env, gym.Env):
            if n_envs != 1:
                raise ValueError(
                    "pass an env id or a factory to use n_envs > 1, not an env instance"
                )
            if vec_env != "sync":
                raise ValueError("an env instance cannot be moved to a subprocess; use a factory")
            instance = env
            factories = [lambda: instance]
        elif isinstance(env, str):
            check_env_id(env, env_kwargs)  # before any worker process starts
            factories = [_make_env_factory(env, dict(env_kwargs or {}))] * n_envs
        elif callable(env):
            factories = [env] * n_envs
        else:
            raise TypeError(f"env must be an id, a gym.Env or a factory, got {type(env).__name__}")
        if vec_env in ("shm", "shm_workers"):
            # Imported here: vector_env imports this module.
            from rlrobot.common.vector_env import SharedMemoryVectorEnv, default_main_envs

            n_main_envs = default_main_envs(n_envs) if vec_env == "shm" else 0
            vector = SharedMemoryVectorEnv(
                factories,
                n_main_envs=n_main_envs,
                step_infos=False,
                worker_timeout_s=worker_timeout_s,
            )
        elif vec_env == "async":
            vector = ReportingAsyncVectorEnv(
                factories, autoreset_mode=AutoresetMode.SAME_STEP, worker_timeout_s=worker_timeout_s
            )
        else:
            vector = gym.vector.SyncVectorEnv(factories, autoreset_mode=AutoresetMode.SAME_STEP)
    if seed is not None:
        vector.action_space.seed(seed)
        vector.single_action_space.seed(seed)
    vector.reset(seed=seed)
    return vector


def get_final_observations(
    observations: np.ndarray | dict[str, np.ndarray], infos: dict[str, Any]
) -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]:
    """Return the real next observations of a ``SAME_STEP`` vector step.

    Args:
        observations: Batched observations returned by ``step`` (reset ones where episodes ended).
        infos: The step's info dict.

    Returns:
        ``(next_observations, ended)``: a copy of ``observations`` with the final observation
        put back where an episode ended, and the boolean mask ``(n_envs,)`` of those envs.
    """
    mask = infos.get("_final_obs")
    if mask is None or not mask.any():
        n_envs = len(
            next(iter(observations.values())) if isinstance(observations, dict) else observations
        )
        return observations, np.zeros(n_envs, dtype=bool)
    final = infos["final_obs"]
    indices = np.flatnonzero(mask)
    if isinstance(observations, dict):
        next_observations = {key: value.copy() for key, value in observations.items()}
        for i in indices:
            for key in next_observations:
                next_observations[key][i] = final[i][key]
    else:
        next_observations = observations.copy()
        for i in indices:
            next_observations[i] = final[i]
    return next_observations, mask


class EpisodeTracker:
    """Track returns, lengths and success of finished episodes (raw, unnormalised rewards).

    Args:
        n_envs: Number of parallel envs.
        window: How many recent episodes the means are computed over.
    """

    def __init__(self, n_envs: int, window: int = 100) -> None:
        self.returns = np.zeros(n_envs, dtype=np.float64)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)
        self.recent_successes: deque[float] = deque(maxlen=window)
        self.n_episodes = 0

    def update(self, rewards: np.ndarray, episode_ends: np.ndarray, infos: dict[str, Any]) -> None:
        """Add one vector step ``(n_envs,)`` and close the episodes that ended."""
        self.returns += rewards
        self.lengths += 1
        if not episode_ends.any():
            return
        final_info = infos.get("final_info", {})
        success, success_mask = final_info.get("is_success"), final_info.get("_is_success")
        for i in np.flatnonzero(episode_ends):
            self.recent_returns.append(float(self.returns[i]))
            self.recent_lengths.append(int(self.lengths[i]))
            if success is not None and success_mask[i]:
                self.recent_successes.append(float(success[i]))
        self.n_episodes += int(episode_ends.sum())
        self.returns[episode_ends] = 0.0
        self.lengths[episode_ends] = 0

    def summary(self) -> dict[str, float]:
        """Return SB3-named means over the window (empty before the first episode ends)."""
        if not self.recent_returns:
            return {}
        result = {
            "rollout/ep_rew_mean": float(np.mean(self.recent_returns)),
            "rollout/ep_len_mean": float(np.mean(self.recent_lengths)),
        }
        if self.recent_successes:
            result["rollout/success_rate"] = float(np.mean(self.recent_successes))
        return result
