"""Vector-env construction and episode statistics on Gymnasium's own vector envs.

The vector envs use ``AutoresetMode.SAME_STEP``: a sub-env that terminates or truncates is
reset inside the same ``step`` call; the returned observation is the first of the next episode
and the real final observation is in ``info["final_obs"][i]`` (mask ``info["_final_obs"]``).
We chose it deliberately over the default ``NEXT_STEP``, where the step after an episode end is
a dummy reset step whose action is ignored: with ``SAME_STEP`` every stored transition is a
real one (no masking of dummy steps in the rollout), and truncated episodes can bootstrap from
their real final observation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

EnvSpec = str | gym.Env | Callable[[], gym.Env]


def _make_env_factory(env_id: str, env_kwargs: dict[str, Any]) -> Callable[[], gym.Env]:
    def factory() -> gym.Env:
        if env_id.startswith("rlrobot/"):
            import rlrobot  # noqa: F401 - registers the rlrobot envs (also in worker processes)
        return gym.make(env_id, **env_kwargs)

    return factory


def make_vec_env(
    env: EnvSpec | gym.vector.VectorEnv,
    n_envs: int = 1,
    vec_env: str = "sync",
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> gym.vector.VectorEnv:
    """Create a Gymnasium vector env with ``SAME_STEP`` autoreset.

    Args:
        env: An env id (``"CartPole-v1"``, ``"rlrobot/Reach-v0"``), a factory returning an env,
            an env instance (then ``n_envs`` must be 1), or a ``SAME_STEP`` vector env.
        n_envs: Number of parallel envs.
        vec_env: ``"sync"`` (one process) or ``"async"`` (one subprocess per env).
        seed: Env ``i`` is reset with ``seed + i``; the action spaces are seeded too.
        env_kwargs: Keyword arguments for ``gym.make`` (env ids only).

    Returns:
        The vector env, already reset.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if vec_env not in ("sync", "async"):
        raise ValueError(f"vec_env must be 'sync' or 'async', got {vec_env!r}")
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
            if vec_env == "async":
                raise ValueError("an env instance cannot be moved to a subprocess; use a factory")
            instance = env
            factories = [lambda: instance]
        elif isinstance(env, str):
            factories = [_make_env_factory(env, dict(env_kwargs or {}))] * n_envs
        elif callable(env):
            factories = [env] * n_envs
        else:
            raise TypeError(f"env must be an id, a gym.Env or a factory, got {type(env).__name__}")
        vector_class = gym.vector.SyncVectorEnv if vec_env == "sync" else gym.vector.AsyncVectorEnv
        vector = vector_class(factories, autoreset_mode=AutoresetMode.SAME_STEP)
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
