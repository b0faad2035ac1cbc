"""Navigate: drive a mobile base to a goal on the floor, around obstacles."""

from __future__ import annotations

from typing import Annotated

import numpy as np

from rlrobot.envs.checks import Interval
from rlrobot.envs.robots.racecar import Racecar
from rlrobot.envs.tasks.goal import PointGoalTask, goal_distance
from rlrobot.sim import Simulation

MAX_PLACEMENT_DRAWS = 100
# Each obstacle is one PyBullet body: 1,000 build in about 0.3 s and step at about 5 ms, while
# 10**6 would take minutes to build (and no 2-D arena of metres needs more than a few hundred).
MAX_OBSTACLES = 1000
# The hint of `n_obstacles` in the signature of the env that checks it.
ObstacleCount = Annotated[int, Interval(0, MAX_OBSTACLES, reason="one body each")]
OBSTACLE_HEIGHT = 0.4
# Obstacles keep this far (m) from the car's start and from the goal, so neither is blocked.
START_CLEARANCE = 0.7
GOAL_CLEARANCE = 0.5
MARKER_RADIUS = 0.1


class Navigate(PointGoalTask):
    """Goal-conditioned driving: the achieved goal is the car's base position x, y (m).

    Each episode the goal is drawn uniformly in the square |x|, |y| ≤ `arena_half_size`, at
    least `min_goal_distance` from the start (the origin), and `n_obstacles` static boxes
    (side `obstacle_size` m, 0.4 m tall) are scattered in the same square, clear of the start
    and the goal. Rewards and success as `PointGoalTask` (2-D distance).

    Args:
        sim: The simulation (with a ground plane).
        robot: The car that drives.
        reward_mode: "dense", "sparse" or "delayed".
        distance_threshold: Success radius in m.
        arena_half_size: Half side of the square of goals and obstacles (m).
        n_obstacles: Number of obstacles (0 for an open floor), at most `MAX_OBSTACLES` (1000).
        obstacle_size: Side of an obstacle (m).
        min_goal_distance: Least distance (m) of the goal from the start.
    """

    def __init__(
        self,
        sim: Simulation,
        robot: Racecar,
        reward_mode: str,
        distance_threshold: float,
        arena_half_size: float,
        n_obstacles: int,
        obstacle_size: float,
        min_goal_distance: float,
    ) -> None:
        if min_goal_distance >= arena_half_size * np.sqrt(2):
            raise ValueError(
                f"min_goal_distance must be < the arena's half diagonal "
                f"{arena_half_size * np.sqrt(2):g} m, got {min_goal_distance!r}"
            )
        half = arena_half_size
        super().__init__(
            sim, reward_mode, distance_threshold, (-half, -half), (half, half), MARKER_RADIUS, 0.0
        )
        self.robot = robot
        self.min_goal_distance = min_goal_distance
        self.obstacle_names = [f"obstacle_{index}" for index in range(n_obstacles)]
        half_extents = (obstacle_size / 2, obstacle_size / 2, OBSTACLE_HEIGHT / 2)
        for index, name in enumerate(self.obstacle_names):
            parking = (10.0 + index, 10.0, OBSTACLE_HEIGHT / 2)  # out of the way until reset
            sim.create_box(name, half_extents, 0.0, parking, rgba=(0.5, 0.35, 0.2, 1.0))

    def _draw(self, np_random: np.random.Generator, keep_away: list[tuple[np.ndarray, float]]):
        """A point in the arena at least the given distances from the given points."""
        for _ in range(MAX_PLACEMENT_DRAWS):
            point = np_random.uniform(self.goal_low, self.goal_high)
            if all(goal_distance(point, centre) >= radius for centre, radius in keep_away):
                break
        return point

    def reset(self, np_random: np.random.Generator) -> None:
        """Draw the goal away from the start, then the obstacles clear of both."""
        start = self.robot.get_position()
        self.set_goal(self._draw(np_random, [(start, self.min_goal_distance)]))
        keep_away = [(start, START_CLEARANCE), (self.goal, GOAL_CLEARANCE)]
        for name in self.obstacle_names:
            x, y = self._draw(np_random, keep_away)
            self.sim.set_base_pose(name, (x, y, OBSTACLE_HEIGHT / 2))

    def get_achieved_goal(self) -> np.ndarray:
        """The car's base position x, y (m), shape (2,)."""
        return self.robot.get_position()
