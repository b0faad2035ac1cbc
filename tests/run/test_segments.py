"""Episodes restarted at a checkpoint end like time-limit truncations in the replay buffers."""

import gymnasium as gym
import numpy as np

from rlrobot.agents.her import HerReplayBuffer
from rlrobot.common.replay_buffer import ReplayBuffer

BOX = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
GOAL_SPACE = gym.spaces.Dict({"observation": BOX, "achieved_goal": BOX, "desired_goal": BOX})


def _column(value):
    return np.array([[value], [value + 100.0]], dtype=np.float32)  # (n_envs=2, 1)


def _add(buffer, observation, next_observation, ended=(False, False)):
    buffer.add(
        observation,
        np.zeros((2, 1), np.float32),
        np.ones(2, np.float32),
        next_observation,
        np.zeros(2, bool),
        np.array(ended),
    )


def test_truncate_episodes_keeps_the_real_next_observation():
    buffer = ReplayBuffer(100, BOX, BOX, n_envs=2, gamma=0.5, n_steps=3)
    _add(buffer, _column(0.0), _column(1.0))
    _add(buffer, _column(1.0), _column(2.0), ended=(True, False))  # env 0 ended by itself
    buffer.truncate_episodes()
    # The envs restart from new observations (here 50); the next add writes them into row 2.
    _add(buffer, _column(50.0), _column(51.0))
    rows, envs = np.array([1, 1, 0]), np.array([0, 1, 1])
    next_observations = buffer.get_next_observations(rows, envs)
    np.testing.assert_array_equal(next_observations[:, 0], [2.0, 102.0, 101.0])
    assert buffer.episode_ends[1].all() and not buffer.terminated[1].any()
    # n-step sums stop at the restart: from row 0, env 1 sums rows 0 and 1 only (1 + 0.5·1).
    samples = buffer.get_samples(np.array([0]), np.array([1]))
    assert samples.rewards[0] == np.float32(1.5)
    np.testing.assert_array_equal(samples.next_observations[:, 0], [102.0])


def test_her_truncate_episodes_closes_the_episodes():
    buffer = HerReplayBuffer(
        100,
        GOAL_SPACE,
        BOX,
        lambda achieved, desired, info: -np.abs(achieved - desired)[..., 0],
        n_envs=2,
    )

    def observation(value):
        column = _column(value)
        return {"observation": column, "achieved_goal": column, "desired_goal": column}

    _add(buffer, observation(0.0), observation(1.0))
    _add(buffer, observation(1.0), observation(2.0))
    buffer.truncate_episodes()
    np.testing.assert_array_equal(buffer.episode_end[:2], [[1, 1], [1, 1]])
    np.testing.assert_array_equal(buffer.current_episode_start, [2, 2])
    _add(buffer, observation(50.0), observation(51.0))
    assert buffer.episode_start[2].tolist() == [2, 2]
    final = buffer.get_next_observations(np.array([1]), np.array([1]))
    assert final["achieved_goal"][0, 0] == 102.0
