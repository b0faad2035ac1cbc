"""Wrappers of the robot envs: multi-view images."""

import gymnasium as gym
import numpy as np

from rlrobot.envs.wrappers import MultiViewImages
from rlrobot.sim import Camera


def test_multi_view_images_place_views_side_by_side() -> None:
    cameras = [Camera(yaw=0.0, pitch=0.0, distance=0.75), Camera(yaw=90.0, pitch=0.0)]
    env = MultiViewImages(gym.make("rlrobot/Reach-v0"), cameras, size=32)
    observation, _ = env.reset(seed=0)
    assert env.observation_space.shape == (32, 64, 3) and observation.dtype == np.uint8
    scene = env.unwrapped
    np.testing.assert_array_equal(observation[:, 32:], scene.render_view(cameras[1], 32, 32))
    np.testing.assert_array_equal(observation[:, 32:], scene.sim.render(32, 32, cameras[1]))
    assert not np.array_equal(observation[:, :32], observation[:, 32:])
    env.close()
