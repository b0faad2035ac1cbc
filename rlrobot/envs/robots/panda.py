"""The Franka Emika Panda arm from pybullet_data, fingers held closed."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlrobot.envs.core import Robot
from rlrobot.sim import Simulation

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
END_EFFECTOR_LINK = 11
NEUTRAL_JOINT_POSITIONS = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])
ARM_JOINT_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
CONTROL_MODES = ("ee", "joints")


class Panda(Robot):
    """7-DoF Panda arm on a fixed base, driven by end-effector or joint displacements.

    Action (`Box(-1, 1)`, float32):
        - `control_mode="ee"`: shape (3,), end-effector displacement in x, y, z; each unit is
          `max_ee_step` m. The target goes through inverse kinematics.
        - `control_mode="joints"`: shape (7,), arm joint displacements; each unit is
          `max_joint_step` rad.

    Observation (float, m and m/s): end-effector position (3), end-effector velocity (3),
    then in `joints` mode the 7 arm joint angles (rad).

    Args:
        sim: The simulation to load into.
        base_position: Where the base stands (m).
        control_mode: "ee" or "joints".
        max_ee_step: End-effector displacement (m) of a unit action in "ee" mode.
        max_joint_step: Joint displacement (rad) of a unit action in "joints" mode.
    """

    def __init__(
        self,
        sim: Simulation,
        base_position: tuple[float, float, float] = (-0.6, 0.0, 0.0),
        control_mode: str = "ee",
        max_ee_step: float = 0.05,
        max_joint_step: float = 0.05,
    ) -> None:
        super().__init__(sim)
        if control_mode not in CONTROL_MODES:
            raise ValueError(f"control_mode must be one of {CONTROL_MODES}, got {control_mode!r}")
        self.control_mode = control_mode
        self.max_ee_step = max_ee_step
        self.max_joint_step = max_joint_step
        n_actions = 3 if control_mode == "ee" else len(ARM_JOINTS)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_actions,), dtype=np.float32)
        sim.load_urdf("panda", "franka_panda/panda.urdf", base_position, use_fixed_base=True)
        self._joint_lower = np.array([sim.get_joint_info("panda", j)[8] for j in ARM_JOINTS])
        self._joint_upper = np.array([sim.get_joint_info("panda", j)[9] for j in ARM_JOINTS])

    def reset(self, np_random: np.random.Generator) -> None:
        """Return to the neutral pose at rest, fingers closed."""
        self.sim.reset_joint_states("panda", ARM_JOINTS, NEUTRAL_JOINT_POSITIONS)
        self.sim.reset_joint_states("panda", FINGER_JOINTS, (0.0, 0.0))
        self._hold(NEUTRAL_JOINT_POSITIONS)

    def _hold(self, arm_targets: np.ndarray) -> None:
        self.sim.set_joint_positions_target("panda", ARM_JOINTS, arm_targets, ARM_JOINT_FORCES)
        self.sim.set_joint_positions_target("panda", FINGER_JOINTS, (0.0, 0.0), (20.0, 20.0))

    def set_action(self, action: np.ndarray) -> None:
        """Set joint position targets one action's displacement away."""
        if self.control_mode == "ee":
            target = self.get_ee_position() + action * self.max_ee_step
            target[2] = max(target[2], 0.0)
            arm_targets = self.sim.inverse_kinematics("panda", END_EFFECTOR_LINK, target)[:7]
        else:
            current, _ = self.sim.get_joint_states("panda", ARM_JOINTS)
            arm_targets = current + action * self.max_joint_step
        self._hold(np.clip(arm_targets, self._joint_lower, self._joint_upper))

    def get_ee_position(self) -> np.ndarray:
        """End-effector (grasp point) position in m, shape (3,)."""
        return self.sim.get_link_position("panda", END_EFFECTOR_LINK)

    def get_obs(self) -> np.ndarray:
        """End-effector position and velocity (+ joint angles in "joints" mode)."""
        parts = [self.get_ee_position(), self.sim.get_link_velocity("panda", END_EFFECTOR_LINK)]
        if self.control_mode == "joints":
            parts.append(self.sim.get_joint_states("panda", ARM_JOINTS)[0])
        return np.concatenate(parts)
