"""Reach: bring a point on the robot (the end effector) to a random target."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlrobot.envs.tasks.goal import PointGoalTask
from rlrobot.sim import Simulation


class Reach(PointGoalTask):
    """Goal-conditioned reaching: the achieved goal is a point on the robot (m).

    Rewards and success as `PointGoalTask`; the target is drawn uniformly in the goal box.

    Args:
        sim: The simulation (the target is drawn as a ghost sphere).
        get_achieved_goal: Returns the robot point that must reach the target, shape (3,).
        reward_mode: "dense", "sparse" or "delayed".
        distance_threshold: Success radius in m.
        goal_low: Lower corner of the box the target is drawn from (m).
        goal_high: Upper corner of that box (m).
    """

    def __init__(
        self,
        sim: Simulation,
        get_achieved_goal: Callable[[], np.ndarray],
        reward_mode: str,
        distance_threshold: float,
        goal_low: tuple[float, float, float],
        goal_high: tuple[float, float, float],
    ) -> None:
        super().__init__(sim, reward_mode, distance_threshold, goal_low, goal_high)
        self._get_achieved_goal = get_achieved_goal

    def get_achieved_goal(self) -> np.ndarray:
        """Current position of the robot point (m), shape (3,)."""
        return self._get_achieved_goal()
