"""Wrappers for any Gymnasium env."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym

from rlrobot.envs.core import RewardDelay


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

    def __init__(self, env: gym.Env, period: int | None = None) -> None:
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
