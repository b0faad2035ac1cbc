"""Collectors: reproducible collection, simulator ground truth, randomisation, event windows."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlrobot.envs.perturbations import RandomKicks, SceneRandomization
from rlrobot.perception.collect import collect_event_windows, collect_images, run_episodes
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.labels import LabelSource


def test_collection_is_reproducible_and_randomisation_changes_images(
    cart_position_label: LabelSource,
) -> None:
    def collect(randomization: SceneRandomization | None, seed: int) -> Dataset:
        return collect_images(
            "rlrobot/CartPole-v0",
            n_episodes=3,
            labels={"x": cart_position_label},
            max_steps=0,
            randomization=randomization,
            seed=seed,
        )

    randomized = SceneRandomization(color_jitter=0.3, camera_angle_jitter=5.0)
    first, second = collect(randomized, 0), collect(randomized, 0)
    np.testing.assert_array_equal(first.inputs, second.inputs)
    np.testing.assert_array_equal(first.labels["x"], second.labels["x"])
    plain = collect(None, 0)
    np.testing.assert_array_equal(plain.labels["x"], first.labels["x"])  # same resets
    drawn = (plain.inputs != 255).any(axis=-1).mean()  # the scene on a white background
    changed = (plain.inputs != first.inputs).any(axis=-1).mean()
    assert changed >= 0.5 * drawn > 0
    assert first.card["randomization"]["camera_angle_jitter"] == 5.0


def test_reach_labels_are_simulator_ground_truth() -> None:
    observations = []

    def still(observation):
        observations.append(observation)
        return np.zeros(3, dtype=np.float32)

    dataset = collect_images(
        "rlrobot/Reach-v0",
        n_episodes=3,
        labels=("target_position", "ee_position"),
        policy=still,
        frame_interval=1,
        max_steps=1,
        seed=3,
    )
    assert dataset.inputs.shape == (6, 84, 84, 3) and dataset.inputs.dtype == np.uint8
    targets = dataset.labels["target_position"]
    # The policy sees each frame's observation before acting: frames 0, 2, 4 are resets.
    desired = np.stack([observations[i]["desired_goal"] for i in range(3)])
    np.testing.assert_allclose(targets[::2], desired, atol=1e-6)
    np.testing.assert_allclose(targets[::2], targets[1::2])  # the target stays put
    assert np.all(targets[:, 2] >= 0.05) and np.all(targets[:, 2] <= 0.35)
    achieved = np.stack([observations[i]["achieved_goal"] for i in range(3)])
    np.testing.assert_allclose(dataset.labels["ee_position"][::2], achieved, atol=1e-6)
    assert dataset.card["labels"]["target_position"]["units"] == "m"


def test_unforeseeable_windows_are_a_subset_without_kicked_look_aheads() -> None:
    settings = {
        "n_episodes": 3,
        "perturbation": RandomKicks("ant", probability=0.2),
        "window": 2,
        "horizon": 3,
        "max_steps": 40,
        "split_fractions": (1, 1, 1),
        "seed": 0,
    }
    everything = collect_event_windows("rlrobot/Quadruped-v0", **settings)
    foreseeable = collect_event_windows(
        "rlrobot/Quadruped-v0", exclude_unforeseeable=True, **settings
    )
    assert 0 < len(foreseeable) < len(everything)
    flat = everything.inputs.reshape(len(everything), -1)
    kept = foreseeable.inputs.reshape(len(foreseeable), -1)
    # Same seed, same trajectories: every kept window is one of the full set's windows.
    assert all(np.any(np.all(flat == row, axis=1)) for row in kept)
    assert foreseeable.card["exclude_unforeseeable"] is True


def test_event_windows_hold_padded_state_sequences(cart_windows: Dataset) -> None:
    inputs, labels = cart_windows.inputs, cart_windows.labels["about_to_fall"]
    assert inputs.shape[1:] == (8, 4) and inputs.dtype == np.float32
    assert set(np.unique(labels)) == {0, 1}
    first = np.flatnonzero(np.r_[True, np.diff(cart_windows.episodes) != 0])
    # The first window of an episode repeats the reset observation (padding).
    np.testing.assert_array_equal(inputs[first[0]], np.repeat(inputs[first[0], -1:], 8, axis=0))
    # Every episode (all end with the pole falling) ends on `horizon` positive windows.
    last = np.r_[first[1:], len(labels)] - 1
    assert np.all(labels[last] == 1)
    card = cart_windows.card
    assert card["labels"]["about_to_fall"]["classes"][1] == "fall ahead"
    assert card["horizon"] == 5 and card["n_events"] == 100


def test_run_episodes_yields_every_observation_and_ends_episodes() -> None:
    env = gym.make("rlrobot/CartPole-v0")
    resets = []
    frames = list(
        run_episodes(
            env,
            lambda observation: 1,
            3,
            seed=0,
            max_steps=4,
            before_reset=lambda: resets.append(1),
        )
    )
    assert len(resets) == 3
    assert [frame.episode for frame in frames] == [e for e in range(3) for _ in range(5)]
    assert [frame.step for frame in frames] == list(range(5)) * 3
    assert [frame.last for frame in frames] == ([False] * 4 + [True]) * 3
    # Always pushing right, the pole falls: without max_steps the episode ends on termination.
    falls = list(run_episodes(env, lambda observation: 1, 1, seed=0))
    assert falls[-1].terminated and falls[-1].last and not any(f.last for f in falls[:-1])
    stopped = list(run_episodes(env, lambda observation: 1, 1, seed=0, stop=lambda info: True))
    assert [frame.step for frame in stopped] == [0, 1] and stopped[-1].last
    env.close()
