"""Reach on PyBullet: a Panda arm brings its end effector to a random target."""

from __future__ import annotations

from typing import Any

from rlrobot.envs.checks import check_arguments
from rlrobot.envs.panda_table import PandaTableEnv
from rlrobot.envs.robots.panda import (
    DEFAULT_CONTROL_MODE,
    DEFAULT_MAX_EE_STEP,
    DEFAULT_MAX_JOINT_STEP,
    EeStep,
    JointStep,
)
from rlrobot.envs.tasks.goal import SuccessRadius
from rlrobot.envs.tasks.reach import Reach


class ReachEnv(PandaTableEnv):
    """Move the Panda's end effector to a target (`rlrobot/Reach-v0`), goal-conditioned.

    ## Action space
    `Box(-1, 1, float32)`: shape (3,) end-effector displacement (× `max_ee_step` m, through
    inverse kinematics) with `control_mode="ee"` (default), or shape (7,) joint displacements
    (× `max_joint_step` rad) with `control_mode="joints"`. Out-of-bounds actions are clipped.

    ## Observation space
    `Dict` of float32 boxes:

    | key             | shape       | meaning                                           | unit    |
    |-----------------|-------------|---------------------------------------------------|---------|
    | `observation`   | (6,) / (13,)| end-effector position (3) and velocity (3),       | m, m/s, |
    |                 |             | + 7 arm joint angles in "joints" mode             | rad     |
    | `achieved_goal` | (3,)        | end-effector position                             | m       |
    | `desired_goal`  | (3,)        | target position                                   | m       |

    `obs_mode="pixels"` replaces `observation` by `pixels` (uint8 (84, 84, 3), side camera or,
    with `pixels_camera="robot"`, the wrist camera); `"state+pixels"` adds `pixels`.

    ## Rewards
    Equal to `env.unwrapped.compute_reward(achieved_goal, desired_goal, info)`, which is
    vectorised for hindsight relabelling:
    - `reward_mode="dense"`: `goal` term, −distance (m) between end effector and target;
    - `"sparse"`: `success` term, 0 when distance < `distance_threshold`, else −1;
    - `"delayed"`: the dense rewards withheld and paid as one sum at the episode's end
      (`compute_reward` is then undefined).

    ## Start state
    Arm in its neutral pose at rest; target uniform in the box
    x, y ∈ [−0.15, 0.15] m, z ∈ [0.05, 0.35] m (arm base at (−0.6, 0, 0)).

    ## Episode end
    Never terminated; truncated after 50 steps (`max_episode_steps`). `info["is_success"]`
    is True while the distance is below `distance_threshold`. One step is 1/24 s
    (10 physics substeps of 1/240 s).

    ## Arguments (all `gym.make` keywords)
    `control_mode` ("ee" | "joints"), `distance_threshold` (m, 0.05), `goal_low`/`goal_high`
    (m), `max_ee_step` (m, 0.05), `max_joint_step` (rad, 0.05), and the options of every robot
    env (`RobotTaskEnv`): `reward_mode`, `obs_mode`, `pixels_width`/`pixels_height`,
    `pixels_camera`, `randomization`, `render_mode`, `render_width`/`render_height`, `render_camera`
    (image sides at most 2048 px, `MAX_IMAGE_SIDE`).
    ## Version history
    - v0: first version.
    """

    @check_arguments
    def __init__(
        self,
        control_mode: str = DEFAULT_CONTROL_MODE,
        distance_threshold: SuccessRadius = 0.05,
        goal_low: tuple[float, float, float] = (-0.15, -0.15, 0.05),
        goal_high: tuple[float, float, float] = (0.15, 0.15, 0.35),
        max_ee_step: EeStep = DEFAULT_MAX_EE_STEP,
        max_joint_step: JointStep = DEFAULT_MAX_JOINT_STEP,
        **options: Any,
    ) -> None:
        super().__init__(
            lambda sim, robot, reward_mode: Reach(
                sim, robot.get_ee_position, reward_mode, distance_threshold, goal_low, goal_high
            ),
            control_mode=control_mode,
            max_ee_step=max_ee_step,
            max_joint_step=max_joint_step,
            **options,
        )
