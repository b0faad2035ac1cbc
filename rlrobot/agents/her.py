"""Hindsight Experience Replay (Andrychowicz et al., 2017) as a replay buffer with relabelling.

Works with any goal-conditioned env: ``Dict`` observations with ``observation``,
``achieved_goal`` and ``desired_goal``, and a vectorised ``compute_reward(achieved_goal,
desired_goal, info)`` (rlrobot's Reach, panda-gym, Gymnasium-Robotics …). Goals are relabelled
when a minibatch is sampled ("online" HER, as in SB3): of every ``n_sampled_goal + 1`` sampled
transitions, ``n_sampled_goal`` get a new goal, the achieved goal of a transition ``j`` of the
same episode, chosen by ``goal_selection_strategy``:

- ``future``: ``j`` uniform among this transition and the later ones of its episode;
- ``final``: ``j`` the last transition of the episode;
- ``episode``: ``j`` uniform over the whole episode;

and their reward is recomputed as ``compute_reward(next achieved goal, new goal, {})``; with
n-step returns, each of the summed rewards is. For an episode still running, its newest stored
transition stands in for its end. ``terminated`` is kept as stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.common.replay_buffer import ReplayBuffer, ReplaySample
from rlrobot.errors import UnsupportedEnvError

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
GOAL_SELECTION_STRATEGIES = ("future", "final", "episode")
ComputeReward = Callable[[np.ndarray, np.ndarray, Any], np.ndarray]


def check_goal_space(observation_space: gym.Space) -> None:
    """Raise ``UnsupportedEnvError`` unless the space is a goal-conditioned ``Dict``."""
    if not isinstance(observation_space, gym.spaces.Dict) or not set(GOAL_KEYS) <= set(
        observation_space.spaces
    ):
        raise UnsupportedEnvError(
            f"HER needs a Dict observation space with keys {GOAL_KEYS}, got {observation_space}"
        )
    if observation_space["achieved_goal"].shape != observation_space["desired_goal"].shape:
        raise UnsupportedEnvError("achieved_goal and desired_goal must have the same shape for HER")


def get_compute_reward(env: gym.Env | gym.vector.VectorEnv) -> ComputeReward:
    """Return the env's vectorised ``compute_reward``, callable in this process.

    For a vector env it is taken from the first sub-env (sync) or from a probe env built in
    this process with the same factory (async), so relabelling needs no inter-process call.

    Raises:
        UnsupportedEnvError: The env is not goal-conditioned, or a vector env keeps neither its
            envs nor their factories in this process.
    """
    if isinstance(env, gym.vector.VectorEnv):
        check_goal_space(env.single_observation_space)
        if hasattr(env, "envs"):
            probe = env.envs[0]
        elif hasattr(env, "env_fns"):
            probe = env.env_fns[0]()
        else:  # e.g. an SB3 SubprocVecEnv: its envs live in other processes, its factories too
            raise UnsupportedEnvError(
                f"HER needs compute_reward in this process, and {type(env).__name__} keeps "
                "neither its envs nor their factories here; use a DummyVecEnv, a Gymnasium "
                "vector env or an env id"
            )
    else:
        check_goal_space(env.observation_space)
        probe = env
    try:
        return probe.get_wrapper_attr("compute_reward")
    except AttributeError:
        raise UnsupportedEnvError(
            f"HER needs an env with compute_reward; {probe} has none{missing_reason(probe)}"
        ) from None


def missing_reason(env: gym.Env) -> str:
    """Return ``": <why>"`` when the env's ``compute_reward`` raises to say why it is absent."""
    try:
        env.unwrapped.compute_reward  # noqa: B018 (rlrobot's envs raise with the reason)
    except AttributeError as error:
        return f": {error}"
    return ""


