"""Push: slide a cube across a table to a goal, without grasping it."""

from __future__ import annotations

import numpy as np

from rlrobot.envs.tasks.goal import PointGoalTask, goal_distance
from rlrobot.sim import Simulation

MAX_GOAL_DRAWS = 100


class Push(PointGoalTask):
    """Goal-conditioned pushing: the achieved goal is the cube's centre (m).

    The cube (body "object") starts at rest, upright, uniformly in the square
    |x|, |y| ≤ `object_range` on the table top (z = 0); the goal is drawn uniformly in
    |x|, |y| ≤ `goal_range` at the cube's resting height, at least 2 × `distance_threshold` from
    the cube. Rewards and success as `PointGoalTask`.

    Args:
        sim: The simulation (with a table whose top is at z = 0).
        reward_mode: "dense", "sparse" or "delayed".
        distance_threshold: Success radius in m.
        object_size: Cube side in m.
        object_mass: Cube mass in kg.
        object_range: Half side of the square the cube starts in (m).
        goal_range: Half side of the square the goal is drawn in (m).
    """

    def __init__(
        self,
        sim: Simulation,
        reward_mode: str,
        distance_threshold: float,
        object_size: float,
        object_mass: float,
        object_range: float,
        goal_range: float,
    ) -> None:
        height = object_size / 2
        super().__init__(
            sim,
            reward_mode,
            distance_threshold,
            (-goal_range, -goal_range, height),
            (goal_range, goal_range, height),
        )
        self.object_range = object_range
        self._object_height = height
        sim.create_box("object", (height,) * 3, object_mass, (0.0, 0.0, height), (0.1, 0.3, 0.9, 1))

    def reset(self, np_random: np.random.Generator) -> None:
        """Place the cube at rest and draw a goal away from it."""
        xy = np_random.uniform(-self.object_range, self.object_range, size=2)
        start = np.array([*xy, self._object_height])
        self.sim.set_base_pose("object", start)
        self.sim.set_base_velocity("object")
        for _ in range(MAX_GOAL_DRAWS):
            goal = np_random.uniform(self.goal_low, self.goal_high)
            if goal_distance(goal, start) >= 2 * self.distance_threshold:
                break
        self.set_goal(goal)

    def get_achieved_goal(self) -> np.ndarray:
        """Cube centre (m), shape (3,)."""
        return self.sim.get_base_position("object")

    def get_obs(self) -> np.ndarray:
        """Cube position (3, m), orientation quaternion (4), velocity (3, m/s), spin (3, rad/s)."""
        position, orientation = self.sim.get_base_pose("object")
        linear, angular = self.sim.get_base_velocity("object")
        return np.concatenate([position, orientation, linear, angular])
