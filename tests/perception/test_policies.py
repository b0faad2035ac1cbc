"""Scripted policies: what each kind of policy turns into, and clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlrobot.errors import DatasetError
from rlrobot.perception.policies import goal_seeking_policy, make_policy


def test_goal_seeking_policy_moves_towards_the_goal_within_the_noise() -> None:
    env = gym.make("rlrobot/Reach-v0")
    env.reset(seed=0)
    policy = goal_seeking_policy(env.unwrapped, noise=0.1)
    observation = {
        "achieved_goal": np.zeros(3, np.float32),
        "desired_goal": np.array([0.01, -0.2, 0.0], np.float32),
    }
    action = policy(observation)
    assert action.dtype == np.float32 and action.shape == (3,)
    # (desired − achieved) / 0.05 = (0.2, −4, 0), clipped to [−1, 1], plus noise in ±0.1.
    np.testing.assert_allclose(action, [0.2, -1.0, 0.0], atol=0.1 + 1e-6)
    with pytest.raises(DatasetError, match="needs desired_goal"):
        policy(np.zeros(3))
    env.close()


def test_make_policy_takes_names_agents_and_callables() -> None:
    env = gym.make("rlrobot/CartPole-v0")
    random_policy, description = make_policy("random", env)
    assert description == "random" and env.action_space.contains(random_policy(None))

    class Agent:
        def predict(self, observation, deterministic=True):
            assert deterministic is False  # collection samples from the agent's policy
            return np.int64(1), None

    agent_policy, description = make_policy(Agent(), env)
    assert description == "agent:Agent" and agent_policy(None) == 1

    def push_left(observation):
        return 0

    assert make_policy(push_left, env) == (push_left, "callable:push_left")
    with pytest.raises(DatasetError, match="policy must be 'random'"):
        make_policy("greedy", env)
    with pytest.raises(DatasetError, match="cannot use 3"):
        make_policy(3, env)
    with pytest.raises(DatasetError, match="Box action of shape"):
        make_policy("goal_seeking", env)
    env.close()
