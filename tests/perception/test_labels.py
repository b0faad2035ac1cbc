"""Labels: event-window labels by hand, and unknown label names."""

from __future__ import annotations

import numpy as np
import pytest

from rlrobot.errors import DatasetError
from rlrobot.perception.collect import collect_images
from rlrobot.perception.labels import window_labels


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


def test_unknown_labels_are_clear_errors() -> None:
    with pytest.raises(DatasetError, match="unknown label"):
        collect_images("rlrobot/CartPole-v0", n_episodes=3, labels=("cube_position",))
    with pytest.raises(DatasetError, match=r"no ground truth 'ee_position'; it has .*cartpole_"):
        collect_images("rlrobot/CartPole-v0", n_episodes=3, labels=("ee_position",))
