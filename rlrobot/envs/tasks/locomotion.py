"""Locomotion: walk forward along +x without falling."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlrobot.envs.core import Task
from rlrobot.envs.robots.ant import Ant
from rlrobot.sim import Simulation


class WalkForward(Task):
    """Walk along +x as fast as possible while staying upright and sparing energy.

    Dense reward terms (`info["reward_<term>"]`):
        - `forward`: `forward_weight` × torso velocity along +x (m/s);
        - `energy`: −`energy_weight` × Σ|τᵢ q̇ᵢ| × dt, the motors' mechanical work in the step
          (J; torques τ in N·m, joint velocities q̇ in rad/s);
        - `alive`: +`alive_bonus` for each step that does not end in a fall.
    Sparse reward (success): 1 while the torso is at least `success_distance` m ahead of its
    start. A fall is the torso lower than `min_height` m or tilted more than `max_tilt` rad from
    upright; it terminates the episode and sets `info["fell"]`.

    Args:
        sim: The simulation.
        robot: The legged robot.
        reward_mode: "dense", "sparse" or "delayed".
        forward_weight: Weight of the forward-velocity term (per m/s).
        energy_weight: Weight of the energy term (per J).
        alive_bonus: Reward per upright step.
        min_height: Torso height (m) below which the robot has fallen.
        max_tilt: Angle (rad) between torso z axis and vertical beyond which it has fallen.
        success_distance: Forward progress (m) that counts as success.
    """

    episode_attributes = ("start_x",)

    def __init__(
        self,
        sim: Simulation,
        robot: Ant,
        reward_mode: str,
        forward_weight: float,
        energy_weight: float,
        alive_bonus: float,
        min_height: float,
        max_tilt: float,
        success_distance: float,
    ) -> None:
        super().__init__(sim, reward_mode)
        self.robot = robot
        self.forward_weight = forward_weight
        self.energy_weight = energy_weight
        self.alive_bonus = alive_bonus
        self.min_height = min_height
        self.min_up_z = float(np.cos(max_tilt))
        self.success_distance = success_distance
        self.start_x = 0.0

    def reset(self, np_random: np.random.Generator) -> None:
        """Remember where the torso starts."""
        self.start_x = float(self.sim.get_base_position("ant")[0])

    def has_fallen(self) -> bool:
        """Torso below `min_height` or tilted beyond `max_tilt`."""
        position, (x, y, _, _) = self.sim.get_base_pose("ant")
        up_z = 1.0 - 2.0 * (x * x + y * y)  # z component of the torso's z axis
        return bool(position[2] < self.min_height or up_z < self.min_up_z)

    def compute_dense_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """`forward`, `energy` and `alive` terms of the step just taken (see class doc)."""
        velocity, _ = self.sim.get_base_velocity("ant")
        power = np.abs(self.robot.torques * self.robot.get_joint_velocities()).sum()
        return {
            "forward": self.forward_weight * float(velocity[0]),
            "energy": -self.energy_weight * float(power) * self.sim.dt,
            "alive": 0.0 if self.has_fallen() else self.alive_bonus,
        }

    def is_success(self) -> bool:
        """The torso is at least `success_distance` m ahead of its start."""
        progress = self.sim.get_base_position("ant")[0] - self.start_x
        return bool(progress >= self.success_distance)

    def is_terminated(self) -> bool:
        """The robot fell."""
        return self.has_fallen()

    def get_info(self) -> dict[str, Any]:
        """`fell`: whether the robot fell at this step."""
        return {"fell": self.has_fallen()}
