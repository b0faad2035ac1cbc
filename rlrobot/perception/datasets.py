"""Labelled datasets collected from rlrobot envs: camera images and proprioceptive event windows.

Two kinds of dataset, both collected by running a policy (random, goal-seeking, any callable or
an agent's ``predict``) in an env:

- ``collect_images``: camera images (uint8 ``(n, H, W, 3)``) labelled with ground truth that the
  simulator knows, e.g. the Reach target position in m (``LABELS``). The image is the env's own
  pixel observation when it has one (``obs_mode="pixels"``), so that a perception model sees
  exactly what a pixel-based agent sees; otherwise it is ``env.render()`` at ``image_size``.
  The scene can be randomised per episode (colours, light, camera: ``SceneRandomization``).
- ``collect_event_windows``: windows of the robot's proprioceptive observation
  (float32 ``(n, window, obs_dim)``) labelled 1 when an event (``info["fell"]`` on the quadruped,
  termination by default) happens within ``horizon`` steps after the window, else 0.

A ``Dataset`` is stored as a compressed ``.npz`` (arrays only, loaded without pickle) next to a
JSON card (``.json``) that records env, kwargs, seed, policy, randomisation, label meanings,
units and split sizes. Samples are split into train/val/test *by episode* with a seeded
permutation, so held-out samples come from held-out episodes.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

import rlrobot
from rlrobot.common.files import atomic_output, atomic_write_bytes
from rlrobot.common.progress import make_progress_bar
from rlrobot.envs.perturbations import RandomKicks, SceneRandomization, SceneRandomizer
from rlrobot.errors import DatasetError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
LabelTask = Literal["regression", "classification"]


# ----------------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class LabelSource:
    """How to read one ground-truth label from an (unwrapped) env, with its meaning and units.

    Args:
        get: Maps the unwrapped env to the label value, float array of shape ``(k,)``.
        units: Physical units of every component, e.g. ``"m"``.
        meaning: What the value is, component by component.
    """

    get: Callable[[gym.Env], np.ndarray]
    units: str
    meaning: str


def ground_truth(name: str) -> Callable[[gym.Env], np.ndarray]:
    """Return a getter of the env's ground truth ``name`` (``RobotTaskEnv.get_ground_truth``)."""

    def get(env: gym.Env) -> np.ndarray:
        return env.get_ground_truth()[name]

    return get


LABELS: dict[str, LabelSource] = {
    "target_position": LabelSource(
        ground_truth("target_position"), "m", "target centre (x, y, z) in the world frame"
    ),
    "ee_position": LabelSource(
        ground_truth("ee_position"), "m", "end-effector position (x, y, z) in the world frame"
    ),
}
"""Built-in image labels by name; pass ``LabelSource`` objects for others."""


def resolve_labels(labels: Sequence[str] | dict[str, LabelSource]) -> dict[str, LabelSource]:
    """Turn label names (keys of ``LABELS``) or a ``{name: LabelSource}`` dict into sources."""
    if isinstance(labels, dict):
        return dict(labels)
    unknown = [name for name in labels if name not in LABELS]
    if unknown:
        raise DatasetError(
            f"unknown label(s) {unknown}; built-in labels are {sorted(LABELS)} "
            "(pass {name: LabelSource(...)} for others)"
        )
    return {name: LABELS[name] for name in labels}


# ----------------------------------------------------------------------------------- dataset
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


# ------------------------------------------------------------------------------------ policies
Policy = Callable[[Any], np.ndarray]


