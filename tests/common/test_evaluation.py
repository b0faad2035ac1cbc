"""The one evaluation loop: hand-computed returns of a scripted policy, seeds, successes."""

import gymnasium as gym
import numpy as np
import pytest

from rlrobot.common.evaluation import EvaluationResult, evaluate_policy
from rlrobot.errors import UnsupportedEnvError


class Countdown(gym.Env):
    """Counts down from ``2 + seed % 3`` to 0; reward = the action; success = last action is 1.

    The observation is the count left, so the policy ``action = count`` earns
    ``count + (count − 1) + … + 1`` in an episode of ``count`` steps.
    """

    observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)

    def __init__(self) -> None:
        self.reset_seeds = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.reset_seeds.append(seed)
        self.left = 2 + (seed or 0) % 3
        return np.array([self.left], np.float32), {}

    def step(self, action):
        self.left -= 1
        info = {"is_success": float(action[0]) == 1.0}
        return np.array([self.left], np.float32), float(action[0]), self.left == 0, False, info


def count_policy(observation, deterministic=True):
    """Play the count left when deterministic, 0 otherwise."""
    return (observation if deterministic else np.zeros_like(observation)), None


def test_scripted_policy_returns_the_hand_computed_episodes():
    env = Countdown()
    result = evaluate_policy(count_policy, env, n_episodes=3, seed=10)
    # Seeds 10, 11, 12 start at 3, 4, 2: returns 3+2+1, 4+3+2+1, 2+1.
    assert env.reset_seeds == [10, 11, 12]
    assert result.returns == [6.0, 10.0, 3.0]
    assert result.lengths == [3, 4, 2]
    assert result.successes == [1.0, 1.0, 1.0]  # the last action was 1 each time
    assert result.summary() == {
        "mean_reward": pytest.approx(19 / 3),
        "std_reward": pytest.approx(np.sqrt(74 / 9)),
        "mean_ep_length": pytest.approx(3.0),
        "std_ep_length": pytest.approx(np.sqrt(2 / 3)),
        "success_rate": 1.0,
        "n_episodes": 3,
    }


def test_stochastic_flag_reaches_the_policy_and_unseeded_resets_stay_unseeded():
    env = Countdown()
    result = evaluate_policy(count_policy, env, n_episodes=2, deterministic=False)
    assert env.reset_seeds == [None, None]
    assert result.returns == [0.0, 0.0] and result.successes == [0.0, 0.0]


def test_truncation_ends_an_episode_and_objects_with_predict_are_accepted():
    class Agent:
        def predict(self, observation, deterministic=False):
            return count_policy(observation, deterministic)

    env = gym.wrappers.TimeLimit(Countdown(), max_episode_steps=3)
    result = evaluate_policy(Agent(), env, n_episodes=2, seed=11)
    # Seed 11 starts at 4 and is cut after 3 steps (4+3+2); seed 12 starts at 2 (2+1).
    assert result.returns == [9.0, 3.0] and result.lengths == [3, 2]


def test_on_step_sees_every_transition():
    transitions = []
    evaluate_policy(
        count_policy, Countdown(), n_episodes=1, seed=0, on_step=lambda *t: transitions.append(t)
    )
    # Seed 0 starts at 2: (2 → 1, reward 2), (1 → 0, reward 1).
    assert [(float(o[0]), float(a[0]), r, float(n[0])) for o, a, r, n in transitions] == [
        (2.0, 2.0, 2.0, 1.0),
        (1.0, 1.0, 1.0, 0.0),
    ]


def test_vector_envs_are_refused_with_a_clear_error():
    envs = gym.vector.SyncVectorEnv([Countdown, Countdown])
    with pytest.raises(UnsupportedEnvError, match="one env, got a vector env of 2"):
        evaluate_policy(count_policy, envs, n_episodes=1)
    envs.close()


def test_success_rate_is_none_when_the_env_does_not_report_it():
    result = EvaluationResult(returns=[1.0, 3.0], lengths=[5, 7])
    assert result.summary()["success_rate"] is None


def test_sb3_models_are_evaluated_by_the_same_loop():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, seed=0)
    env = gym.make("CartPole-v1")
    first = evaluate_policy(model, env, n_episodes=2, seed=3)
    again = evaluate_policy(model.predict, env, n_episodes=2, seed=3)
    env.close()
    assert first == again and len(first.returns) == 2
    assert first.returns == [float(length) for length in first.lengths]  # +1 per step
