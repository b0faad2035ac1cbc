"""Reach: bring the end effector to a random target in the workspace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlrobot.envs.core import Task
from rlrobot.sim import Simulation


def goal_distance(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """Euclidean distance between goals over the last axis, shape `achieved_goal.shape[:-1]`."""
    return np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)


class Reach(Task):
    """Goal-conditioned reaching: the achieved goal is a point on the robot (m).

    Rewards: `dense` is −distance (m); `sparse` is 0 on success and −1 otherwise.
    Success: distance < `distance_threshold`.

    Args:
        sim: The simulation (the target is drawn as a ghost sphere).
        get_achieved_goal: Returns the robot point that must reach the target, shape (3,).
        reward_mode: "dense" or "sparse".
        distance_threshold: Success radius in m.
        goal_low: Lower corner of the box the target is drawn from (m).
        goal_high: Upper corner of that box (m).
    """

    goal_conditioned = True
    reward_modes = ("dense", "sparse")

    def __init__(
        self,
        sim: Simulation,
        get_achieved_goal: Callable[[], np.ndarray],
        reward_mode: str = "dense",
        distance_threshold: float = 0.05,
        goal_low: tuple[float, float, float] = (-0.15, -0.15, 0.05),
        goal_high: tuple[float, float, float] = (0.15, 0.15, 0.35),
    ) -> None:
        super().__init__(sim, reward_mode)
        if distance_threshold <= 0:
            raise ValueError(f"distance_threshold must be > 0 m, got {distance_threshold}")
        self._get_achieved_goal = get_achieved_goal
        self.distance_threshold = distance_threshold
        self.goal_low = np.asarray(goal_low, dtype=np.float64)
        self.goal_high = np.asarray(goal_high, dtype=np.float64)
        if np.any(self.goal_low > self.goal_high):
            raise ValueError(f"goal_low {goal_low} must not exceed goal_high {goal_high}")
        self.goal = (self.goal_low + self.goal_high) / 2
        sim.create_sphere("target", 0.02, 0.0, self.goal, rgba=(0.1, 0.9, 0.1, 0.6), ghost=True)

    def reset(self, np_random: np.random.Generator) -> None:
        """Draw a new target uniformly in the goal box."""
        self.goal = np_random.uniform(self.goal_low, self.goal_high)
        self.sim.set_base_pose("target", self.goal)

    def get_achieved_goal(self) -> np.ndarray:
        """Current position of the robot point (m), shape (3,)."""
        return self._get_achieved_goal()

    def get_desired_goal(self) -> np.ndarray:
        """Target position (m), shape (3,)."""
        return self.goal.copy()

    def is_success(self) -> bool:
        """Whether the robot point is within `distance_threshold` of the target."""
        return bool(goal_distance(self.get_achieved_goal(), self.goal) < self.distance_threshold)

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any
    ) -> np.ndarray | float:
        """−distance (dense) or −(distance ≥ threshold) (sparse), batched over leading dims."""
        distance = goal_distance(achieved_goal, desired_goal)
        if self.reward_mode == "sparse":
            reward = -(distance >= self.distance_threshold).astype(np.float32)
        else:
            reward = -distance.astype(np.float32)
        return float(reward) if np.ndim(reward) == 0 else reward

    def compute_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """One term, `goal`, computed exactly as `compute_reward` would."""
        achieved = self.get_achieved_goal().astype(np.float32)
        return {"goal": float(self.compute_reward(achieved, self.goal.astype(np.float32), {}))}