def goal_seeking_policy(env: gym.Env, noise: float = 0.3) -> Policy:
    """Return a policy that moves a goal-conditioned env's achieved goal towards the goal.

    The action is ``clip((desired_goal − achieved_goal) / 0.05, −1, 1)`` plus uniform noise in
    ``±noise``; it suits end-effector-controlled arms whose action is a displacement of the
    achieved goal (Reach with ``control_mode="ee"``).
    """
    space = env.action_space
    if not isinstance(space, gym.spaces.Box) or space.shape != (3,):
        raise DatasetError(f"the goal-seeking policy needs a Box action of shape (3,), got {space}")

    def policy(observation: dict[str, np.ndarray]) -> np.ndarray:
        if not isinstance(observation, dict) or "desired_goal" not in observation:
            raise DatasetError("the goal-seeking policy needs desired_goal in the observation")
        direction = (observation["desired_goal"] - observation["achieved_goal"]) / 0.05
        jitter = env.np_random.uniform(-noise, noise, 3)
        return np.clip(direction + jitter, -1, 1).astype(np.float32)

    return policy


def make_policy(policy: str | Policy | Any, env: gym.Env) -> tuple[Policy, str]:
    """Turn ``"random"``, ``"goal_seeking"``, an agent (``predict``) or a callable into a policy.

    Returns:
        ``(policy, description)``; the policy maps one observation to one action.
    """
    if isinstance(policy, str):
        if policy == "random":
            return (lambda observation: env.action_space.sample()), "random"
        if policy == "goal_seeking":
            return goal_seeking_policy(env), "goal_seeking"
        raise DatasetError(
            f"policy must be 'random', 'goal_seeking', an agent or a callable, got {policy!r}"
        )
    if hasattr(policy, "predict"):

        def agent_policy(observation: Any) -> np.ndarray:
            return policy.predict(observation, deterministic=False)[0]

        return agent_policy, f"agent:{type(policy).__name__}"
    if callable(policy):
        return policy, f"callable:{getattr(policy, '__name__', type(policy).__name__)}"
    raise DatasetError(f"cannot use {policy!r} as a policy")


# ---------------------------------------------------------------------------------- collection
def _make_env(env: str | gym.Env, env_kwargs: dict[str, Any]) -> tuple[gym.Env, bool]:
    """Return ``(env, owned)``; ``owned`` envs were made here and are closed here."""
    if isinstance(env, gym.Env):
        return env, False
    try:
        return gym.make(env, **env_kwargs), True
    except gym.error.Error as error:
        raise DatasetError(f"cannot make env {env!r}: {error}") from None


def supports_pixel_observations(env_id: str) -> bool:
    """Whether the registered env ``env_id`` is an rlrobot env that takes ``obs_mode="pixels"``."""
    from rlrobot.envs.core import RobotTaskEnv

    entry_point = gym.spec(env_id).entry_point
    if isinstance(entry_point, str):
        module_name, _, attribute = entry_point.partition(":")
        entry_point = getattr(importlib.import_module(module_name), attribute)
    return (
        isinstance(entry_point, type)
        and issubclass(entry_point, RobotTaskEnv)
        and "obs_mode" in inspect.signature(RobotTaskEnv.__init__).parameters
    )


def find_image(observation: Any) -> np.ndarray | None:
    """Return the uint8 ``(H, W, C)`` image in an observation (array or dict), else None."""
    candidates = observation.values() if isinstance(observation, dict) else [observation]
    for value in candidates:
        if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3:
            return value
    return None


def _env_id(env: str | gym.Env) -> str | None:
    if isinstance(env, str):
        return env
    return env.spec.id if env.spec is not None else None


def _base_card(
    kind: str,
    env: str | gym.Env,
    env_kwargs: dict[str, Any],
    seed: int,
    policy_description: str,
    max_steps: int | None,
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "env_id": _env_id(env),
        "env_kwargs": env_kwargs,
        "seed": seed,
        "policy": policy_description,
        "max_steps": max_steps,
        "versions": {"rlrobot": rlrobot.__version__, "numpy": np.__version__},
    }


