"""The dataset container: storage round trip, splits by episode, selection and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlrobot.errors import DatasetError
from rlrobot.perception.dataset import SPLITS, Dataset, assign_splits, card_path


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
