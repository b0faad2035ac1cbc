"""Running statistics and observation/reward normalisers whose state goes into checkpoints.

State dicts hold NumPy arrays only, so they can be stored as tensors in a safetensors file.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlrobot.common.networks import is_image_space


class RunningMeanStd:
    """Running mean and variance merged batch by batch (Chan et al.'s parallel algorithm).

    Args:
        shape: Shape of one sample.
        epsilon: Initial pseudo-count, keeps the first variance finite.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = np.asarray(epsilon, dtype=np.float64)

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch of samples of shape ``(batch, *shape)``."""
        batch = np.asarray(batch, dtype=np.float64)
        batch_mean, batch_var, batch_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count
        self.var = (m2 + delta**2 * self.count * batch_count / total) / total
        self.count = np.asarray(total, dtype=np.float64)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return ``{"mean", "var", "count"}`` as arrays."""
        # Arrays even where the updates left NumPy scalars (a 0-d shape): what ``load`` checks.
        return {name: np.array(getattr(self, name)) for name in ("mean", "var", "count")}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore statistics saved by ``state_dict``."""
        mean = np.asarray(state["mean"], dtype=np.float64)
        if mean.size != self.mean.size:
            raise ValueError(f"statistics of shape {mean.shape} do not fit {self.mean.shape}")
        # Earlier checkpoints stored 0-d statistics as 1-d arrays: read back in this shape.
        self.mean = mean.reshape(self.mean.shape)
        self.var = np.asarray(state["var"], dtype=np.float64).reshape(self.mean.shape)
        self.count = np.asarray(state["count"], dtype=np.float64).reshape(())


class ObservationNormalizer:
    """Normalise observations to ``clip(((obs − mean) / sqrt(var + ε)), −clip, clip)``.

    ``Dict`` observations are normalised key by key. Images (uint8) and discrete observations,
    alone or under a key, pass through unchanged.

    Args:
        observation_space: The agent's observation space.
        clip: Bound on the normalised values.
        epsilon: Added to the variance.
    """

    def __init__(
        self, observation_space: gym.Space, clip: float = 10.0, epsilon: float = 1e-8
    ) -> None:
        self.clip, self.epsilon = clip, epsilon
        spaces = (
            observation_space.spaces
            if isinstance(observation_space, gym.spaces.Dict)
            else {"": observation_space}
        )
        self.is_dict = isinstance(observation_space, gym.spaces.Dict)
        self.stats = {
            key: RunningMeanStd(space.shape)
            for key, space in spaces.items()
            if isinstance(space, gym.spaces.Box) and not is_image_space(space)
        }

    def update(self, observations: np.ndarray | dict[str, np.ndarray]) -> None:
        """Update the statistics with a batch ``(batch, *shape)`` (or a dict of batches)."""
        for key, stats in self.stats.items():
            stats.update(observations[key] if self.is_dict else observations)

    def _normalize(self, key: str, values: np.ndarray) -> np.ndarray:
        stats = self.stats[key]
        normalized = (values - stats.mean) / np.sqrt(stats.var + self.epsilon)
        return np.clip(normalized, -self.clip, self.clip).astype(np.float32)

    def normalize(
        self, observations: np.ndarray | dict[str, np.ndarray]
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Return normalised float32 observations (a new array or dict)."""
        if not self.is_dict:
            return self._normalize("", observations) if "" in self.stats else observations
        return {
            key: self._normalize(key, value) if key in self.stats else value
            for key, value in observations.items()
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the statistics as ``{"<key>/mean": array, …}``."""
        return {
            f"{key}/{name}": value
            for key, stats in self.stats.items()
            for name, value in stats.state_dict().items()
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore statistics saved by ``state_dict``."""
        for key, stats in self.stats.items():
            stats.load_state_dict(
                {name: state[f"{key}/{name}"] for name in ("mean", "var", "count")}
            )


class RewardNormalizer:
    """Scale rewards by the running standard deviation of the discounted return.

    As in SB3's ``VecNormalize``: the return ``R ← γ·R + r`` is tracked per env and reset at
    episode ends; rewards are divided by ``sqrt(var(R) + ε)`` (not centred) and clipped.

    Args:
        n_envs: Number of parallel envs.
        gamma: Discount factor of the agent.
        clip: Bound on the scaled rewards.
        epsilon: Added to the variance.
    """

    def __init__(
        self, n_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8
    ) -> None:
        self.gamma, self.clip, self.epsilon = gamma, clip, epsilon
        self.stats = RunningMeanStd(())
        self.returns = np.zeros(n_envs, dtype=np.float64)

    def update(self, rewards: np.ndarray, episode_ends: np.ndarray) -> None:
        """Track the discounted returns ``(n_envs,)`` and update the statistics."""
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(self.returns)
        self.returns[episode_ends] = 0.0

    def normalize(self, rewards: np.ndarray) -> np.ndarray:
        """Return scaled float32 rewards."""
        scaled = rewards / np.sqrt(self.stats.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the statistics (the per-episode returns are transient and not saved)."""
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore statistics saved by ``state_dict``."""
        self.stats.load_state_dict(state)


def check_statistics(field: str, state: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless a normaliser's saved variances and counts are non-negative.

    (Shapes, dtypes and finiteness are checked against the live normaliser's ``state_dict``.)
    """
    for key, value in state.items():
        if key.rsplit("/", 1)[-1] in ("var", "count") and bool((np.asarray(value) < 0).any()):
            raise ValueError(f"field '{field}.{key}' must be >= 0, got {value!r}")
