"""SB3's ``VecEnv`` interface over the vector env an agent steps: what ``get_env()`` returns.

SB3 scripts drive the model's env themselves (``obs = vec_env.reset()``, then
``obs, rewards, dones, infos = vec_env.step(actions)``) and hand it to SB3's helpers
(``evaluate_policy``, ``EvalCallback``), which test ``isinstance(env, VecEnv)``. So the view is
a real SB3 ``VecEnv`` (this module imports SB3; only ``get_env`` loads it). It steps the
agent's own env, as SB3's ``get_env`` returns the model's own VecEnv, and renames the
``SAME_STEP`` results the way ``DummyVecEnv`` presents them: where an episode ended, the
observation is the next episode's first, ``infos[i]["terminal_observation"]`` holds the last
one and ``infos[i]["TimeLimit.truncated"]`` says whether the time limit cut it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from rlrobot.vec.adapters import per_env_info


class VecEnvView(VecEnv):
    """A ``SAME_STEP`` Gymnasium vector env presented as a Stable-Baselines3 ``VecEnv``.

    Args:
        env: The vector env (``rlrobot.vec.make_vec_env``'s); stepped, not copied, and closed
            by ``close()``.
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        self.env = env
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self) -> Any:
        """Reset every env with the seeds and options set by ``seed``/``set_options``."""
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        options = self._options[0] if self._options[0] else None
        observations, infos = self.env.reset(seed=seeds, options=options)
        self.reset_infos = [per_env_info(infos, index) for index in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        """Keep the actions for ``step_wait`` (the step itself is synchronous)."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env; return ``(observations, rewards, dones, infos)`` as SB3 does."""
        observations, rewards, terminated, truncated, batched_infos = self.env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos = []
        for index in range(self.num_envs):
            info = per_env_info(batched_infos, index)
            final_info = info.pop("final_info", None)
            final_observation = info.pop("final_obs", None)
            if dones[index]:
                self.reset_infos[index] = info
                info = {
                    **(final_info or {}),
                    "terminal_observation": final_observation,
                    "TimeLimit.truncated": bool(truncated[index] and not terminated[index]),
                }
            infos.append(info)
        return observations, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        """Close the vector env (and so the agent's env, as SB3's ``get_env().close()`` does)."""
        self.env.close()

    def _selected(self, values: Sequence[Any], indices: VecEnvIndices) -> list[Any]:
        return [values[index] for index in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return attribute ``attr_name`` of the selected envs."""
        return self._selected(self.env.get_attr(attr_name), indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set attribute ``attr_name`` of the selected envs to ``value``."""
        selected = set(self._get_indices(indices))
        current = self.env.get_attr(attr_name) if len(selected) < self.num_envs else None
        values = [value if index in selected else current[index] for index in range(self.num_envs)]
        self.env.set_attr(attr_name, values)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call ``method_name`` on the selected envs (on all where they run in other processes)."""
        envs = getattr(self.env, "envs", None)
        if envs is not None:
            return [
                getattr(envs[index], method_name)(*method_args, **method_kwargs)
                for index in self._get_indices(indices)
            ]
        results = self.env.call(method_name, *method_args, **method_kwargs)
        return self._selected(results, indices)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Whether each selected env is wrapped in ``wrapper_class`` (False out of process)."""
        envs = getattr(self.env, "envs", None)
        return [
            envs is not None and is_wrapped(envs[index], wrapper_class)
            for index in self._get_indices(indices)
        ]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Return each env's ``render()`` frame (envs made with ``render_mode="rgb_array"``)."""
        return list(self.env.call("render"))
