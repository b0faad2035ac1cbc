"""Adapters that present other vector envs as ``SAME_STEP`` Gymnasium vector envs.

rlrobot's agents step one kind of vector env: Gymnasium's, with ``AutoresetMode.SAME_STEP``
(the real final observation in ``info["final_obs"]``, see ``rlrobot.common.env_util``). Users
bring two other kinds, converted here once, where the env enters (``make_vec_env``):

- **Stable-Baselines3 VecEnvs** (``DummyVecEnv``, ``SubprocVecEnv``, SB3's ``make_vec_env``,
  and the ``VecNormalize``, ``VecFrameStack`` and ``VecMonitor`` wrappers):
  ``SB3VecEnvAdapter``. SB3 resets an env inside the step that ends its episode too, so the
  conversion is a renaming: ``infos[i]["terminal_observation"]`` becomes ``final_obs``, and
  ``dones`` splits into ``terminated``/``truncated`` by ``infos[i]["TimeLimit.truncated"]``.
  The wrappers run as they do under SB3: a ``VecNormalize`` keeps normalising observations
  and rewards and updating its statistics, our agents see what an SB3 agent would see, and
  the user saves it themselves (``vec_normalize.save(path)``); ``get_vec_normalize`` finds it.
- **Gymnasium vector envs with ``NEXT_STEP`` (the default) or ``DISABLED`` autoreset**:
  ``SameStepAutoreset``. Where an episode ends, it resets that sub-env at once
  (``reset(options={"reset_mask": ...})``, which both modes accept), so no step is a dummy one.

SB3 is never imported here unless an SB3 object was passed in: SB3 VecEnvs are recognised by
their methods (``step_async``, ``step_wait``, ``env_method``), so the agents run without SB3.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, iterate

from rlrobot.errors import UnsupportedEnvError


@runtime_checkable
class SB3VecEnv(Protocol):
    """What rlrobot uses of a Stable-Baselines3 ``VecEnv`` (duck-typed: no SB3 import)."""

    num_envs: int
    observation_space: gym.Space
    action_space: gym.Space

    def reset(self) -> Any:
        """Reset every env; return the batched observations."""

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step of every env."""

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Finish the step: ``(observations, rewards, dones, infos)``."""

    def env_method(self, method_name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call a method of every env."""

    def close(self) -> None:
        """Close every env."""


def is_sb3_vec_env(env: Any) -> bool:
    """Whether ``env`` is a Stable-Baselines3 ``VecEnv`` (by its methods, SB3 not imported)."""
    return isinstance(env, SB3VecEnv) and not isinstance(env, (gym.Env, gym.vector.VectorEnv))


def per_env_info(infos: dict[str, Any], index: int, nested: bool = False) -> dict[str, Any]:
    """The info of sub-env ``index`` out of a batched Gymnasium vector info (masks ``_key``).

    Inside a dict that is itself masked, a key without a mask belongs to every env that gave
    the dict: Gymnasium's vector ``RecordEpisodeStatistics`` writes ``{"r", "l", "t"}`` so.
    """
    info = {}
    for key, value in infos.items():
        mask = infos.get(f"_{key}")
        is_mask = key.startswith("_") and key[1:] in infos
        if is_mask or (mask is None and not nested) or (mask is not None and not mask[index]):
            continue  # a mask itself, or a key this env did not give
        info[key] = per_env_info(value, index, True) if isinstance(value, dict) else value[index]
    return info


