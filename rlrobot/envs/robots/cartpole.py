"""The cart-pole from pybullet_data: a cart on a rail with a free pole on top."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlrobot.envs.core import Robot
from rlrobot.sim import Simulation

CART_JOINT = 0
POLE_JOINT = 1
# The mounted camera rides with the cart, 1.5 m in front of the rail, at pole height.
CAMERA_OFFSET = np.array([0.0, -1.5, 0.5])
CAMERA_LOOK_AT = np.array([0.0, 0.0, 0.5])


class CartPoleRobot(Robot):
    """Cart driven by a horizontal force; senses cart position/velocity and pole angle/rate.

    Mounted camera: rides with the cart, looking at the pole from the side.

    Args:
        sim: The simulation to load into.
        continuous: `Box(-1, 1, (1,))` force fraction if True, else `Discrete(2)` (0 pushes
            towards -x, 1 towards +x) with the full force.
        force_magnitude: Force of a full push in N (× `actuator_scale`), held over the env step;
            5 N gives the impulse of 10 N applied for the first of its 2 substeps.
        reset_noise: Joint positions and velocities start uniform in ±reset_noise.
    """

    def __init__(
        self,
        sim: Simulation,
        continuous: bool,
        force_magnitude: float,
        reset_noise: float,
    ) -> None:
        super().__init__(sim)
        self.continuous = continuous
        self.force_magnitude = force_magnitude
        self.reset_noise = reset_noise
        self.action_space = (
            spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
            if continuous
            else spaces.Discrete(2)
        )
        sim.load_urdf("cartpole", "cartpole.urdf", use_fixed_base=True)
        for link in (-1, CART_JOINT, POLE_JOINT):
            sim.change_dynamics("cartpole", link, linearDamping=0.0, angularDamping=0.0)
        sim.disable_joint_motors("cartpole", (CART_JOINT, POLE_JOINT))
        # The URDF's white pole vanishes against the white background of TinyRenderer frames.
        sim.set_color("cartpole", (0.9, 0.45, 0.1, 1.0), link=POLE_JOINT)

    def reset(self, np_random: np.random.Generator) -> None:
        """Start near upright and at rest, with small uniform noise."""
        state = np_random.uniform(-self.reset_noise, self.reset_noise, size=4)
        self.sim.reset_joint_states(
            "cartpole", (CART_JOINT, POLE_JOINT), state[[0, 2]], state[[1, 3]]
        )
        self.sim.disable_joint_motors("cartpole", (CART_JOINT, POLE_JOINT))

    def set_action(self, action: np.ndarray) -> None:
        """Push the cart with `action` × force_magnitude N (continuous) or ±force (discrete)."""
        if self.continuous:
            force = float(action[0]) * self.force_magnitude
        else:
            force = self.force_magnitude if int(action) == 1 else -self.force_magnitude
        self.sim.set_joint_forces("cartpole", (CART_JOINT,), (force * self.actuator_scale,))

    def get_obs(self) -> np.ndarray:
        """[cart x (m), cart velocity (m/s), pole angle (rad), pole angular velocity (rad/s)]."""
        positions, velocities = self.sim.get_joint_states("cartpole", (CART_JOINT, POLE_JOINT))
        return np.array([positions[0], velocities[0], positions[1], velocities[1]])

    def get_positions(self) -> tuple[float, float]:
        """Cart position x (m) and pole angle from upright (rad)."""
        cart, pole = self.sim.get_joint_states("cartpole", (CART_JOINT, POLE_JOINT))[0].tolist()
        return cart, pole

    def get_camera_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A camera riding with the cart, looking at the pole from the side."""
        cart = self.sim.get_link_position("cartpole", CART_JOINT)
        return cart + CAMERA_OFFSET, cart + CAMERA_LOOK_AT, np.array([0.0, 0.0, 1.0])
