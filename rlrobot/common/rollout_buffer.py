"""The on-policy agents' rollout storage: preallocated ``(n_steps, n_envs, …)`` NumPy arrays.

Besides storing one rollout and flattening it for the update, it can join steps held back
from earlier rollouts in front of a new one (``prepend``, ``hold_back``): reward
redistribution trains on a step only once its delayed reward is released (see
``rlrobot.agents.on_policy``). ``valid`` marks the steps to train on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobot.common.memory import check_memory
from rlrobot.envs.state import check_dict, check_like
from rlrobot.errors import CheckpointError


def _action_dtype(action_space: gym.Space) -> type:
    """Return the dtype actions are stored in: int64 for ``Discrete``, float32 otherwise."""
    return np.int64 if isinstance(action_space, gym.spaces.Discrete) else np.float32


class RolloutBuffer:
    """Preallocated storage of one rollout, ``(n_steps, n_envs, …)`` NumPy arrays.

    ``next_values[t]`` holds ``V(s_{t+1})`` of the real next observation: the value of the next
    stored observation, of the real final observation after a truncation, or of the
    observation after the last step.
    """

    def __init__(
        self, n_steps: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space
    ) -> None:
        self.check_size(n_steps, n_envs, observation_space, action_space)
        self.n_steps, self.n_envs = n_steps, n_envs

        def zeros(space: gym.Space) -> np.ndarray:
            return np.zeros((n_steps, n_envs, *space.shape), dtype=space.dtype)

        if isinstance(observation_space, gym.spaces.Dict):
            self.observations: Any = {k: zeros(s) for k, s in observation_space.spaces.items()}
        else:
            self.observations = zeros(observation_space)
        self.actions = np.zeros(
            (n_steps, n_envs, *action_space.shape), dtype=_action_dtype(action_space)
        )
        shape = (n_steps, n_envs)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.episode_ends = np.zeros(shape, dtype=bool)
        self.values = np.zeros(shape, dtype=np.float32)
        self.next_values = np.zeros(shape, dtype=np.float32)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        # False for steps not to train on (pending delayed rewards, padding).
        self.valid = np.ones(shape, dtype=bool)

    @classmethod
    def check_size(
        cls, n_steps: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space
    ) -> int:
        """Return the bytes a rollout of this size takes; raise ``ConfigError`` naming
        ``n_steps`` and ``n_envs`` where it exceeds the machine's memory."""
        spaces = (
            observation_space.spaces.values()
            if isinstance(observation_space, gym.spaces.Dict)
            else [observation_space]
        )
        shape = (n_steps, n_envs)
        arrays = [((*shape, *space.shape), space.dtype) for space in spaces]
        arrays.append(((*shape, *action_space.shape), _action_dtype(action_space)))
        # The per-step arrays: float32 ones and the three bool ones (terminated, ends, valid).
        arrays += [(shape, np.float32)] * (len(cls.STEP_ARRAYS) - 4) + [(shape, bool)] * 3
        return check_memory(f"n_steps={n_steps} × n_envs={n_envs}", "rollout buffer", arrays)

    # The per-step arrays besides the observations.
    STEP_ARRAYS = (
        "actions",
        "rewards",
        "terminated",
        "episode_ends",
        "values",
        "next_values",
        "log_probs",
        "advantages",
        "returns",
        "valid",
    )

    def _map_steps(
        self, n_steps: int, transform: Callable[[np.ndarray, str], np.ndarray]
    ) -> RolloutBuffer:
        """Return a buffer of ``n_steps`` steps whose arrays are ``transform(array, name)``."""
        result = copy.copy(self)
        result.n_steps = n_steps
        for name in self.STEP_ARRAYS:
            setattr(result, name, transform(getattr(self, name), name))
        if isinstance(self.observations, dict):
            result.observations = {
                key: transform(value, f"observations/{key}")
                for key, value in self.observations.items()
            }
        else:
            result.observations = transform(self.observations, "observations")
        return result

    def _array(self, name: str) -> np.ndarray:
        if name.startswith("observations/"):
            return self.observations[name.split("/", 1)[1]]
        return self.observations if name == "observations" else getattr(self, name)

    def prepend(self, earlier: RolloutBuffer) -> RolloutBuffer:
        """Return a buffer of ``earlier``'s steps followed by this one's, per env."""
        return self._map_steps(
            earlier.n_steps + self.n_steps,
            lambda array, name: np.concatenate([earlier._array(name), array], axis=0),
        )

    def tail(self, n_steps: int) -> RolloutBuffer:
        """Return a copy of the last ``n_steps`` steps as a buffer."""
        start = self.n_steps - n_steps
        return self._map_steps(n_steps, lambda array, _: array[start:].copy())

    def hold_back(self, pending_lengths: np.ndarray) -> RolloutBuffer | None:
        """Return each env's last ``pending_lengths`` steps, right-aligned over padding.

        Padding steps are invalid zero-reward steps that end at once, so no chunk or episode
        joins them when the result is prepended to the next rollout. None when nothing waits.
        """
        n_pending = int(pending_lengths.max())
        if n_pending == 0:
            return None
        pending = self.tail(n_pending)
        pending.valid = np.arange(n_pending)[:, None] >= n_pending - pending_lengths
        pending.episode_ends |= ~pending.valid
        pending.rewards[~pending.valid] = 0.0
        return pending

    def state_dict(self) -> dict[str, Any]:
        """Return ``n_steps`` and every array by name (observations: a dict for ``Dict``)."""
        arrays = {name: getattr(self, name) for name in self.STEP_ARRAYS}
        return {"n_steps": self.n_steps, "observations": self.observations, **arrays}

    @classmethod
    def from_state_dict(
        cls, state: Any, n_envs: int, observation_space: gym.Space, action_space: gym.Space
    ) -> RolloutBuffer:
        """Rebuild a buffer saved by ``state_dict``, each array checked against the spaces.

        Raises:
            CheckpointError: A missing array, or one of another dtype or shape.
        """
        check_dict("rollout", state, ("n_steps", "observations", *cls.STEP_ARRAYS))
        n_steps = state["n_steps"]
        if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
            raise CheckpointError(f"saved rollout has n_steps {n_steps!r}, expected an int >= 1")
        buffer = cls(n_steps, n_envs, observation_space, action_space)
        for name in cls.STEP_ARRAYS:
            setattr(buffer, name, check_like(f"rollout/{name}", state[name], getattr(buffer, name)))
        if isinstance(buffer.observations, dict):
            check_dict("rollout/observations", state["observations"], buffer.observations)
            buffer.observations = {
                key: check_like(f"rollout/observations/{key}", state["observations"][key], value)
                for key, value in buffer.observations.items()
            }
        else:
            buffer.observations = check_like(
                "rollout/observations", state["observations"], buffer.observations
            )
        return buffer

    def flat_observations(self) -> Any:
        """Return the observations with the two leading dims ``(n_steps, n_envs)`` merged."""
        if isinstance(self.observations, dict):
            return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.observations.items()}
        return self.observations.reshape(-1, *self.observations.shape[2:])

    def store_observations(self, step: int, observations: Any) -> None:
        """Copy a batch of (normalised) observations into row ``step``."""
        if isinstance(self.observations, dict):
            for key, array in self.observations.items():
                array[step] = observations[key]
        else:
            self.observations[step] = observations

    def flatten(self, device: torch.device) -> dict[str, Any]:
        """Return the rollout as ``(n_steps * n_envs, …)`` tensors on ``device``."""

        valid = None if self.valid.all() else self.valid.reshape(-1)

        def flat(array: np.ndarray) -> torch.Tensor:
            rows = array.reshape(-1, *array.shape[2:])
            return torch.as_tensor(rows if valid is None else rows[valid], device=device)

        observations = (
            {k: flat(v) for k, v in self.observations.items()}
            if isinstance(self.observations, dict)
            else flat(self.observations)
        )
        return {
            "observations": observations,
            "actions": flat(self.actions),
            "values": flat(self.values),
            "log_probs": flat(self.log_probs),
            "advantages": flat(self.advantages),
            "returns": flat(self.returns),
        }
