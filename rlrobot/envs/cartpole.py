"""CartPole on PyBullet: balance a pole on a cart, discrete or continuous force."""

from __future__ import annotations

from rlrobot.envs.core import RobotTaskEnv
from rlrobot.envs.robots.cartpole import CartPoleRobot
from rlrobot.envs.tasks.balance import Balance
from rlrobot.sim import Camera, Simulation


class CartPoleEnv(RobotTaskEnv):
    """Balance pybullet_data's cart-pole (`rlrobot/CartPole-v0`, `rlrobot/CartPoleContinuous-v0`).

    ## Action space
    - `CartPole-v0`: `Discrete(2)`: 0 pushes the cart towards −x, 1 towards +x, with
      `force_magnitude` N.
    - `CartPoleContinuous-v0`: `Box(-1, 1, (1,), float32)`: force = action × `force_magnitude` N.

    ## Observation space
    `Box(-inf, inf, (4,), float32)`:

    | index | meaning                 | unit  |
    |-------|-------------------------|-------|
    | 0     | cart position x         | m     |
    | 1     | cart velocity           | m/s   |
    | 2     | pole angle from upright | rad   |
    | 3     | pole angular velocity   | rad/s |

    ## Rewards
    `alive`: +1 for every step, including the one that ends the episode (reported as
    `info["reward_alive"]`). Only `reward_mode="dense"` exists for now.

    ## Start state
    All four state variables uniform in ±0.05.

    ## Episode end
    Terminated when |pole angle| > 12° or |cart x| > 2.4 m; truncated after 500 steps
    (`max_episode_steps`). One step is 0.02 s (2 physics substeps of 0.01 s).

    ## Arguments (all `gym.make` keywords)
    `continuous` (bool), `force_magnitude` (N, default 10), `reset_noise` (default 0.05),
    `x_threshold` (m, 2.4), `angle_threshold` (rad, 12°), `reward_mode` ("dense"),
    `render_mode` ("rgb_array" or "human"), `render_width`/`render_height` (pixels, 480).

    ## Version history
    - v0: first version.
    """

    def __init__(
        self,
        continuous: bool = False,
        force_magnitude: float = 10.0,
        reset_noise: float = 0.05,
        x_threshold: float = 2.4,
        angle_threshold: float = 0.20943951,
        reward_mode: str = "dense",
        render_mode: str | None = None,
        render_width: int = 480,
        render_height: int = 480,
    ) -> None:
        sim = Simulation(
            connection_mode="gui" if render_mode == "human" else "direct",
            timestep=0.01,
            n_substeps=2,
        )
        try:
            robot = CartPoleRobot(sim, continuous, force_magnitude, reset_noise)
            task = Balance(sim, robot, reward_mode, x_threshold, angle_threshold)
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
            camera=Camera(target=(0.0, 0.0, 0.5), distance=4.0, yaw=0.0, pitch=-10.0),
        )
