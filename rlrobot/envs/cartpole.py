"""CartPole on PyBullet: balance a pole on a cart, discrete or continuous force."""

from __future__ import annotations

import math
from typing import Annotated, Any

from rlrobot.envs.checks import Interval, NonNegative, check_arguments
from rlrobot.envs.core import RobotTaskEnv
from rlrobot.envs.robots.cartpole import CartPoleRobot
from rlrobot.envs.tasks.balance import Balance
from rlrobot.sim import Camera, Simulation

# A pole angle from upright beyond π rad is the same angle the other way round.
PoleAngle = Annotated[float, Interval(0, math.pi, low_open=True, unit="rad")]


class CartPoleEnv(RobotTaskEnv):
    """Balance pybullet_data's cart-pole (`rlrobot/CartPole-v0`, `rlrobot/CartPoleContinuous-v0`).

    ## Action space
    - `CartPole-v0`: `Discrete(2)`: 0 pushes the cart towards −x, 1 towards +x, with
      `force_magnitude` N.
    - `CartPoleContinuous-v0`: `Box(-1, 1, (1,), float32)`: force = action × `force_magnitude` N.

    ## Observation space
    `obs_mode="state"`: `Box(-inf, inf, (4,), float32)`:

    | index | meaning                 | unit  |
    |-------|-------------------------|-------|
    | 0     | cart position x         | m     |
    | 1     | cart velocity           | m/s   |
    | 2     | pole angle from upright | rad   |
    | 3     | pole angular velocity   | rad/s |

    `"pixels"`: uint8 (84, 84, 3) from the side camera (or, with `pixels_camera="robot"`, a
    camera riding with the cart); `"state+pixels"`: `Dict(state, pixels)`.

    ## Rewards
    - `reward_mode="dense"`: `alive` term +1 for every step, including the one that ends the
      episode (`info["reward_alive"]`).
    - `"sparse"`: `success` term 1 while |pole angle| < `success_angle`, else 0.
    - `"delayed"`: the dense rewards, withheld and paid as one sum at the episode's end.

    ## Start state
    All four state variables uniform in ±`reset_noise`.

    ## Episode end
    Terminated when |pole angle| > 12° or |cart x| > 2.4 m; truncated after 500 steps
    (`max_episode_steps`). One step is 0.02 s (2 physics substeps of 0.01 s).

    ## Arguments (all `gym.make` keywords)
    `continuous` (bool), `force_magnitude` (N held over the 0.02 s step, default 5),
    `reset_noise` (default 0.05), `x_threshold` (m, 2.4), `angle_threshold` (rad, 12°),
    `success_angle` (rad, 0.05; both angles in (0, π]), and the options of every robot env
    (`RobotTaskEnv`): `reward_mode`, `obs_mode`,
    `pixels_width`/`pixels_height`, `pixels_camera`, `randomization`, `render_mode`,
    `render_width`/`render_height`, `render_camera`
    (image sides at most 2048 px, `MAX_IMAGE_SIDE`).
    ## Version history
    - v0: first version. The force is now held over both substeps of a step (PyBullet
      applies a force command for one substep); `force_magnitude` 5 keeps the dynamics that
      10 gave when only the first substep got the force.
    """

    @check_arguments
    def __init__(
        self,
        continuous: bool = False,
        force_magnitude: Annotated[float, Interval(0, low_open=True, unit="N")] = 5.0,
        reset_noise: NonNegative = 0.05,
        x_threshold: Annotated[float, Interval(0, low_open=True, unit="m")] = 2.4,
        angle_threshold: PoleAngle = 0.20943951,
        success_angle: PoleAngle = 0.05,
        **options: Any,
    ) -> None:
        def build(sim: Simulation, reward_mode: str) -> tuple[CartPoleRobot, Balance]:
            robot = CartPoleRobot(sim, continuous, force_magnitude, reset_noise)
            task = Balance(sim, robot, reward_mode, x_threshold, angle_threshold, success_angle)
            return robot, task

        super().__init__(
            build,
            timestep=0.01,
            n_substeps=2,
            camera=Camera(target=(0.0, 0.0, 0.5), distance=4.0, yaw=0.0, pitch=-10.0),
            **options,
        )
