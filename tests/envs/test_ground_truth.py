"""The envs' public ground truth: body poses, labels' true values, proprioception, views."""

import gymnasium as gym
import numpy as np
import pytest

import rlrobot
from rlrobot.sim import Camera


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_ground_truth_names_every_body_with_finite_positions(env_id):
    env = gym.make(env_id)
    observation, _ = env.reset(seed=0)
    unwrapped = env.unwrapped
    truth = unwrapped.get_ground_truth()
    assert {f"{body}_position" for body in unwrapped.body_names} <= set(truth)
    for name, value in truth.items():
        assert value.dtype == np.float64 and np.all(np.isfinite(value)), name
    for body in unwrapped.body_names:
        assert truth[f"{body}_position"].shape == (3,)
    if isinstance(observation, dict):
        for key in ("achieved_goal", "desired_goal"):
            np.testing.assert_allclose(truth[key], observation[key], atol=1e-6)
    proprioception = unwrapped.get_proprioception()
    assert proprioception.dtype == np.float32 and proprioception.ndim == 1
    state = observation["observation"] if isinstance(observation, dict) else observation
    np.testing.assert_array_equal(state[: len(proprioception)], proprioception)
    env.close()


def test_reach_ground_truth_is_where_the_task_placed_the_target():
    env = gym.make("rlrobot/Reach-v0")
    for seed in range(3):
        observation, _ = env.reset(seed=seed)
        truth = env.unwrapped.get_ground_truth()
        np.testing.assert_allclose(truth["target_position"], env.unwrapped.task.goal)
        np.testing.assert_allclose(truth["target_position"], observation["desired_goal"], 1e-6)
        np.testing.assert_allclose(truth["ee_position"], observation["achieved_goal"], atol=1e-6)
        assert truth["ee_position"].shape == (3,)
        low, high = env.unwrapped.task.goal_low, env.unwrapped.task.goal_high
        assert np.all(low <= truth["target_position"]) and np.all(truth["target_position"] <= high)
    env.close()


def test_push_ground_truth_has_the_cube_and_the_target():
    env = gym.make("rlrobot/Push-v0")
    observation, _ = env.reset(seed=1)
    truth = env.unwrapped.get_ground_truth()
    np.testing.assert_allclose(truth["object_position"], observation["achieved_goal"], atol=1e-6)
    np.testing.assert_allclose(truth["target_position"], observation["desired_goal"], atol=1e-6)
    env.close()


def test_body_pose_is_a_copy_with_a_unit_quaternion_and_unknown_bodies_raise():
    env = gym.make("rlrobot/Reach-v0")
    env.reset(seed=0)
    position, orientation = env.unwrapped.get_body_pose("target")
    assert position.shape == (3,) and orientation.shape == (4,)
    assert np.linalg.norm(orientation) == pytest.approx(1.0)
    position[:] = 99.0  # the caller's copy: the simulation's pose is unchanged
    assert not np.allclose(env.unwrapped.get_body_pose("target")[0], 99.0)
    with pytest.raises(KeyError, match="no body named 'cube'"):
        env.unwrapped.get_body_pose("cube")
    env.close()


def test_proprioception_has_no_observation_noise():
    env = gym.make("rlrobot/CartPole-v0", randomization={"observation_noise": 0.1})
    observation, _ = env.reset(seed=0)
    proprioception = env.unwrapped.get_proprioception()
    np.testing.assert_allclose(proprioception, env.unwrapped.robot.get_obs(), rtol=1e-6)
    assert not np.allclose(observation, proprioception)
    env.close()


def test_render_view_from_the_scene_camera_is_the_render():
    env = gym.make("rlrobot/Reach-v0", render_mode="rgb_array", render_width=48, render_height=32)
    env.reset(seed=0)
    unwrapped = env.unwrapped
    view = unwrapped.render_view(unwrapped.camera, 48, 32)
    assert view.shape == (32, 48, 3) and view.dtype == np.uint8
    np.testing.assert_array_equal(view, env.render())
    side = unwrapped.render_view(Camera(yaw=90.0, pitch=0.0), 48, 32)
    assert not np.array_equal(side, view)
    env.close()