class HerReplayBuffer(ReplayBuffer):
    """Replay buffer that relabels goals of sampled transitions; see the module docstring.

    Args:
        buffer_size: Number of transitions kept (over all envs).
        observation_space: Goal-conditioned ``Dict`` space.
        action_space: The action space.
        compute_reward: Vectorised ``compute_reward(achieved_goal, desired_goal, info)``.
        n_envs: Number of parallel envs.
        gamma: Discount factor γ.
        n_steps: Length of the n-step returns (1: one-step TD targets).
        n_sampled_goal: Relabelled goals per real one (k); the relabelled fraction is k/(k+1).
        goal_selection_strategy: ``"future"``, ``"final"`` or ``"episode"``.
        seed: Seed of the sampling generator.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: gym.spaces.Dict,
        action_space: gym.Space,
        compute_reward: ComputeReward,
        n_envs: int = 1,
        gamma: float = 0.99,
        n_steps: int = 1,
        n_sampled_goal: int = 4,
        goal_selection_strategy: str = "future",
        seed: int | None = None,
    ) -> None:
        check_goal_space(observation_space)
        if goal_selection_strategy not in GOAL_SELECTION_STRATEGIES:
            raise ValueError(
                f"goal_selection_strategy must be one of {GOAL_SELECTION_STRATEGIES}, "
                f"got {goal_selection_strategy!r}"
            )
        if n_sampled_goal < 1:
            raise ValueError(f"n_sampled_goal must be >= 1, got {n_sampled_goal}")
        super().__init__(buffer_size, observation_space, action_space, n_envs, gamma, n_steps, seed)
        self.compute_reward = compute_reward
        self.n_sampled_goal = n_sampled_goal
        self.her_ratio = 1.0 - 1.0 / (n_sampled_goal + 1)
        self.goal_selection_strategy = goal_selection_strategy
        shape = (self.n_rows, n_envs)
        # Row of each transition's episode start, and of its episode end (-1 while running).
        self.episode_start = np.zeros(shape, dtype=np.int32)
        self.episode_end = np.full(shape, -1, dtype=np.int32)
        self.current_episode_start = np.zeros(n_envs, dtype=np.int32)

    def _extra_nbytes(self) -> int:
        return self.episode_start.nbytes + self.episode_end.nbytes

    def add(
        self,
        observations: dict[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: dict[str, np.ndarray],
        terminated: np.ndarray,
        episode_ends: np.ndarray,
    ) -> None:
        """Store one vector step and the episode boundaries (see ``ReplayBuffer.add``)."""
        row = self.pos
        self.episode_start[row] = self.current_episode_start
        self.episode_end[row] = -1
        super().add(observations, actions, rewards, next_observations, terminated, episode_ends)
        self._close_episodes(row, np.asarray(episode_ends, dtype=bool))

    def truncate_episodes(self) -> None:
        """End every running episode at the newest row (see ``ReplayBuffer.truncate_episodes``)."""
        if self.pos == 0 and not self.full:
            return
        row = (self.pos - 1) % self.n_rows
        running = ~self.episode_ends[row]
        super().truncate_episodes()
        self._close_episodes(row, running)

    def _close_episodes(self, row: int, ended: np.ndarray) -> None:
        """Record ``row`` as the episode end of the envs in the mask ``ended`` ``(n_envs,)``."""
        for env in np.flatnonzero(ended):
            length = (row - self.current_episode_start[env]) % self.n_rows + 1
            rows = (self.current_episode_start[env] + np.arange(length)) % self.n_rows
            self.episode_end[rows, env] = row
        self.current_episode_start[ended] = self.pos

    def get_samples(self, rows: np.ndarray, envs: np.ndarray) -> ReplaySample:
        """Return transitions at ``(rows, envs)``, the first ``k/(k+1)`` with new goals."""
        sample = super().get_samples(rows, envs)
        n_relabelled = round(self.her_ratio * len(rows))
        if n_relabelled == 0:
            return sample
        rows, envs = rows[:n_relabelled], envs[:n_relabelled]
        goal_rows = self.sample_goal_rows(rows, envs)
        new_goals = self.get_next_observations(goal_rows, envs, ("achieved_goal",))["achieved_goal"]
        for observations in (sample.observations, sample.next_observations):
            observations["desired_goal"][:n_relabelled] = new_goals
        sample.rewards[:n_relabelled] = self.compute_relabelled_rewards(rows, envs, new_goals)
        return sample

    def compute_relabelled_rewards(
        self, rows: np.ndarray, envs: np.ndarray, new_goals: np.ndarray
    ) -> np.ndarray:
        """The (n-step) rewards of the transitions at ``(rows, envs)`` under ``new_goals``.

        One ``compute_reward`` call covers every summed step of every transition.
        """
        mask = self.get_n_step_mask(rows, envs)
        steps, columns = np.nonzero(mask)
        achieved = self.get_next_observations(
            (rows[columns] + steps) % self.n_rows, envs[columns], ("achieved_goal",)
        )["achieved_goal"]
        step_rewards = np.asarray(
            self.compute_reward(achieved, new_goals[columns], {}), dtype=np.float64
        )
        rewards = np.zeros(mask.shape, dtype=np.float64)
        rewards[steps, columns] = self.gamma**steps * step_rewards
        return rewards.sum(axis=0).astype(np.float32)

    def sample_goal_rows(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Rows of the transitions whose next achieved goals become the new goals."""
        end_rows = self.episode_end[rows, envs]
        running = end_rows < 0
        newest = (self.pos - 1) % self.n_rows
        end_rows = np.where(running, newest, end_rows)
        steps_to_end = (end_rows - rows) % self.n_rows
        if self.goal_selection_strategy == "final":
            return end_rows
        if self.goal_selection_strategy == "future":
            offsets = self.rng.integers(0, steps_to_end + 1)
            return (rows + offsets) % self.n_rows
        # "episode": from the episode start, or the oldest stored row if it was overwritten.
        oldest = (self.pos + 1) % self.n_rows if self.full else 0
        steps_back = np.minimum(
            (rows - self.episode_start[rows, envs]) % self.n_rows, (rows - oldest) % self.n_rows
        )
        offsets = self.rng.integers(0, steps_back + steps_to_end + 1)
        return (rows - steps_back + offsets) % self.n_rows

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the contents (with episode boundaries) as flat ``{name: array}``."""
        return {
            **super().state_dict(),
            "episode_start": self.episode_start,
            "episode_end": self.episode_end,
            "current_episode_start": self.current_episode_start,
        }

    def _index_ranges(self, final_capacity: int) -> dict[str, tuple[int, int]]:
        """Add the episode boundaries, rows of the buffer (``episode_end`` -1: still running)."""
        return {
            **super()._index_ranges(final_capacity),
            "episode_start": (0, self.n_rows),
            "episode_end": (-1, self.n_rows),
            "current_episode_start": (0, self.n_rows),
        }