def collect_images(
    env: str | gym.Env = "rlrobot/Reach-v0",
    n_episodes: int = 100,
    labels: Sequence[str] | dict[str, LabelSource] = ("target_position",),
    *,
    policy: str | Policy | Any = "random",
    frame_interval: int = 10,
    max_steps: int | None = None,
    image_size: int = 84,
    randomization: SceneRandomization | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    progress_bar: bool = False,
) -> Dataset:
    """Run ``policy`` in ``env`` and keep camera images with simulator ground truth.

    In every episode the frame after ``reset`` and every ``frame_interval``-th frame after it
    are kept, until the episode ends or ``max_steps`` steps have run. rlrobot env ids are made
    with ``obs_mode="pixels"`` at ``image_size``×``image_size`` (unless ``env_kwargs`` sets
    ``obs_mode``), so the image is exactly a pixel agent's observation; other envs render
    ``render_mode="rgb_array"`` frames. The card records the resolved ``env_kwargs``.

    Args:
        env: Env id (made here with ``env_kwargs`` and closed afterwards) or an env instance
            (with ``render_mode="rgb_array"`` unless it observes pixels; randomisation changes
            its scene for good).
        n_episodes: Episodes to run; the split is by episode.
        labels: Names from ``LABELS`` or ``{name: LabelSource}``.
        policy: ``"random"``, ``"goal_seeking"``, an agent with ``predict`` or a callable.
        frame_interval: Keep one frame every this many steps (1 keeps all).
        max_steps: Stop an episode after this many steps (``None``: at its end).
        image_size: Render size in pixels when the env has no pixel observation.
        randomization: Scene randomisation drawn per episode; ``None`` for none.
        env_kwargs: ``gym.make`` keywords (env ids only).
        seed: Seeds the env resets, the action sampling, the randomisation and the split.
        split_fractions: Train/val/test fractions of episodes.
        progress_bar: Show a tqdm bar over episodes (on a terminal, outside CI).

    Returns:
        The dataset: uint8 images ``(n, H, W, 3)`` and float32 labels ``(n, k)``.
    """
    if n_episodes < 1 or frame_interval < 1 or image_size < 1:
        raise DatasetError("n_episodes, frame_interval and image_size must be >= 1")
    sources = resolve_labels(labels)
    env_kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        if "obs_mode" not in env_kwargs and supports_pixel_observations(env):
            env_kwargs.update(obs_mode="pixels", pixels_width=image_size, pixels_height=image_size)
        elif "pixels" not in str(env_kwargs.get("obs_mode", "")):
            env_kwargs.update(
                render_mode="rgb_array", render_width=image_size, render_height=image_size
            )
    instance, owned = _make_env(env, env_kwargs)
    try:
        unwrapped = instance.unwrapped
        policy_function, policy_description = make_policy(policy, instance)
        instance.action_space.seed(seed)
        for name, source in sources.items():
            try:
                source.get(unwrapped)
            except (AttributeError, KeyError) as error:
                raise DatasetError(
                    f"label {name!r} cannot be read from {_env_id(env) or env}: {error}"
                ) from None
        randomizer = SceneRandomizer(unwrapped, randomization) if randomization else None
        rng = np.random.default_rng([seed, 1])
        images: list[np.ndarray] = []
        values: dict[str, list[np.ndarray]] = {name: [] for name in sources}
        episodes: list[int] = []
        bar = make_progress_bar(progress_bar, n_episodes, "episode")

        def keep(observation: Any, episode: int) -> None:
            image = find_image(observation)
            if image is None:
                image = instance.render()
            if image is None or np.ndim(image) != 3:
                raise DatasetError(
                    "the env gives no image: use an env with a pixel observation or "
                    "render_mode='rgb_array'"
                )
            images.append(np.asarray(image, dtype=np.uint8).copy())
            for name, source in sources.items():
                values[name].append(np.asarray(source.get(unwrapped), dtype=np.float32).ravel())
            episodes.append(episode)

        for episode in range(n_episodes):
            if randomizer is not None:
                # Before reset, so that a pixel observation of the reset sees the new scene.
                randomizer.apply(rng)
            observation, _ = instance.reset(seed=seed * 100_003 + episode)
            keep(observation, episode)
            step = 0
            while max_steps is None or step < max_steps:
                observation, _, terminated, truncated, _ = instance.step(
                    policy_function(observation)
                )
                step += 1
                if step % frame_interval == 0:
                    keep(observation, episode)
                if terminated or truncated:
                    break
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        if owned:
            instance.close()
    episode_array = np.asarray(episodes, dtype=np.int64)
    card = _base_card("images", env, env_kwargs, seed, policy_description, max_steps)
    image_array = np.stack(images)
    card.update(
        frame_interval=frame_interval,
        randomization=None if randomization is None else randomization.to_dict(),
        input={
            "shape": list(image_array.shape[1:]),
            "dtype": "uint8",
            "meaning": "RGB camera image (height, width, channel)",
            "units": "intensity 0-255",
        },
        labels={
            name: {
                "task": "regression",
                "shape": [len(values[name][0])],
                "units": source.units,
                "meaning": source.meaning,
            }
            for name, source in sources.items()
        },
    )
    return Dataset(
        image_array,
        {name: np.stack(rows) for name, rows in values.items()},
        episode_array,
        assign_splits(episode_array, split_fractions, seed),
        card,
    )


