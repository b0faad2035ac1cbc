"""The perception dataset: inputs, labels, episode and split indices, and a JSON card.

A ``Dataset`` is stored as a compressed ``.npz`` (arrays only, loaded without pickle) next to a
JSON card (``.json``) that records env, kwargs, seed, policy, randomisation, label meanings,
units and split sizes. Samples are split into train/val/test *by episode* with a seeded
permutation (``assign_splits``), so held-out samples come from held-out episodes.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.common.files import atomic_output, atomic_write_bytes
from rlrobot.errors import DatasetError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """Inputs, labels and per-sample episode/split indices, with the JSON card describing them.

    Attributes:
        inputs: ``(n, *input_shape)``: uint8 images ``(n, H, W, 3)`` or float32 windows.
        labels: ``{name: array}``; regression labels are float32 ``(n, k)``, classification
            labels int64 ``(n,)``.
        episodes: int64 ``(n,)``: the episode each sample comes from.
        splits: int8 ``(n,)``: 0 train, 1 val, 2 test (whole episodes per split).
        card: JSON-serialisable description (``card["labels"][name]`` has ``task``, ``units``,
            ``meaning`` and, for classification, ``classes``).
    """

    inputs: np.ndarray
    labels: dict[str, np.ndarray]
    episodes: np.ndarray
    splits: np.ndarray
    card: dict[str, Any]

    def __post_init__(self) -> None:
        self.validate()

    def __len__(self) -> int:
        return len(self.inputs)

    def validate(self) -> None:
        """Check shapes, label presence and split indices; raise ``DatasetError`` otherwise."""
        n = len(self.inputs)
        if self.inputs.ndim < 2:
            raise DatasetError(f"inputs must have shape (n, *input_shape), got {self.inputs.shape}")
        for name, array in (("episodes", self.episodes), ("splits", self.splits)):
            if array.shape != (n,):
                raise DatasetError(f"{name} must have shape ({n},), got {array.shape}")
        if not self.labels:
            raise DatasetError("a dataset needs at least one label")
        described = self.card.get("labels", {})
        for name, array in self.labels.items():
            if len(array) != n:
                raise DatasetError(f"label {name!r} has {len(array)} samples but inputs have {n}")
            if name not in described:
                raise DatasetError(f"label {name!r} is not described in the card")
            task = described[name].get("task")
            if task == "classification" and array.ndim != 1:
                raise DatasetError(
                    f"classification label {name!r} must have shape (n,), got {array.shape}"
                )
            if task == "regression" and array.ndim != 2:
                raise DatasetError(
                    f"regression label {name!r} must have shape (n, k), got {array.shape}"
                )
        missing = sorted(set(described) - set(self.labels))
        if missing:
            raise DatasetError(f"the card describes label(s) {missing} that the data lacks")
        if n and (self.splits.min() < 0 or self.splits.max() >= len(SPLITS)):
            raise DatasetError(f"splits must be 0 (train), 1 (val) or 2 (test), got {self.splits}")

    # -- access ---------------------------------------------------------------------------
    def label_info(self, name: str) -> dict[str, Any]:
        """Return the card entry of label ``name`` (task, units, meaning, classes, shape)."""
        if name not in self.labels:
            raise DatasetError(f"no label {name!r} in this dataset; it has {sorted(self.labels)}")
        return self.card["labels"][name]

    def select(self, mask: np.ndarray) -> Dataset:
        """Return the samples where ``mask`` (bool ``(n,)``) is True, with the same card."""
        return Dataset(
            self.inputs[mask],
            {name: array[mask] for name, array in self.labels.items()},
            self.episodes[mask],
            self.splits[mask],
            self.card,
        )

    def split(self, name: str) -> Dataset:
        """Return the ``"train"``, ``"val"`` or ``"test"`` samples; raise if there are none."""
        if name not in SPLITS:
            raise DatasetError(f"split must be one of {SPLITS}, got {name!r}")
        subset = self.select(self.splits == SPLITS.index(name))
        if len(subset) == 0:
            raise DatasetError(f"the {name!r} split of this dataset is empty")
        return subset

    def limit_train_episodes(self, n_episodes: int) -> Dataset:
        """Keep only the first ``n_episodes`` training episodes (val and test unchanged)."""
        train_episodes = np.unique(self.episodes[self.splits == 0])
        if not 1 <= n_episodes <= len(train_episodes):
            raise DatasetError(
                f"n_episodes must be in [1, {len(train_episodes)}], got {n_episodes}"
            )
        kept = train_episodes[:n_episodes]
        return self.select((self.splits != 0) | np.isin(self.episodes, kept))

    def split_sizes(self) -> dict[str, dict[str, int]]:
        """Return ``{split: {"samples": n, "episodes": m}}``."""
        sizes = {}
        for index, name in enumerate(SPLITS):
            mask = self.splits == index
            sizes[name] = {
                "samples": int(mask.sum()),
                "episodes": len(np.unique(self.episodes[mask])),
            }
        return sizes

    # -- storage --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (a compressed ``.npz``) and its card ``path`` with suffix ``.json``.

        Returns:
            The ``.npz`` path.
        """
        path = Path(path).with_suffix(".npz")
        arrays = {"inputs": self.inputs, "episodes": self.episodes, "splits": self.splits}
        arrays.update({f"label_{name}": array for name, array in self.labels.items()})
        with atomic_output(path) as temporary:
            np.savez_compressed(temporary, **arrays)
        card = {**self.card, "n_samples": len(self), "splits": self.split_sizes()}
        atomic_write_bytes(card_path(path), json.dumps(card, indent=2).encode())
        self.card = card
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dataset:
        """Load a dataset written by ``save`` (no pickles) and check it against its card."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        if not path.is_file():
            raise DatasetError(f"no dataset at {path}")
        if not card_path(path).is_file():
            raise DatasetError(f"dataset {path} has no card {card_path(path).name}")
        try:
            card = json.loads(card_path(path).read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(f"the card of {path} is not valid JSON ({error})") from None
        if card.get("format_version", 0) > FORMAT_VERSION:
            raise DatasetError(
                f"dataset {path} has format_version {card['format_version']}, newer than this "
                f"rlrobot supports ({FORMAT_VERSION})"
            )
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
            raise DatasetError(f"dataset {path} is corrupt or not an npz file ({error})") from None
        for key in ("inputs", "episodes", "splits"):
            if key not in arrays:
                raise DatasetError(f"dataset {path} lacks the array {key!r}")
        labels = {k.removeprefix("label_"): v for k, v in arrays.items() if k.startswith("label_")}
        dataset = cls(arrays["inputs"], labels, arrays["episodes"], arrays["splits"], card)
        if "splits" in card and dataset.split_sizes() != card["splits"]:
            raise DatasetError(
                f"dataset {path}: split sizes {dataset.split_sizes()} differ from its card's "
                f"{card['splits']}"
            )
        return dataset


def card_path(path: str | os.PathLike) -> Path:
    """Return the JSON card path that belongs to a dataset ``.npz`` path."""
    return Path(path).with_suffix(".json")


def assign_splits(
    episodes: np.ndarray, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> np.ndarray:
    """Assign whole episodes to train/val/test with a seeded permutation.

    Args:
        episodes: int ``(n,)`` episode index of every sample.
        fractions: Fractions of episodes for train, val, test (normalised to sum 1); val and
            test get at least one episode each when their fraction is positive.
        seed: Seed of the permutation; the same episodes and seed give the same split.

    Returns:
        int8 ``(n,)``: 0 train, 1 val, 2 test.

    Raises:
        DatasetError: Too few episodes to fill every split with a positive fraction.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise DatasetError(f"fractions must be 3 non-negative numbers, got {fractions}")
    total = float(sum(fractions))
    unique = np.unique(episodes)
    n = len(unique)
    n_val, n_test = (
        max(1, round(n * f / total)) if f > 0 else 0 for f in (fractions[1], fractions[2])
    )
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DatasetError(
            f"{n} episode(s) cannot fill train/val/test splits {tuple(fractions)}; "
            "collect more episodes"
        )
    order = np.random.default_rng(seed).permutation(unique)
    split_of_episode = np.zeros(n, dtype=np.int8)
    split_of_episode[n_train : n_train + n_val] = 1
    split_of_episode[n_train + n_val :] = 2
    split_of_unique = np.empty(n, dtype=np.int8)
    split_of_unique[np.searchsorted(unique, order)] = split_of_episode
    return split_of_unique[np.searchsorted(unique, episodes)]
