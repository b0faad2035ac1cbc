"""Reach on PyBullet: a Panda arm brings its end effector to a random target."""

from __future__ import annotations

from rlrobot.envs.core import GoalRobotTaskEnv
from rlrobot.envs.robots.panda import Panda
from rlrobot.envs.tasks.reach import Reach
from rlrobot.sim import Camera, Simulation


class ReachEnv(GoalRobotTaskEnv):
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

    ## Rewards
    `goal` term (`info["reward_goal"]`), equal to `env.unwrapped.compute_reward(achieved_goal,
    desired_goal, info)`, which is vectorised for hindsight relabelling:
    - `reward_mode="dense"`: −distance (m) between end effector and target;
    - `reward_mode="sparse"`: 0 when distance < `distance_threshold`, else −1.

    ## Start state
    Arm in its neutral pose at rest; target uniform in the box
    x, y ∈ [−0.15, 0.15] m, z ∈ [0.05, 0.35] m (arm base at (−0.6, 0, 0)).

    ## Episode end
    Never terminated; truncated after 50 steps (`max_episode_steps`). `info["is_success"]`
    is True while the distance is below `distance_threshold`. One step is 1/24 s
    (10 physics substeps of 1/240 s).

    ## Arguments (all `gym.make` keywords)
    `reward_mode` ("dense" | "sparse"), `control_mode` ("ee" | "joints"),
    `distance_threshold` (m, 0.05), `goal_low`/`goal_high` (m), `max_ee_step` (m, 0.05),
    `max_joint_step` (rad, 0.05), `render_mode` ("rgb_array" | "human"),
    `render_width`/`render_height` (pixels, 480).

    ## Version history
    - v0: first version.
    """

    def __init__(
        self,
        reward_mode: str = "dense",
        control_mode: str = "ee",
        distance_threshold: float = 0.05,
        goal_low: tuple[float, float, float] = (-0.15, -0.15, 0.05),
        goal_high: tuple[float, float, float] = (0.15, 0.15, 0.35),
        max_ee_step: float = 0.05,
        max_joint_step: float = 0.05,
        render_mode: str | None = None,
        render_width: int = 480,
        render_height: int = 480,
    ) -> None:
        sim = Simulation(
            connection_mode="gui" if render_mode == "human" else "direct",
            timestep=1.0 / 240.0,
            n_substeps=10,
        )
        try:
            robot = Panda(
                sim,
                control_mode=control_mode,
                max_ee_step=max_ee_step,
                max_joint_step=max_joint_step,
            )
            sim.create_box("table", (0.55, 0.4, 0.02), 0.0, (-0.3, 0.0, -0.02), (0.9, 0.9, 0.9, 1))
            task = Reach(
                sim, robot.get_ee_position, reward_mode, distance_threshold, goal_low, goal_high
            )
        except Exception:
            sim.close()
            raise
        super().__init__(
            sim,
            robot,
            task,
            render_mode=render_mode,
            render_width=render_width,
            render_height=render_height,
            camera=Camera(target=(-0.2, 0.0, 0.15), distance=1.2, yaw=50.0, pitch=-30.0),
        )
