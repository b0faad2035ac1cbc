"""The Franka Emika Panda arm from pybullet_data, fingers held closed."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from gymnasium import spaces

from rlrobot.envs.checks import Interval, check_choice
from rlrobot.envs.core import Robot
from rlrobot.sim import Simulation

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
MOVABLE_JOINTS = ARM_JOINTS + FINGER_JOINTS
HAND_LINK = 8
END_EFFECTOR_LINK = 11
NEUTRAL_JOINT_POSITIONS = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])
ARM_JOINT_FORCES = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
FINGER_FORCES = np.array([20.0, 20.0])
MOTOR_FORCES = np.concatenate([ARM_JOINT_FORCES, FINGER_FORCES])
CONTROL_MODES = ("ee", "joints")
# Defaults of every Panda env (`gym.make` keywords): a unit action moves the end effector
# 5 cm ("ee" mode) or each arm joint 0.05 rad ("joints" mode).
DEFAULT_CONTROL_MODE = "ee"
DEFAULT_MAX_EE_STEP = 0.05
DEFAULT_MAX_JOINT_STEP = 0.05
# The hints of those options in the signatures of the Panda envs, which check them.
EeStep = Annotated[float, Interval(0, low_open=True, unit="m")]
JointStep = Annotated[float, Interval(0, low_open=True, unit="rad")]
# The wrist camera sits this far (m) from the hand's centre, off the fingers' closing plane.
WRIST_CAMERA_OFFSET = 0.07
# Damping λ (m) of the least-squares IK step: keeps the step bounded near singular poses.
IK_DAMPING = 0.01


def damped_least_squares(
    jacobian: np.ndarray, error: np.ndarray, damping: float = IK_DAMPING
) -> np.ndarray:
    """Δq = Jᵀ(JJᵀ + λ²I)⁻¹ e for a 3-row Jacobian J (3, n) and task-space error e (3,) → (n,).

    The 3×3 system is solved by a Cholesky factorisation in plain floats: for one small
    system per step that is cheaper than numpy's general solver (`docs/envs_notes.md`).
    """
    (a, b, c), (_, d, e), (_, _, f) = (jacobian @ jacobian.T).tolist()
    a, d, f = a + damping**2, d + damping**2, f + damping**2
    # A = L Lᵀ with L lower triangular.
    l11 = math.sqrt(a)
    l21, l31 = b / l11, c / l11
    l22 = math.sqrt(d - l21 * l21)
    l32 = (e - l31 * l21) / l22
    l33 = math.sqrt(f - l31 * l31 - l32 * l32)
    x, y, z = error.tolist()
    # Forward substitution L u = e, then back substitution Lᵀ v = u.
    u1 = x / l11
    u2 = (y - l21 * u1) / l22
    u3 = (z - l31 * u1 - l32 * u2) / l33
    v3 = u3 / l33
    v2 = (u2 - l32 * v3) / l22
    v1 = (u1 - l21 * v2 - l31 * v3) / l11
    return jacobian.T @ np.array([v1, v2, v3])


class Panda(Robot):
    """7-DoF Panda arm on a fixed base, driven by end-effector or joint displacements.

    Action (`Box(-1, 1)`, float32):
        - `control_mode="ee"`: shape (3,), end-effector displacement in x, y, z; each unit is
          `max_ee_step` m. One damped least-squares step of inverse kinematics,
          Δq = Jᵀ(JJᵀ + λ²I)⁻¹Δx on the 3×7 position Jacobian J, turns it into joint targets
          (one Jacobian instead of PyBullet's iterated IK: cheaper, and as accurate for steps
          of a few cm, as `docs/envs_notes.md` records; the position loop closes over
          successive steps).
        - `control_mode="joints"`: shape (7,), arm joint displacements; each unit is
          `max_joint_step` rad.
    Joint targets are tracked by PD position control with the Panda's torque limits
    (87 N·m shoulder/elbow, 12 N·m wrist) × `actuator_scale`.

    Observation (float, m and m/s): end-effector position (3), end-effector velocity (3),
    then in `joints` mode the 7 arm joint angles (rad).

    Mounted camera: on the wrist, beside the fingers, looking along them.

    Args:
        sim: The simulation to load into.
        control_mode: "ee" or "joints".
        max_ee_step: End-effector displacement (m) of a unit action in "ee" mode.
        max_joint_step: Joint displacement (rad) of a unit action in "joints" mode.
        base_position: Where the base stands (m).
    """

    def __init__(
        self,
        sim: Simulation,
        control_mode: str,
        max_ee_step: float,
        max_joint_step: float,
        base_position: tuple[float, float, float] = (-0.6, 0.0, 0.0),
    ) -> None:
        super().__init__(sim)
        self.control_mode = check_choice("control_mode", control_mode, CONTROL_MODES)
        self.max_ee_step = max_ee_step
        self.max_joint_step = max_joint_step
        n_actions = 3 if control_mode == "ee" else len(ARM_JOINTS)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_actions,), dtype=np.float32)
        sim.load_urdf("panda", "franka_panda/panda.urdf", base_position, use_fixed_base=True)
        self._joint_lower = np.array([sim.get_joint_info("panda", j)[8] for j in ARM_JOINTS])
        self._joint_upper = np.array([sim.get_joint_info("panda", j)[9] for j in ARM_JOINTS])

    def reset(self, np_random: np.random.Generator) -> None:
        """Return to the neutral pose at rest, fingers closed."""
        self.sim.reset_joint_states(
            "panda", MOVABLE_JOINTS, np.concatenate([NEUTRAL_JOINT_POSITIONS, (0.0, 0.0)])
        )
        self._hold(NEUTRAL_JOINT_POSITIONS)

    def _hold(self, arm_targets: np.ndarray) -> None:
        """Track `arm_targets` (rad) with the arm and keep the fingers closed."""
        targets = [*arm_targets.tolist(), 0.0, 0.0]
        forces = MOTOR_FORCES * self.actuator_scale
        self.sim.set_joint_positions_target("panda", MOVABLE_JOINTS, targets, forces)

    def set_action(self, action: np.ndarray) -> None:
        """Set joint position targets one action's displacement away."""
        joint_positions, _ = self.sim.get_joint_states("panda", MOVABLE_JOINTS)
        arm_positions = joint_positions[: len(ARM_JOINTS)]
        if self.control_mode == "ee":
            position = self.get_ee_position()
            target = position + action * self.max_ee_step
            target[2] = max(target[2], 0.0)
            jacobian = self.sim.get_linear_jacobian("panda", END_EFFECTOR_LINK, joint_positions)
            step = damped_least_squares(jacobian[:, : len(ARM_JOINTS)], target - position)
            arm_targets = arm_positions + step
        else:
            arm_targets = arm_positions + action * self.max_joint_step
        self._hold(np.minimum(np.maximum(arm_targets, self._joint_lower), self._joint_upper))

    def get_ee_position(self) -> np.ndarray:
        """End-effector (grasp point) position in m, shape (3,)."""
        return self.sim.get_link_position("panda", END_EFFECTOR_LINK)

    def get_ground_truth(self) -> dict[str, np.ndarray]:
        """`ee_position`: the end-effector position (m), shape (3,)."""
        return {"ee_position": np.array(self.get_ee_position())}

    def get_obs(self) -> np.ndarray:
        """End-effector position and velocity (+ joint angles in "joints" mode)."""
        parts = list(self.sim.get_link_state("panda", END_EFFECTOR_LINK))
        if self.control_mode == "joints":
            parts.append(self.sim.get_joint_states("panda", ARM_JOINTS)[0])
        return np.concatenate(parts)

    def get_camera_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A wrist camera beside the fingers, looking along them (the hand's z axis)."""
        position, orientation = self.sim.get_link_pose("panda", HAND_LINK)
        axes = self.sim.rotation_matrix(orientation)
        eye = position + WRIST_CAMERA_OFFSET * axes[:, 0]
        return eye, eye + axes[:, 2], axes[:, 0]
