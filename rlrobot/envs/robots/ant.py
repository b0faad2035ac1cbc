"""The four-legged "ant" of pybullet_data's MJCF models, driven by joint torques."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlrobot.envs.core import Robot
from rlrobot.sim import Simulation

# Hip and ankle of each leg: front left, front right, back left, back right.
LEG_JOINTS = (1, 3, 6, 8, 11, 13, 16, 18)
# The model's `init_qpos`: hips straight, ankles bent 1 rad (their limits exclude 0).
START_JOINT_POSITIONS = np.array([0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0])
START_HEIGHT = 0.75
CAMERA_HEIGHT = 0.3


class Ant(Robot):
    """A 4-legged, 8-joint torso-and-capsules quadruped (≈ 180 kg as PyBullet reads it).

    Action (`Box(-1, 1, (8,), float32)`): joint torques × `max_torque` × `actuator_scale` N·m,
    in `LEG_JOINTS` order (hip then ankle of the front-left, front-right, back-left and
    back-right legs).

    Observation (float, shape (27,)), as Gymnasium's MuJoCo Ant without contact forces: torso
    height, orientation and velocities, then the joint angles and velocities; the table with
    indices and units is in `QuadrupedEnv`'s docstring, the env's spec.

    Mounted camera: above the torso, looking ahead along its x axis.

    Args:
        sim: The simulation to load into (with a ground plane).
        max_torque: Torque of a unit action (N·m), held over the whole env step.
        reset_noise: Joint angles and velocities start uniform in ±reset_noise around the
            start pose; the torso starts at `START_HEIGHT` m, level, facing +x, at rest.
    """

    episode_attributes = ("actuator_scale", "torques")

    def __init__(self, sim: Simulation, max_torque: float, reset_noise: float):
        super().__init__(sim)
        self.max_torque = max_torque
        self.reset_noise = reset_noise
        self.action_space = spaces.Box(-1.0, 1.0, shape=(len(LEG_JOINTS),), dtype=np.float32)
        sim.load_mjcf("ant", "mjcf/ant.xml")
        self.torques = np.zeros(len(LEG_JOINTS))

    def reset(self, np_random: np.random.Generator) -> None:
        """Stand level at the start pose, with small uniform joint noise."""
        noise = np_random.uniform(-self.reset_noise, self.reset_noise, size=(2, len(LEG_JOINTS)))
        self.sim.set_base_pose("ant", (0.0, 0.0, START_HEIGHT))
        self.sim.set_base_velocity("ant")
        self.sim.reset_joint_states("ant", LEG_JOINTS, START_JOINT_POSITIONS + noise[0], noise[1])
        self.sim.disable_joint_motors("ant", LEG_JOINTS)
        self.torques = np.zeros(len(LEG_JOINTS))

    def set_action(self, action: np.ndarray) -> None:
        """Apply joint torques `action` × max_torque × actuator_scale (N·m)."""
        self.torques = action * (self.max_torque * self.actuator_scale)
        self.sim.set_joint_forces("ant", LEG_JOINTS, self.torques)

    def get_joint_velocities(self) -> np.ndarray:
        """Joint velocities (rad/s), shape (8,)."""
        return self.sim.get_joint_states("ant", LEG_JOINTS)[1]

    def get_obs(self) -> np.ndarray:
        """Torso height, orientation and velocities, joint angles and velocities (table above)."""
        position, orientation = self.sim.get_base_pose("ant")
        linear, angular = self.sim.get_base_velocity("ant")
        joint_positions, joint_velocities = self.sim.get_joint_states("ant", LEG_JOINTS)
        return np.concatenate(
            [position[2:], orientation, linear, angular, joint_positions, joint_velocities]
        )

    def get_camera_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A camera just above the torso, looking ahead along the torso's x axis."""
        position, orientation = self.sim.get_base_pose("ant")
        axes = self.sim.rotation_matrix(orientation)
        eye = position + CAMERA_HEIGHT * axes[:, 2]
        return eye, eye + axes[:, 0], axes[:, 2]
