"""The scene of the Panda envs: the arm at the end of a table, seen from the side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlrobot.envs.core import GoalRobotTaskEnv, Task
from rlrobot.envs.robots.panda import EeStep, JointStep, Panda
from rlrobot.sim import Camera, Simulation

TABLE_HALF_EXTENTS = (0.55, 0.4, 0.02)
# The table top is the plane z = 0; the arm's base stands on it at x = −0.6 m.
TABLE_POSITION = (-0.3, 0.0, -0.02)


class PandaTableEnv(GoalRobotTaskEnv):
    """A goal env of the Panda on a table (top at z = 0) and a task built by `make_task`.

    One step is 1/24 s: 10 physics substeps of 1/240 s.

    Args:
        make_task: Builds the task from the simulation, the arm and the reward mode.
        control_mode: "ee" or "joints" (see `Panda`).
        max_ee_step: End-effector displacement (m) of a unit action in "ee" mode.
        max_joint_step: Joint displacement (rad) of a unit action in "joints" mode.
        **options: The options of every robot env (see `RobotTaskEnv`).
    """

    def __init__(
        self,
        make_task: Callable[[Simulation, Panda, str], Task],
        control_mode: str,
        max_ee_step: EeStep,
        max_joint_step: JointStep,
        **options: Any,
    ) -> None:
        def build(sim: Simulation, reward_mode: str) -> tuple[Panda, Task]:
            robot = Panda(
                sim,
                control_mode=control_mode,
                max_ee_step=max_ee_step,
                max_joint_step=max_joint_step,
            )
            sim.create_box("table", TABLE_HALF_EXTENTS, 0.0, TABLE_POSITION, (0.9, 0.9, 0.9, 1))
            return robot, make_task(sim, robot, reward_mode)

        super().__init__(
            build,
            timestep=1.0 / 240.0,
            n_substeps=10,
            camera=Camera(target=(-0.25, 0.0, 0.25), distance=1.4, yaw=50.0, pitch=-30.0),
            **options,
        )
