"""Labels of perception datasets: ground truth read from an env, and event-window labels.

Image labels are read from the env's public ground truth (``RobotTaskEnv.get_ground_truth``):
the simulator knows them exactly. Event windows are labelled by whether an event (a fall, a
termination) follows within a horizon (``window_labels``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlrobot.errors import DatasetError


@dataclass(frozen=True)
class LabelSource:
    """How to read one ground-truth label from an (unwrapped) env, with its meaning and units.

    Args:
        get: Maps the unwrapped env to the label value, float array of shape ``(k,)``; for
            rlrobot envs it reads their public API (``get_ground_truth``, ``get_body_pose``,
            ``get_proprioception``).
        units: Physical units of every component, e.g. ``"m"``.
        meaning: What the value is, component by component.
    """

    get: Callable[[gym.Env], np.ndarray]
    units: str
    meaning: str


def ground_truth(name: str) -> Callable[[gym.Env], np.ndarray]:
    """Return a getter of the env's ground truth ``name`` (``RobotTaskEnv.get_ground_truth``)."""

    def get(env: gym.Env) -> np.ndarray:
        truth = env.get_ground_truth()
        if name not in truth:
            raise DatasetError(f"the env has no ground truth {name!r}; it has {sorted(truth)}")
        return truth[name]

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
