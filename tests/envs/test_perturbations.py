"""Scene perturbations: scene randomisation (colours, light, camera) and random kicks."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from rlrobot.envs.perturbations import RandomKicks, SceneRandomization, SceneRandomizer


def test_random_kicks_change_the_base_velocity_reproducibly() -> None:
    kicks = RandomKicks("ant", probability=1.0, up_speed=2.0, spin=10.0, strength_range=(1, 1))
    env = gym.make("rlrobot/Quadruped-v0")
    env.reset(seed=0)
    scene = env.unwrapped
    linear, angular = (v.copy() for v in scene.sim.get_base_velocity("ant"))
    assert kicks.apply(scene, np.random.default_rng(0))
    new_linear, new_angular = scene.sim.get_base_velocity("ant")
    np.testing.assert_allclose(new_linear - linear, [0.0, 0.0, 2.0], atol=1e-6)
    spin = new_angular - angular
    assert abs(spin[2]) < 1e-6 and np.linalg.norm(spin) == pytest.approx(10.0)
    assert not RandomKicks("ant", probability=0.0).apply(scene, np.random.default_rng(0))
    assert kicks.to_dict()["strength_range"] == [1, 1]
    env.close()


def test_scene_randomizer_redraws_colours_and_camera_from_the_start_scene() -> None:
    env = gym.make("rlrobot/Reach-v0")
    scene = env.unwrapped
    start_camera = scene.camera
    start_colors = scene.sim.get_visual_colors("target")
    settings = SceneRandomization(color_jitter=0.3, camera_angle_jitter=5.0, bodies=("target",))
    randomizer = SceneRandomizer(scene, settings)
    randomizer.apply(np.random.default_rng(0))
    first_camera, first_colors = scene.camera, scene.sim.get_visual_colors("target")
    assert first_camera != start_camera and first_colors != start_colors
    assert abs(first_camera.yaw - start_camera.yaw) <= 5.0
    assert dataclasses.replace(first_camera, yaw=start_camera.yaw, pitch=start_camera.pitch) == (
        start_camera
    )
    randomizer.apply(np.random.default_rng(1))
    randomizer.apply(np.random.default_rng(0))  # drawn relative to the start, not the last draw
    assert scene.camera == first_camera
    again = scene.sim.get_visual_colors("target")
    np.testing.assert_allclose(list(again.values()), list(first_colors.values()), atol=1e-6)
    assert settings.to_dict()["bodies"] == ["target"]
    env.close()
