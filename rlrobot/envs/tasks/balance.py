"""Balance: keep the pole upright and the cart on its track."""

from __future__ import annotations

import numpy as np

from rlrobot.envs.core import Task
from rlrobot.envs.robots.cartpole import CartPoleRobot
from rlrobot.sim import Simulation


class Balance(Task):
    """+1 per step while |pole angle| ≤ angle_threshold and |cart x| ≤ x_threshold.

    Args:
        sim: The simulation.
        robot: The cart-pole whose state is judged.
        x_threshold: Cart distance from the centre (m) that ends the episode.
        angle_threshold: Pole angle from vertical (rad) that ends the episode.
    """

    def __init__(
        self,
        sim: Simulation,
        robot: CartPoleRobot,
        reward_mode: str = "dense",
        x_threshold: float = 2.4,
        angle_threshold: float = 12 * np.pi / 180,
    ) -> None:
        super().__init__(sim, reward_mode)
        self.robot = robot
        self.x_threshold = x_threshold
        self.angle_threshold = angle_threshold

    def reset(self, np_random: np.random.Generator) -> None:
        """Nothing to set up beyond the robot."""

    def is_terminated(self) -> bool:
        """The pole fell past the angle threshold or the cart left the track."""
        x, _, angle, _ = self.robot.get_obs()
        return bool(abs(x) > self.x_threshold or abs(angle) > self.angle_threshold)

    def compute_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """One `alive` term: +1 for every step taken."""
        return {"alive": 1.0}