def window_labels(
    episode_length: int, event_step: int | None, horizon: int, margin: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Label the windows ending at each observation of one episode.

    Observation ``t`` is the one after ``t`` steps (0: after reset). The window ending at ``t``
    is labelled 1 when the event is observed at step ``e`` with ``t < e ≤ t + horizon``.
    Windows ending at the event or after it are dropped (already fallen, not about to), and
    so are the last ``horizon`` windows of an episode without an event: it was cut off, so
    whether the event would have followed is unknown. With ``margin``, the windows whose event
    comes just too late, ``horizon < e - t ≤ horizon + margin``, are dropped too: they look
    like positives, and a label that flips within a step of the boundary is noise.

    Args:
        episode_length: Steps in the episode (observations ``0 … episode_length``).
        event_step: Step at which the event was observed, or ``None``.
        horizon: Look-ahead in steps.
        margin: Steps after the horizon whose windows are left out (0: none).

    Returns:
        ``(window_ends, labels)``: int64 observation indices and int64 labels 0/1.
    """
    if event_step is None:
        ends = np.arange(0, episode_length + 1 - horizon)
        return ends, np.zeros(len(ends), dtype=np.int64)
    ends = np.arange(0, event_step)
    ends = ends[(event_step - ends <= horizon) | (event_step - ends > horizon + margin)]
    return ends, (event_step - ends <= horizon).astype(np.int64)


def collect_event_windows(
    env: str | gym.Env = "rlrobot/CartPole-v0",
    n_episodes: int = 100,
    *,
    event_key: str | None = "fell",
    event_name: str = "fall",
    window: int = 16,
    horizon: int = 10,
    policy: str | Policy | Any = "random",
    perturbation: RandomKicks | None = None,
    exclude_unforeseeable: bool = False,
    margin: int = 0,
    max_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    progress_bar: bool = False,
) -> Dataset:
    """Collect windows of proprioception labelled "event within ``horizon`` steps" or not.

    The proprioceptive vector is the robot's own noise-free observation
    (``RobotTaskEnv.get_proprioception()``, e.g. the quadruped's IMU and joint states), whatever
    the env's ``obs_mode``. Windows at the
    start of an episode are padded by repeating its first observation.

    Args:
        env: Env id or instance.
        n_episodes: Episodes to run.
        event_key: ``info`` key whose truthy value marks the event (``"fell"`` on the
            quadruped); ``None`` takes ``terminated`` as the event.
        event_name: Names the label ``about_to_<event_name>``.
        window: Observations per window.
        horizon: Look-ahead in steps for a positive label.
        policy: ``"random"``, an agent with ``predict`` or a callable.
        perturbation: Random kicks during the episodes (drawn from the seeded generator).
        exclude_unforeseeable: Drop the windows whose look-ahead holds a kick: no window of
            the past can foresee a kick, so such a window's label is noise to a predictor.
        margin: Leave out the windows whose event comes within ``margin`` steps after the
            horizon (see ``window_labels``).
        max_steps: Stop an episode after this many steps (counts as a cut-off, not an event).
        env_kwargs: ``gym.make`` keywords (env ids only).
        seed: Seeds resets, action sampling and the split.
        split_fractions: Train/val/test fractions of episodes.
        progress_bar: Show a tqdm bar over episodes.

    Returns:
        The dataset: float32 inputs ``(n, window, obs_dim)``, int64 label ``(n,)``.
    """
    if n_episodes < 1 or window < 1 or horizon < 1:
        raise DatasetError("n_episodes, window and horizon must be >= 1")
    env_kwargs = dict(env_kwargs or {})
    instance, owned = _make_env(env, env_kwargs)
    windows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    episodes: list[np.ndarray] = []
    n_events = 0
    try:
        unwrapped = instance.unwrapped
        policy_function, policy_description = make_policy(policy, instance)
        instance.action_space.seed(seed)
        rng = np.random.default_rng([seed, 2])
        bar = make_progress_bar(progress_bar, n_episodes, "episode")
        for episode in range(n_episodes):
            observation, _ = instance.reset(seed=seed * 100_003 + episode)
            trajectory = [np.asarray(unwrapped.get_proprioception(), dtype=np.float32)]
            event_step = None
            kick_steps = []  # observation indices that first show a kick
            while max_steps is None or len(trajectory) <= max_steps:
                if perturbation is not None and perturbation.apply(unwrapped, rng):
                    kick_steps.append(len(trajectory))
                observation, _, terminated, truncated, info = instance.step(
                    policy_function(observation)
                )
                trajectory.append(np.asarray(unwrapped.get_proprioception(), dtype=np.float32))
                happened = terminated if event_key is None else bool(info.get(event_key, False))
                if happened:
                    event_step = len(trajectory) - 1
                    break
                if terminated or truncated:
                    break
            n_events += event_step is not None
            ends, labels = window_labels(len(trajectory) - 1, event_step, horizon, margin)
            if exclude_unforeseeable and kick_steps:
                # A kick at observation k lies in the look-ahead (t, t + horizon] of window t.
                offsets = np.asarray(kick_steps)[None, :] - ends[:, None]
                foreseeable = ~np.any((offsets > 0) & (offsets <= horizon), axis=1)
                ends, labels = ends[foreseeable], labels[foreseeable]
            if len(ends):
                padded = np.concatenate([np.repeat(trajectory[:1], window - 1, 0), trajectory])
                # padded[t : t + window] ends at observation t.
                windows.append(np.stack([padded[t : t + window] for t in ends]))
                targets.append(labels)
                episodes.append(np.full(len(ends), episode, dtype=np.int64))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        if owned:
            instance.close()
    if not windows:
        raise DatasetError("no windows were collected: episodes are shorter than the horizon")
    episode_array = np.concatenate(episodes)
    label_name = f"about_to_{event_name}"
    inputs = np.concatenate(windows)
    card = _base_card("event_windows", env, env_kwargs, seed, policy_description, max_steps)
    card.update(
        window=window,
        horizon=horizon,
        event_key=event_key,
        n_events=n_events,
        perturbation=None if perturbation is None else perturbation.to_dict(),
        exclude_unforeseeable=exclude_unforeseeable,
        margin=margin,
        input={
            "shape": list(inputs.shape[1:]),
            "dtype": "float32",
            "meaning": "robot proprioceptive observation over the last `window` steps "
            "(oldest first); components and units as in the env's robot observation",
            "units": "see the env docstring",
        },
        labels={
            label_name: {
                "task": "classification",
                "shape": [],
                "units": "class index",
                "meaning": f"1 when the {event_name} ({event_key or 'termination'}) happens "
                f"within {horizon} steps after the window's last observation",
                "classes": [f"no {event_name} within {horizon} steps", f"{event_name} ahead"],
            }
        },
    )
    return Dataset(
        inputs,
        {label_name: np.concatenate(targets)},
        episode_array,
        assign_splits(episode_array, split_fractions, seed),
        card,
    )
