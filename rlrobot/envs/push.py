"""Push on PyBullet: a Panda arm slides a cube across a table to a goal."""

from __future__ import annotations

from typing import Annotated, Any

from rlrobot.envs.checks import Interval, check_arguments
from rlrobot.envs.panda_table import PandaTableEnv
from rlrobot.envs.robots.panda import (
    DEFAULT_CONTROL_MODE,
    DEFAULT_MAX_EE_STEP,
    DEFAULT_MAX_JOINT_STEP,
    EeStep,
    JointStep,
)
from rlrobot.envs.tasks.goal import SuccessRadius
from rlrobot.envs.tasks.push import Push

HalfSide = Annotated[float, Interval(0, unit="m")]


class PushEnv(PandaTableEnv):
    """Push a cube to a goal on the table with the Panda (`rlrobot/Push-v0`), goal-conditioned.

    ## Action space
    `Box(-1, 1, (3,), float32)`: end-effector displacement × `max_ee_step` m (inverse
    kinematics); the fingers stay closed, so the cube can be pushed but not grasped.
    `control_mode="joints"` gives shape (7,) joint displacements × `max_joint_step` rad.

    ## Observation space
    `Dict` of float32 boxes:

    | key             | shape         | meaning                                           | unit  |
    |-----------------|---------------|---------------------------------------------------|-------|
    | `observation`   | (19,) / (26,) | end-effector position (3) and velocity (3); cube  | m,    |
    |                 |               | position (3), orientation quaternion xyzw (4),    | m/s,  |
    |                 |               | velocity (3), angular velocity (3); + 7 joint     | rad/s,|
    |                 |               | angles in "joints" mode (after the end effector)  | rad   |
    | `achieved_goal` | (3,)          | cube centre                                       | m     |
    | `desired_goal`  | (3,)          | goal position (on the table, at cube height)      | m     |

    `obs_mode="pixels"` replaces `observation` by `pixels` (uint8 (84, 84, 3), side camera or,
    with `pixels_camera="robot"`, the wrist camera); `"state+pixels"` adds `pixels`.

    ## Rewards
    Equal to `env.unwrapped.compute_reward(achieved_goal, desired_goal, info)` (vectorised):
    - `reward_mode="dense"`: `goal` term, −distance (m) between cube and goal;
    - `"sparse"`: `success` term, 0 when distance < `distance_threshold`, else −1;
    - `"delayed"`: the dense rewards withheld and paid as one sum at the episode's end
      (`compute_reward` is then undefined).

    ## Start state
    Arm in its neutral pose at rest; a 4 cm, 1 kg cube at rest uniformly in
    |x|, |y| ≤ 0.15 m on the table top (z = 0; arm base at (−0.6, 0, 0)); goal uniform in
    |x|, |y| ≤ 0.15 m at the cube's height, at least 2 × `distance_threshold` from the cube.

    ## Episode end
    Never terminated; truncated after 50 steps (`max_episode_steps`). `info["is_success"]`
    is True while the cube is within `distance_threshold` of the goal. One step is 1/24 s
    (10 physics substeps of 1/240 s).

    ## Arguments (all `gym.make` keywords)
    `control_mode` ("ee" | "joints"), `distance_threshold` (m, 0.05), `object_size` (m, 0.04),
    `object_mass` (kg, 1), `object_range`/`goal_range` (m, 0.15), `max_ee_step` (m, 0.05),
    `max_joint_step` (rad, 0.05), and the options of every robot env (`RobotTaskEnv`):
    `reward_mode`, `obs_mode`, `pixels_width`/`pixels_height`, `pixels_camera`,
    `randomization`, `render_mode`, `render_width`/`render_height`, `render_camera`
    (image sides at most 2048 px, `MAX_IMAGE_SIDE`).
    ## Version history
    - v0: first version.
    """

    @check_arguments
    def __init__(
        self,
        control_mode: str = DEFAULT_CONTROL_MODE,
        distance_threshold: SuccessRadius = 0.05,
        object_size: Annotated[float, Interval(0, low_open=True, unit="m")] = 0.04,
        object_mass: Annotated[float, Interval(0, low_open=True, unit="kg")] = 1.0,
        object_range: HalfSide = 0.15,
        goal_range: HalfSide = 0.15,
        max_ee_step: EeStep = DEFAULT_MAX_EE_STEP,
        max_joint_step: JointStep = DEFAULT_MAX_JOINT_STEP,
        **options: Any,
    ) -> None:
        super().__init__(
            lambda sim, robot, reward_mode: Push(
                sim,
                reward_mode,
                distance_threshold,
                object_size,
                object_mass,
                object_range,
                goal_range,
            ),
            control_mode=control_mode,
            max_ee_step=max_ee_step,
            max_joint_step=max_joint_step,
            **options,
        )