class SB3VecEnvAdapter(gym.vector.VectorEnv):
    """A Stable-Baselines3 ``VecEnv`` as a ``SAME_STEP`` Gymnasium vector env.

    ``terminated`` is ``dones`` where the info has no ``TimeLimit.truncated``; an episode that
    hits its time limit and terminates in the same step counts as terminated, as in SB3.

    Args:
        venv: The SB3 VecEnv, wrappers included; it is stepped and closed by the adapter.
    """

    def __init__(self, venv: SB3VecEnv) -> None:
        self.venv = venv
        self.num_envs = venv.num_envs
        self.single_observation_space = venv.observation_space
        self.single_action_space = venv.action_space
        self.observation_space = batch_space(venv.observation_space, self.num_envs)
        self.action_space = batch_space(venv.action_space, self.num_envs)
        self.metadata = {
            **(getattr(venv, "metadata", None) or {}),
            "autoreset_mode": AutoresetMode.SAME_STEP,
        }
        self.render_mode = getattr(venv, "render_mode", None)

    @property
    def envs(self) -> list[gym.Env]:
        """The sub-envs, where they live in this process (SB3's ``DummyVecEnv``; HER reads one)."""
        return self.venv.unwrapped.envs

    @property
    def _reset_infos(self) -> list[dict[str, Any]]:
        # SB3's wrappers keep a ``reset_infos`` of their own that stays empty; the base VecEnv
        # holds the real ones.
        return self.venv.unwrapped.reset_infos

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env (env ``i`` seeded ``seed + i``, as SB3's ``VecEnv.seed`` does)."""
        if seed is not None:
            self.venv.seed(seed)
        if options is not None:
            self.venv.set_options(options)
        observations = self.venv.reset()
        infos: dict[str, Any] = {}
        for index, info in enumerate(self._reset_infos):
            infos = self._add_info(infos, info, index)
        return observations, infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; where an episode ended, the observation is the next episode's first."""
        self.venv.step_async(actions)
        observations, rewards, dones, step_infos = self.venv.step_wait()
        dones = np.asarray(dones, dtype=bool)
        truncated = np.array([bool(info.get("TimeLimit.truncated")) for info in step_infos])
        truncated &= dones
        infos: dict[str, Any] = {}
        for index, step_info in enumerate(step_infos):
            info = {
                key: value
                for key, value in step_info.items()
                if key not in ("terminal_observation", "TimeLimit.truncated")
            }
            if dones[index]:
                final = {"final_obs": step_info["terminal_observation"], "final_info": info}
                infos = self._add_info(infos, final, index)
                info = self._reset_infos[index]
            infos = self._add_info(infos, info, index)
        rewards = np.asarray(rewards, dtype=np.float64)
        return observations, rewards, dones & ~truncated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        """Close the SB3 VecEnv."""
        self.venv.close()


class SameStepAutoreset(gym.vector.VectorWrapper):
    """A ``NEXT_STEP`` or ``DISABLED`` autoreset Gymnasium vector env, stepped as ``SAME_STEP``.

    A sub-env whose episode ends is reset in the same ``step`` (unseeded, as ``SAME_STEP`` does)
    through ``reset(options={"reset_mask": ended})``; its final observation and info go into
    ``info["final_obs"]`` and ``info["final_info"]``.

    Args:
        env: The vector env; it must accept ``reset_mask`` (Gymnasium's own do).

    Raises:
        UnsupportedEnvError: ``env.metadata["autoreset_mode"]`` is neither of the two.
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        mode = env.metadata.get("autoreset_mode")
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED):
            raise UnsupportedEnvError(
                f"vector env {type(env).__name__} has metadata['autoreset_mode']={mode!r}; "
                "rlrobot takes AutoresetMode.SAME_STEP, NEXT_STEP or DISABLED"
            )
        super().__init__(env)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}

    @property
    def envs(self) -> list[gym.Env]:
        """The sub-envs of a ``SyncVectorEnv`` (HER reads one)."""
        return self.env.envs

    @property
    def env_fns(self) -> list[Any]:
        """The env factories of an ``AsyncVectorEnv`` (HER builds a probe env with one)."""
        return self.env.env_fns

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env, resetting those whose episode ended."""
        observations, rewards, terminated, truncated, step_infos = self.env.step(actions)
        ended = np.logical_or(terminated, truncated)
        if not ended.any():
            return observations, rewards, terminated, truncated, step_infos
        final_observations = list(iterate(self.single_observation_space, observations))
        observations, reset_infos = self.env.reset(options={"reset_mask": ended})
        infos: dict[str, Any] = {}
        for index in range(self.num_envs):
            info = per_env_info(step_infos, index)
            if ended[index]:
                final = {"final_obs": final_observations[index], "final_info": info}
                infos = self._add_info(infos, final, index)
                info = per_env_info(reset_infos, index)
            infos = self._add_info(infos, info, index)
        return observations, rewards, terminated, truncated, infos


def to_same_step(env: gym.vector.VectorEnv | SB3VecEnv) -> gym.vector.VectorEnv:
    """Return ``env`` as a ``SAME_STEP`` Gymnasium vector env, adapted where it is another kind.

    Raises:
        TypeError: ``env`` is neither a Gymnasium vector env nor an SB3 VecEnv.
    """
    if is_sb3_vec_env(env):
        return SB3VecEnvAdapter(env)
    if not isinstance(env, gym.vector.VectorEnv):
        raise TypeError(f"expected a Gymnasium vector env or an SB3 VecEnv, got {type(env)}")
    if env.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP:
        return env
    return SameStepAutoreset(env)


def get_sb3_vec_env(env: gym.vector.VectorEnv | None) -> SB3VecEnv | None:
    """Return the SB3 VecEnv a vector env adapts (under any vector wrappers), or None."""
    while isinstance(env, gym.vector.VectorWrapper):
        env = env.env
    return env.venv if isinstance(env, SB3VecEnvAdapter) else None


def get_vec_normalize(env: gym.vector.VectorEnv | None) -> Any:
    """Return the SB3 ``VecNormalize`` inside an adapted SB3 VecEnv, or None (SB3's meaning)."""
    venv = get_sb3_vec_env(env)
    if venv is None:
        return None
    # An SB3 VecEnv was passed in, so SB3 is installed and already imported.
    from stable_baselines3.common.vec_env import unwrap_vec_normalize

    return unwrap_vec_normalize(venv)
