"""Balance: keep the pole upright and the cart on its track."""

from __future__ import annotations

import numpy as np

from rlrobot.envs.core import Task
from rlrobot.envs.robots.cartpole import CartPoleRobot
from rlrobot.sim import Simulation


class Balance(Task):
    """+1 per step (`alive`) until |pole angle| > angle_threshold or |cart x| > x_threshold.

    Success (the sparse reward): the pole within `success_angle` of upright.

    Args:
        sim: The simulation.
        robot: The cart-pole whose state is judged.
        reward_mode: "dense", "sparse" or "delayed".
        x_threshold: Cart distance from the centre (m) that ends the episode.
        angle_threshold: Pole angle from vertical (rad) that ends the episode.
        success_angle: Pole angle from vertical (rad) that counts as balanced.
    """

    def __init__(
        self,
        sim: Simulation,
        robot: CartPoleRobot,
        reward_mode: str,
        x_threshold: float,
        angle_threshold: float,
        success_angle: float,
    ) -> None:
        super().__init__(sim, reward_mode)
        self.robot = robot
        self.x_threshold = x_threshold
        self.angle_threshold = angle_threshold
        self.success_angle = success_angle

    def reset(self, np_random: np.random.Generator) -> None:
        """Nothing to set up beyond the robot."""

    def is_terminated(self) -> bool:
        """The pole fell past the angle threshold or the cart left the track."""
        x, angle = self.robot.get_positions()
        return abs(x) > self.x_threshold or abs(angle) > self.angle_threshold

    def is_success(self) -> bool:
        """The pole is within `success_angle` of upright."""
        return abs(self.robot.get_positions()[1]) < self.success_angle

    def compute_dense_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """One `alive` term: +1 for every step taken."""
        return {"alive": 1.0}
