"""Navigate on PyBullet: a racecar drives to a goal on the floor around obstacles."""

from __future__ import annotations

import math
from typing import Annotated, Any

from rlrobot.envs.checks import Interval, check_arguments
from rlrobot.envs.core import GoalRobotTaskEnv
from rlrobot.envs.robots.racecar import Racecar, RayCount
from rlrobot.envs.tasks.goal import SuccessRadius
from rlrobot.envs.tasks.navigate import Navigate, ObstacleCount
from rlrobot.sim import Camera, Simulation

Metres = Annotated[float, Interval(0, low_open=True, unit="m")]


class NavigateEnv(GoalRobotTaskEnv):
    """Drive pybullet_data's racecar to a goal on the floor (`rlrobot/Navigate-v0`).

    ## Action space
    `Box(-1, 1, (2,), float32)`: [speed command × `max_speed` m/s, steering × `max_steering`
    rad]. Out-of-bounds actions are clipped.

    ## Observation space
    `Dict` of float32 boxes:

    | key             | shape          | meaning                                        | unit  |
    |-----------------|----------------|------------------------------------------------|-------|
    | `observation`   | (8 + n_rays,)  | x, y (m); cos, sin yaw; forward and leftward   | m,    |
    |                 |                | velocity (m/s); yaw rate (rad/s); steering     | m/s,  |
    |                 |                | angle (rad); lidar ranges (m), `n_rays` rays   | rad/s,|
    |                 |                | evenly over 360° from straight ahead, counter- | rad   |
    |                 |                | clockwise, ray-cast, capped at `ray_length`    |       |
    | `achieved_goal` | (2,)           | car base (rear axle) x, y                      | m     |
    | `desired_goal`  | (2,)           | goal x, y                                      | m     |

    `obs_mode="pixels"` replaces `observation` by `pixels` (uint8 (84, 84, 3), the overhead
    camera or, with `pixels_camera="robot"`, the car's front camera); `"state+pixels"` adds
    `pixels`.

    ## Rewards
    Equal to `env.unwrapped.compute_reward(achieved_goal, desired_goal, info)` (vectorised):
    - `reward_mode="dense"`: `goal` term, −distance (m) between car and goal;
    - `"sparse"`: `success` term, 0 when distance < `distance_threshold`, else −1;
    - `"delayed"`: the dense rewards withheld and paid as one sum at the episode's end
      (`compute_reward` is then undefined).

    ## Start state
    Car at the origin, at rest, heading uniform in [−π, π). Goal uniform in
    |x|, |y| ≤ `arena_half_size` m, at least `min_goal_distance` m away; `n_obstacles` static
    boxes (`obstacle_size` m wide, 0.4 m tall) uniform in the same square, ≥ 0.7 m from the
    start and ≥ 0.5 m from the goal.

    ## Episode end
    Never terminated (collisions just block the car); truncated after 200 steps
    (`max_episode_steps`). `info["is_success"]` is True while the car is within
    `distance_threshold` of the goal. One step is 0.05 s (5 physics substeps of 0.01 s).

    ## Arguments (all `gym.make` keywords)
    `distance_threshold` (m, 0.3), `arena_half_size` (m, 2), `n_obstacles` (4, at most
    1000), `obstacle_size` (m, 0.3), `min_goal_distance` (m, 1), `max_speed` (m/s, 1),
    `max_steering` (rad, 0.5, at most π/2), `n_rays` (16, at most 4096), `ray_length` (m, 3),
    and the options of every robot env (`RobotTaskEnv`): `reward_mode`, `obs_mode`,
    `pixels_width`/`pixels_height` (at most 2048), `pixels_camera`, `randomization`,
    `render_mode`, `render_width`/`render_height` (at most 2048), `render_camera`.

    ## Version history
    - v0: first version.
    """

    @check_arguments
    def __init__(
        self,
        distance_threshold: SuccessRadius = 0.3,
        arena_half_size: Metres = 2.0,
        n_obstacles: ObstacleCount = 4,
        obstacle_size: Metres = 0.3,
        min_goal_distance: Annotated[float, Interval(0, unit="m")] = 1.0,
        max_speed: Annotated[float, Interval(0, low_open=True, unit="m/s")] = 1.0,
        max_steering: Annotated[float, Interval(0, math.pi / 2, low_open=True, unit="rad")] = 0.5,
        n_rays: RayCount = 16,
        ray_length: Metres = 3.0,
        **options: Any,
    ) -> None:
        def build(sim: Simulation, reward_mode: str) -> tuple[Racecar, Navigate]:
            sim.load_urdf("ground", "plane.urdf", visual_shapes=True)
            robot = Racecar(sim, max_speed, max_steering, n_rays=n_rays, ray_length=ray_length)
            task = Navigate(
                sim,
                robot,
                reward_mode,
                distance_threshold,
                arena_half_size,
                n_obstacles,
                obstacle_size,
                min_goal_distance,
            )
            return robot, task

        super().__init__(
            build,
            timestep=0.01,
            n_substeps=5,
            camera=Camera(target=(0.0, 0.0, 0.0), distance=5.5, yaw=0.0, pitch=-65.0),
            **options,
        )
