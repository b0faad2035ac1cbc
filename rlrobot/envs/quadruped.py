"""Quadruped on PyBullet: a four-legged ant learns to walk forward."""

from __future__ import annotations

import math
from typing import Annotated, Any

from rlrobot.envs.checks import Interval, NonNegative, check_arguments
from rlrobot.envs.core import RobotTaskEnv
from rlrobot.envs.robots.ant import Ant
from rlrobot.envs.tasks.locomotion import WalkForward
from rlrobot.sim import Camera, Simulation


class QuadrupedEnv(RobotTaskEnv):
    """Walk forward with pybullet_data's MJCF ant (`rlrobot/Quadruped-v0`).

    The ant (torso sphere and eight capsule legs, ≈ 180 kg as PyBullet reads the model) is
    the fastest to load of pybullet_data's legged robots and stays stable under random torques.
    `docs/envs_notes.md` records the measurements and tuning behind this env's defaults.

    ## Action space
    `Box(-1, 1, (8,), float32)`: joint torques × `max_torque` N·m (hip then ankle of the
    front-left, front-right, back-left and back-right legs).

    ## Observation space
    `obs_mode="state"`: `Box(-inf, inf, (27,), float32)`:

    | index  | meaning                                   | unit  |
    |--------|-------------------------------------------|-------|
    | 0      | torso height z                            | m     |
    | 1–4    | torso orientation quaternion (x, y, z, w) | —     |
    | 5–7    | torso linear velocity (world frame)       | m/s   |
    | 8–10   | torso angular velocity (world frame)      | rad/s |
    | 11–18  | joint angles                              | rad   |
    | 19–26  | joint velocities                          | rad/s |

    `"pixels"`: uint8 (84, 84, 3) from a camera following the torso (or, with
    `pixels_camera="robot"`, one on the torso looking ahead); `"state+pixels"`:
    `Dict(state, pixels)`.

    ## Rewards
    - `reward_mode="dense"`, the sum of three terms (`info["reward_<term>"]`):
      `forward` = `forward_weight` × torso x velocity (m/s); `energy` = −`energy_weight` ×
      Σ|τ·q̇| × dt, the motors' work in the step (J); `alive` = `alive_bonus` for every step
      that does not end in a fall.
    - `"sparse"`: `success` term 1 while the torso is ≥ `success_distance` m ahead of its start.
    - `"delayed"`: the dense rewards withheld and paid as one sum at the episode's end.

    ## Start state
    Torso at (0, 0, 0.75) m, level, facing +x, at rest; hips at 0 and ankles at ±1 rad, each
    joint angle and velocity with uniform noise in ±`reset_noise`.

    ## Episode end
    Terminated by a fall, `info["fell"] = True`: torso below `min_height` m or tilted more
    than `max_tilt` rad. Truncated after 1000 steps (`max_episode_steps`). One step is 1/60 s
    (4 physics substeps of 1/240 s).

    ## Arguments (all `gym.make` keywords)
    `max_torque` (N·m held over the step, 375), `reset_noise` (0.1), `forward_weight` (1),
    `energy_weight` (per J, ≥ 0, 0.004), `alive_bonus` (1), `min_height` (m, 0.26), `max_tilt`
    (rad in (0, π], 1.0), `success_distance` (m, 2), and the options of every robot env
    (`RobotTaskEnv`): `reward_mode`, `obs_mode`, `pixels_width`/`pixels_height`, `pixels_camera`,
    `randomization`, `render_mode`, `render_width`/`render_height`, `render_camera`
    (image sides at most 2048 px, `MAX_IMAGE_SIDE`).
    ## Version history
    - v0: first version. Torques are held over all 4 substeps of a step (PyBullet applies a
      torque command for one substep). `max_torque` 375 and `energy_weight` 0.004 are
      pybullet_envs' AntBulletEnv's motor strength and electricity cost.
    """

    @check_arguments
    def __init__(
        self,
        max_torque: Annotated[float, Interval(0, low_open=True, unit="N·m")] = 375.0,
        reset_noise: NonNegative = 0.1,
        forward_weight: float = 1.0,
        energy_weight: NonNegative = 0.004,
        alive_bonus: float = 1.0,
        min_height: Annotated[float, Interval(0, unit="m")] = 0.26,
        max_tilt: Annotated[float, Interval(0, math.pi, low_open=True, unit="rad")] = 1.0,
        success_distance: Annotated[float, Interval(0, low_open=True, unit="m")] = 2.0,
        **options: Any,
    ) -> None:
        def build(sim: Simulation, reward_mode: str) -> tuple[Ant, WalkForward]:
            sim.load_urdf("ground", "plane.urdf", visual_shapes=True)
            robot = Ant(sim, max_torque, reset_noise)
            task = WalkForward(
                sim,
                robot,
                reward_mode,
                forward_weight,
                energy_weight,
                alive_bonus,
                min_height,
                max_tilt,
                success_distance,
            )
            return robot, task

        super().__init__(
            build,
            timestep=1.0 / 240.0,
            n_substeps=4,
            camera=Camera(target=(0.0, 0.0, 0.2), distance=3.0, yaw=30.0, pitch=-25.0, track="ant"),
            **options,
        )
