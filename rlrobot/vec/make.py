"""``make_vec_env``: one call for every vector env rlrobot's agents use, always ``SAME_STEP``.

Vector envs a user brings (SB3 VecEnvs, Gymnasium ones in any autoreset mode) are converted
here, once, by ``rlrobot.vec.adapters``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rlrobot.common.config import SEED, check_argument
from rlrobot.common.env_util import EnvSpec, check_env_id, make_env
from rlrobot.envs.checks import Interval
from rlrobot.envs.state import EpisodeStateAccess
from rlrobot.vec.adapters import SB3VecEnv, is_sb3_vec_env, to_same_step
from rlrobot.vec.shared_memory import SharedMemoryVectorEnv, default_main_envs
from rlrobot.vec.state import EPISODE_STATE_METADATA
from rlrobot.vec.workers import CheckedSyncVectorEnv, ReportingAsyncVectorEnv, check_worker_timeout

# The ``vec_env`` choices of ``make_vec_env``; ``RunConfig.vec_env`` is typed with the same alias,
# so the config's validation and the factory cannot drift apart.
VecEnvName = Literal["sync", "async", "shm", "shm_workers"]
VEC_ENV_CHOICES: tuple[VecEnvName, ...] = get_args(VecEnvName)
# The most envs one vector env holds: each is an env and a physics client (with "async"/"shm"
# a process too), so 10**5 of them exhaust memory or file handles long before they step; a
# checkpoint's saved n_envs is held to the same bound.
MAX_ENVS = 1024
ENVS = Interval(1, MAX_ENVS, reason="an env and a physics client each")


def _make_env_factory(env_id: str, env_kwargs: dict[str, Any]) -> Callable[[], gym.Env]:
    def factory() -> gym.Env:
        return make_env(env_id, env_kwargs)

    return factory


def _with_state_access(factory: Callable[[], gym.Env]) -> Callable[[], gym.Env]:
    """Wrap the env ``factory`` makes in ``EpisodeStateAccess`` (where the env is made)."""

    def make() -> gym.Env:
        return EpisodeStateAccess(factory())

    return make


def make_vec_env(
    env: EnvSpec | gym.vector.VectorEnv | SB3VecEnv,
    n_envs: int = 1,
    vec_env: VecEnvName = "sync",
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    worker_timeout_s: float | None = None,
) -> gym.vector.VectorEnv:
    """Create a Gymnasium vector env with ``SAME_STEP`` autoreset.

    Args:
        env: An env id (``"CartPole-v1"``, ``"rlrobot/Reach-v0"``), a factory returning an env,
            an env instance (then ``n_envs`` must be 1), a Gymnasium vector env in any
            autoreset mode, or a Stable-Baselines3 VecEnv (``DummyVecEnv``, ``SubprocVecEnv``,
            SB3's ``make_vec_env``, wrappers such as ``VecNormalize`` included). A given
            vector env keeps its own number of envs and processes (``n_envs`` and ``vec_env``
            are ignored); one that is not ``SAME_STEP`` is adapted (``rlrobot.vec.adapters``).
        n_envs: Number of parallel envs, 1 to ``MAX_ENVS``.
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
        The vector env, already reset. Each env it makes is wrapped in ``EpisodeStateAccess``,
        so that ``rlrobot.vec.state`` can save and restore its episode in progress.
    """
    n_envs = check_argument("n_envs", n_envs, int, ENVS)
    if seed is not None:  # NumPy integers too: Gymnasium's reset takes a Python int only
        seed = check_argument("seed", seed, int, SEED)
    if vec_env not in VEC_ENV_CHOICES:
        raise ValueError(
            f"vec_env must be one of {', '.join(map(repr, VEC_ENV_CHOICES))}, got {vec_env!r}"
        )
    given_vector = isinstance(env, gym.vector.VectorEnv) or is_sb3_vec_env(env)
    if check_worker_timeout(worker_timeout_s) is not None:
        if given_vector:
            raise ValueError("worker_timeout_s applies to vector envs made here, not a given one")
        if vec_env == "sync":
            raise ValueError('worker_timeout_s needs worker processes; vec_env="sync" has none')
    if given_vector:
        vector = to_same_step(env)
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
        factories = [_with_state_access(factory) for factory in factories]
        if vec_env in ("shm", "shm_workers"):
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
            vector = CheckedSyncVectorEnv(factories, autoreset_mode=AutoresetMode.SAME_STEP)
        vector.metadata = {**vector.metadata, EPISODE_STATE_METADATA: True}
    if seed is not None:
        vector.action_space.seed(seed)
        vector.single_action_space.seed(seed)
    vector.reset(seed=seed)
    return vector
