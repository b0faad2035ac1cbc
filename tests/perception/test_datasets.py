"""Datasets: collection, ground truth, randomisation, storage round trip, splits and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlrobot.envs.perturbations import RandomKicks, SceneRandomization
from rlrobot.errors import DatasetError
from rlrobot.perception.datasets import (
    SPLITS,
    Dataset,
    LabelSource,
    assign_splits,
    card_path,
    collect_event_windows,
    collect_images,
    window_labels,
)


def test_round_trip_keeps_arrays_and_card(cart_images: Dataset, tmp_path) -> None:
    path = cart_images.save(tmp_path / "cart.npz")
    loaded = Dataset.load(path)
    np.testing.assert_array_equal(loaded.inputs, cart_images.inputs)
    np.testing.assert_array_equal(
        loaded.labels["cart_position"], cart_images.labels["cart_position"]
    )
    np.testing.assert_array_equal(loaded.episodes, cart_images.episodes)
    np.testing.assert_array_equal(loaded.splits, cart_images.splits)
    card = json.loads(card_path(path).read_text())
    assert card["env_id"] == "rlrobot/CartPole-v0"
    assert card["env_kwargs"]["reset_noise"] == 0.5
    assert card["env_kwargs"]["render_width"] == 84
    assert card["seed"] == 0 and card["policy"] == "random"
    assert card["labels"]["cart_position"]["units"] == "m"
    assert card["input"]["shape"] == [84, 84, 3]
    assert card["n_samples"] == len(cart_images)
    assert sum(card["splits"][name]["samples"] for name in SPLITS) == len(cart_images)
    assert card["splits"]["train"]["episodes"] == 96


def test_split_is_by_episode_and_deterministic(cart_images: Dataset) -> None:
    episodes = cart_images.episodes
    for a in range(3):
        for b in range(a + 1, 3):
            shared = set(episodes[cart_images.splits == a]) & set(episodes[cart_images.splits == b])
            assert not shared, f"episodes {shared} are in two splits"
    again = assign_splits(episodes, (0.8, 0.1, 0.1), seed=0)
    np.testing.assert_array_equal(again, cart_images.splits)
    other = assign_splits(episodes, (0.8, 0.1, 0.1), seed=1)
    assert not np.array_equal(other, cart_images.splits)
    sizes = cart_images.split_sizes()
    assert (sizes["train"]["episodes"], sizes["val"]["episodes"], sizes["test"]["episodes"]) == (
        96,
        12,
        12,
    )


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


def test_window_labels_match_hand_computed_values() -> None:
    ends, labels = window_labels(episode_length=6, event_step=6, horizon=2)
    np.testing.assert_array_equal(ends, [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1])
    ends, labels = window_labels(episode_length=6, event_step=None, horizon=2)
    np.testing.assert_array_equal(ends, [0, 1, 2, 3, 4])  # the cut-off end is unknown
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 0])
    # margin 2: events 3–4 steps ahead (just past the horizon) are left out.
    ends, labels = window_labels(episode_length=6, event_step=6, horizon=2, margin=2)
    np.testing.assert_array_equal(ends, [0, 1, 4, 5])
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])


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


def test_limit_train_episodes_keeps_val_and_test(cart_images: Dataset) -> None:
    small = cart_images.limit_train_episodes(10)
    assert small.split_sizes()["train"]["episodes"] == 10
    assert small.split_sizes()["test"] == cart_images.split_sizes()["test"]


def _tiny_card(task: str = "regression") -> dict:
    return {"labels": {"y": {"task": task, "units": "m", "meaning": "y"}}}


def test_wrong_shapes_and_missing_labels_are_clear_errors() -> None:
    inputs = np.zeros((4, 2), dtype=np.float32)
    episodes, splits = np.arange(4), np.array([0, 0, 1, 2], dtype=np.int8)
    with pytest.raises(DatasetError, match="label 'y' has 3 samples but inputs have 4"):
        Dataset(inputs, {"y": np.zeros((3, 1))}, episodes, splits, _tiny_card())
    with pytest.raises(DatasetError, match="regression label 'y' must have shape"):
        Dataset(inputs, {"y": np.zeros(4)}, episodes, splits, _tiny_card())
    with pytest.raises(DatasetError, match="episodes must have shape"):
        Dataset(inputs, {"y": np.zeros((4, 1))}, episodes[:2], splits, _tiny_card())
    with pytest.raises(DatasetError, match="at least one label"):
        Dataset(inputs, {}, episodes, splits, _tiny_card())
    with pytest.raises(DatasetError, match="describes label"):
        card = {"labels": {**_tiny_card()["labels"], "z": {"task": "regression"}}}
        Dataset(inputs, {"y": np.zeros((4, 1))}, episodes, splits, card)
    dataset = Dataset(inputs, {"y": np.zeros((4, 1))}, episodes, splits, _tiny_card())
    with pytest.raises(DatasetError, match="no label 'z'"):
        dataset.label_info("z")
    with pytest.raises(DatasetError, match="unknown label"):
        collect_images("rlrobot/CartPole-v0", n_episodes=3, labels=("cube_position",))


def test_empty_splits_are_clear_errors() -> None:
    inputs = np.zeros((4, 2), dtype=np.float32)
    dataset = Dataset(
        inputs, {"y": np.zeros((4, 1))}, np.arange(4), np.zeros(4, np.int8), _tiny_card()
    )
    with pytest.raises(DatasetError, match="'test' split of this dataset is empty"):
        dataset.split("test")
    with pytest.raises(DatasetError, match="2 episode"):
        assign_splits(np.array([0, 0, 1]), (0.8, 0.1, 0.1))


def test_load_rejects_missing_corrupt_and_mismatched_files(cart_windows: Dataset, tmp_path) -> None:
    with pytest.raises(DatasetError, match="no dataset"):
        Dataset.load(tmp_path / "missing.npz")
    path = cart_windows.save(tmp_path / "windows.npz")
    card = json.loads(card_path(path).read_text())
    card["splits"]["train"]["samples"] += 1
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(DatasetError, match="split sizes"):
        Dataset.load(path)
    path.write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="corrupt"):
        Dataset.load(path)
