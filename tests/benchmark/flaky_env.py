"""A CartPole that fails to construct on purpose, to test the retry of failed trials.

Made by id ``tests.benchmark.flaky_env:FlakyCartPole-v0``: Gymnasium imports this module (in the
worker process too), which registers the id.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class FlakyCartPoleEnv(CartPoleEnv):
    """CartPole whose construction fails while ``marker`` is absent (creating it), or always.

    Args:
        marker: File path; the first construction creates it and raises, later ones succeed.
        always_fail: Raise on every construction.
    """

    def __init__(self, marker: str = "", always_fail: bool = False) -> None:
        if always_fail:
            raise RuntimeError("planned failure (always)")
        if marker and not Path(marker).exists():
            Path(marker).touch()
            raise RuntimeError("planned failure (first attempt)")
        super().__init__()


if "FlakyCartPole-v0" not in gym.registry:
    gym.register("FlakyCartPole-v0", entry_point=FlakyCartPoleEnv, max_episode_steps=50)
