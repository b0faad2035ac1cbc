"""Wrappers: delayed rewards for any Gymnasium env, multi-view images for the robot envs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rlrobot.envs.checks import check_arguments
from rlrobot.envs.core import ImageSide
from rlrobot.envs.reward_delay import ReleasePeriod, RewardDelay
from rlrobot.envs.state import check_like
from rlrobot.sim import Camera


class DelayedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Withhold the rewards of any env and release their sum every `period` steps and at the end.

    Each step returns reward 0.0 except when the withheld sum is released: every `period`
    steps of an episode (if `period` is set) and at its last step (`terminated` or
    `truncated`). An episode's released rewards add up to its original rewards, so returns are
    unchanged while credit assignment gets harder. `info["undelayed_reward"]` holds the
    reward the wrapped env gave at that step.

    Wrap outside the time limit (e.g. around `gym.make(...)`) so that truncation is seen. The
    same accumulator (`RewardDelay`) implements the robot envs' `reward_mode="delayed"`.

    Args:
        env: The env to wrap.
        period: Release every `period` steps (>= 1) as well as at episode end; None (default)
            releases only at episode end.
    """

    def __init__(self, env: gym.Env, period: ReleasePeriod = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, period=period)
        gym.Wrapper.__init__(self, env)
        self.delay = RewardDelay(period)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env and forget any withheld reward."""
        self.delay.reset()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; return 0.0 or the released sum as the reward."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "undelayed_reward": reward}
        released = self.delay.step(float(reward), terminated or truncated)
        return observation, released, terminated, truncated, info

    def get_state(self) -> dict[str, Any]:
        """Return the withheld reward and its step count (see `rlrobot.envs.state`)."""
        return {"withheld": self.delay.withheld, "pending_steps": self.delay.pending_steps}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what `get_state` returned."""
        self.delay.withheld = check_like("withheld", state.get("withheld"), 0.0)
        self.delay.pending_steps = check_like("pending_steps", state.get("pending_steps"), 0)


@check_arguments  # `period` before the inner env (a physics client) is made
def make_delayed_env(env_id: str, period: ReleasePeriod = None, **kwargs: Any) -> gym.Env:
    """`DelayedReward(gym.make(env_id, **kwargs), period)`: the entry point of `rlrobot/Delayed-v0`.

    `gym.make("rlrobot/Delayed-v0", env_id="Pendulum-v1")` gives any registered env with
    delayed rewards through one id, so that everything that takes an id and `gym.make`
    keywords (vector envs, `rlrobot train`, benchmark trials, SB3's `make_vec_env`) can use it.
    The wrapper sits outside the inner env's time limit, so a truncation releases the sum.
    """
    return DelayedReward(gym.make(env_id, **kwargs), period=period)


class ReleaseWithheldReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Pay a delayed-reward env's withheld reward at the step a time limit cuts the episode.

    An env with `reward_mode="delayed"` withholds its rewards and pays them on termination,
    but it cannot see the `TimeLimit` that `gym.make` wraps around it. Every rlrobot id is
    registered with this wrapper outside its `TimeLimit`, so `gym.make(id,
    reward_mode="delayed", max_episode_steps=N)` pays the episode's sum at its last step,
    whatever N is. It calls the unwrapped env's `release_withheld_reward()` on a truncation
    that is not a termination, and does nothing for envs without that method.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._release = getattr(env.unwrapped, "release_withheld_reward", None)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; on a truncation add what the env still withholds to the reward."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        if truncated and not terminated and self._release is not None:
            reward = float(reward) + self._release()
        return observation, reward, terminated, truncated, info

    def get_state(self) -> dict[str, Any]:
        """Return nothing: the withheld reward lives in the env (see `rlrobot.envs.state`)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see `get_state`)."""


class MultiViewImages(gym.ObservationWrapper):
    """Replace an env's observation by images of its scene from several fixed cameras.

    The views are placed side by side, uint8 ``(size, size × len(cameras), 3)`` (an ordinary
    RGB image, so every image model and ``ImagePreprocess`` takes it as is).
    Two orthogonal views (e.g. from above and from the side) fix a point in 3-D, where one
    view leaves its depth along the camera ray open. The env is only read (its
    ``render_view``), so rewards, termination and ground-truth labels are unchanged.

    Args:
        env: An rlrobot env (its ``unwrapped`` is a ``RobotTaskEnv``).
        cameras: The cameras, in channel order.
        size: Width and height of every view in pixels.
    """

    @check_arguments
    def __init__(self, env: gym.Env, cameras: Sequence[Camera], size: ImageSide = 84) -> None:
        super().__init__(env)
        self.cameras, self.size = tuple(cameras), size
        shape = (size, size * len(self.cameras), 3)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        """Return the views side by side, uint8 ``(size, size × n_cameras, 3)``."""
        scene = self.env.unwrapped
        views = [scene.render_view(camera, self.size, self.size) for camera in self.cameras]
        return np.concatenate(views, axis=1)

    def get_state(self) -> dict[str, Any]:
        """Return nothing: the views are rendered from the env's own state."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see `get_state`)."""
