"""Task-level behaviour of CartPole and Reach."""

import gymnasium as gym
import numpy as np
import pytest


def test_cartpole_terminates_when_the_pole_falls():
    env = gym.make("rlrobot/CartPole-v0")
    env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        observation, reward, terminated, truncated, _ = env.step(1)  # always push right
        steps += 1
        assert reward == 1.0
    env.close()
    assert terminated and not truncated
    assert abs(observation[2]) > 0.2094 or abs(observation[0]) > 2.4
    assert 5 < steps < 100  # a constant push topples the pole quickly


def test_cartpole_continuous_force_moves_the_cart_in_its_direction():
    env = gym.make("rlrobot/CartPoleContinuous-v0")
    env.reset(seed=0)
    for _ in range(5):
        observation, *_ = env.step(np.array([-1.0], dtype=np.float32))
    env.close()
    assert observation[1] < -0.3  # cart velocity towards −x


def test_cartpole_is_truncated_by_the_time_limit():
    env = gym.make("rlrobot/CartPole-v0", max_episode_steps=7)
    env.reset(seed=0)
    outcomes = [env.step(step % 2)[2:4] for step in range(7)]
    env.close()
    assert outcomes[-1] == (False, True)


@pytest.mark.parametrize("reward_mode", ["dense", "sparse"])
def test_reach_compute_reward_matches_step_reward(reward_mode):
    env = gym.make("rlrobot/Reach-v0", reward_mode=reward_mode)
    observation, _ = env.reset(seed=1)
    achieved, desired, rewards = [], [], []
    for _ in range(20):
        observation, reward, _, _, info = env.step(env.action_space.sample())
        achieved.append(observation["achieved_goal"])
        desired.append(observation["desired_goal"])
        rewards.append(reward)
        single = env.unwrapped.compute_reward(
            observation["achieved_goal"], observation["desired_goal"], info
        )
        assert single == pytest.approx(reward)
    batched = env.unwrapped.compute_reward(np.array(achieved), np.array(desired), {})
    env.close()
    assert batched.shape == (20,)
    np.testing.assert_allclose(batched, rewards, rtol=1e-6)


def test_reach_success_when_the_target_is_at_the_end_effector():
    env = gym.make("rlrobot/Reach-v0", reward_mode="sparse")
    observation, _ = env.reset(seed=0)
    task = env.unwrapped.task
    task.goal = observation["achieved_goal"].astype(np.float64)
    _, reward, _, _, info = env.step(np.zeros(3, dtype=np.float32))
    assert info["is_success"] and reward == 0.0
    task.goal = task.goal + np.array([0.3, 0.0, 0.0])
    _, reward, _, _, info = env.step(np.zeros(3, dtype=np.float32))
    env.close()
    assert not info["is_success"] and reward == -1.0


@pytest.mark.parametrize("control_mode", ["ee", "joints"])
def test_reach_scripted_policy_reaches_the_target(control_mode):
    """A proportional controller on the observation solves Reach in the end-effector mode."""
    env = gym.make("rlrobot/Reach-v0", control_mode=control_mode)
    observation, _ = env.reset(seed=2)
    start_distance = np.linalg.norm(observation["achieved_goal"] - observation["desired_goal"])
    for _ in range(50):
        if control_mode == "ee":
            action = np.clip(
                (observation["desired_goal"] - observation["achieved_goal"]) / 0.05, -1, 1
            )
        else:
            action = np.zeros(7)
        observation, _, _, _, info = env.step(action.astype(np.float32))
    env.close()
    end_distance = np.linalg.norm(observation["achieved_goal"] - observation["desired_goal"])
    if control_mode == "ee":
        assert info["is_success"] and end_distance < 0.05
    else:  # zero joint displacement holds the arm where it is
        assert end_distance == pytest.approx(start_distance, abs=0.01)
