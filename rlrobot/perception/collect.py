"""Collect labelled datasets by running a policy in an env: camera images and event windows.

Two collectors share one episode loop (``run_episodes``):

- ``collect_images``: camera images (uint8 ``(n, H, W, 3)``) labelled with ground truth that the
  simulator knows, e.g. the Reach target position in m (``labels.LABELS``). The image is the
  env's own pixel observation when it has one (``obs_mode="pixels"``), so that a perception
  model sees exactly what a pixel-based agent sees; otherwise it is ``env.render()`` at
  ``image_size``. The scene can be randomised per episode (colours, light, camera:
  ``rlrobot.envs.perturbations.SceneRandomization``).
- ``collect_event_windows``: windows of the robot's proprioceptive observation
  (float32 ``(n, window, obs_dim)``) labelled 1 when an event (``info["fell"]`` on the quadruped,
  termination by default) happens within ``horizon`` steps after the window, else 0.

The policy is random, goal-seeking, any callable or an agent's ``predict``
(``policies.make_policy``). The env is read only through its public ground-truth API
(``get_ground_truth``, ``get_proprioception``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import rlrobot
from rlrobot.common.progress import make_progress_bar
from rlrobot.envs.checks import MAX_IMAGE_SIDE
from rlrobot.envs.perturbations import RandomKicks, SceneRandomization, SceneRandomizer
from rlrobot.errors import DatasetError
from rlrobot.perception.dataset import FORMAT_VERSION, Dataset, assign_splits
from rlrobot.perception.labels import LabelSource, resolve_labels, window_labels
from rlrobot.perception.policies import Policy, make_policy


# ------------------------------------------------------------------------------ episode loop
@dataclass(frozen=True)
class Frame:
    """One observation of a collection episode, yielded while the env is in that state.

    Attributes:
        episode: Episode index (0-based).
        step: Steps since the reset (0: the reset's observation).
        observation: The env's observation.
        info: The step's ``info`` (the reset's at step 0).
        terminated: Whether the step terminated the episode.
        last: No step follows: terminated, truncated, stopped or ``max_steps`` reached.
    """

    episode: int
    step: int
    observation: Any
    info: dict[str, Any]
    terminated: bool
    last: bool


def run_episodes(
    env: gym.Env,
    policy: Policy,
    n_episodes: int,
    *,
    seed: int,
    max_steps: int | None = None,
    before_reset: Callable[[], None] | None = None,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    progress_bar: bool = False,
) -> Iterator[Frame]:
    """Run ``policy`` for ``n_episodes`` episodes and yield every observation as a ``Frame``.

    Episode ``e`` resets with seed ``seed * 100_003 + e``. The caller's code between two frames
    of an episode runs before the next step, so it may read the scene or perturb it there.

    Args:
        env: The env (not closed here).
        policy: Maps an observation to an action.
        n_episodes: Episodes to run.
        seed: Seeds the resets.
        max_steps: End an episode after this many steps (``None``: at its end).
        before_reset: Called before every reset (e.g. to redraw the scene).
        stop: End the episode at a step whose ``info`` makes it true.
        progress_bar: Show a tqdm bar over episodes (on a terminal, outside CI).
    """
    bar = make_progress_bar(progress_bar, n_episodes, "episode")
    try:
        for episode in range(n_episodes):
            if before_reset is not None:
                before_reset()
            observation, info = env.reset(seed=seed * 100_003 + episode)
            step, terminated, truncated, stopped = 0, False, False, False
            while True:
                at_limit = max_steps is not None and step >= max_steps
                last = terminated or truncated or stopped or at_limit
                yield Frame(episode, step, observation, info, terminated, last)
                if last:
                    break
                observation, _, terminated, truncated, info = env.step(policy(observation))
                step += 1
                stopped = stop is not None and stop(info)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


@contextmanager
def _collection(
    env: str | gym.Env,
    env_kwargs: dict[str, Any],
    policy: str | Policy | Any,
    n_episodes: int,
    seed: int,
    max_steps: int | None,
    progress_bar: bool,
) -> Iterator[tuple[gym.Env, str, Callable[..., Iterator[Frame]]]]:
    """Yield ``(env, policy_description, run)``, the action sampling seeded.

    ``run(**hooks)`` is ``run_episodes`` of the policy in the env with these settings and
    the given ``before_reset``/``stop``. An env id is made with ``env_kwargs`` and closed
    afterwards; an env instance is left open.
    """
    if isinstance(env, gym.Env):
        instance, owned = env, False
    else:
        try:
            instance, owned = gym.make(env, **env_kwargs), True
        except gym.error.Error as error:
            raise DatasetError(f"cannot make env {env!r}: {error}") from None
    try:
        policy_function, description = make_policy(policy, instance)
        instance.action_space.seed(seed)
        run = functools.partial(
            run_episodes,
            instance,
            policy_function,
            n_episodes,
            seed=seed,
            max_steps=max_steps,
            progress_bar=progress_bar,
        )
        yield instance, description, run
    finally:
        if owned:
            instance.close()


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
    """The card fields every collected dataset has."""
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


# ------------------------------------------------------------------------------------ images
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
        labels: Names from ``labels.LABELS`` or ``{name: LabelSource}``.
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
    if n_episodes < 1 or frame_interval < 1 or not 1 <= image_size <= MAX_IMAGE_SIDE:
        raise DatasetError(
            f"n_episodes and frame_interval must be >= 1 and image_size in [1, "
            f"{MAX_IMAGE_SIDE}] px, got {n_episodes}, {frame_interval}, {image_size}"
        )
    sources = resolve_labels(labels)
    env_kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        if "obs_mode" not in env_kwargs and supports_pixel_observations(env):
            env_kwargs.update(obs_mode="pixels", pixels_width=image_size, pixels_height=image_size)
        elif "pixels" not in str(env_kwargs.get("obs_mode", "")):
            env_kwargs.update(
                render_mode="rgb_array", render_width=image_size, render_height=image_size
            )
    settings = (n_episodes, seed, max_steps, progress_bar)
    with _collection(env, env_kwargs, policy, *settings) as (instance, description, run):
        scene = instance.unwrapped
        for name, source in sources.items():
            try:
                source.get(scene)
            except (AttributeError, KeyError, DatasetError) as error:
                raise DatasetError(
                    f"label {name!r} cannot be read from {_env_id(env) or env}: {error}"
                ) from None
        randomizer = SceneRandomizer(scene, randomization) if randomization else None
        rng = np.random.default_rng([seed, 1])
        images: list[np.ndarray] = []
        values: dict[str, list[np.ndarray]] = {name: [] for name in sources}
        episodes: list[int] = []
        # Before reset, so that a pixel observation of the reset sees the new scene.
        redraw = None if randomizer is None else lambda: randomizer.apply(rng)
        for frame in run(before_reset=redraw):
            if frame.step % frame_interval:
                continue
            image = find_image(frame.observation)
            if image is None:
                image = instance.render()
            if image is None or np.ndim(image) != 3:
                raise DatasetError(
                    "the env gives no image: use an env with a pixel observation or "
                    "render_mode='rgb_array'"
                )
            images.append(np.asarray(image, dtype=np.uint8).copy())
            for name, source in sources.items():
                values[name].append(np.asarray(source.get(scene), dtype=np.float32).ravel())
            episodes.append(frame.episode)
    episode_array = np.asarray(episodes, dtype=np.int64)
    card = _base_card("images", env, env_kwargs, seed, description, max_steps)
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


# ------------------------------------------------------------------------------ event windows
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
    the env's ``obs_mode``. Windows at the start of an episode are padded by repeating its
    first observation.

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
            horizon (see ``labels.window_labels``).
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
    windows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    episodes: list[np.ndarray] = []
    n_events = 0

    def happened(info: dict[str, Any]) -> bool:
        return bool(info.get(event_key, False))

    settings = (n_episodes, seed, max_steps, progress_bar)
    with _collection(env, env_kwargs, policy, *settings) as (instance, description, run):
        scene = instance.unwrapped
        rng = np.random.default_rng([seed, 2])
        for frame in run(stop=None if event_key is None else happened):
            if frame.step == 0:
                trajectory: list[np.ndarray] = []
                kick_steps: list[int] = []  # observation indices that first show a kick
            trajectory.append(scene.get_proprioception())
            if not frame.last:
                if perturbation is not None and perturbation.apply(scene, rng):
                    kick_steps.append(frame.step + 1)
                continue
            event = frame.terminated if event_key is None else happened(frame.info)
            event_step = frame.step if event and frame.step > 0 else None
            n_events += event_step is not None
            ends, labels = window_labels(frame.step, event_step, horizon, margin)
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
                episodes.append(np.full(len(ends), frame.episode, dtype=np.int64))
    if not windows:
        raise DatasetError("no windows were collected: episodes are shorter than the horizon")
    episode_array = np.concatenate(episodes)
    label_name = f"about_to_{event_name}"
    inputs = np.concatenate(windows)
    card = _base_card("event_windows", env, env_kwargs, seed, description, max_steps)
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
