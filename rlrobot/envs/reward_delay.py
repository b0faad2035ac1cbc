"""``RewardDelay``: the withheld reward of the delayed reward mode, shared by the env and the
``DelayedReward`` wrapper."""

from __future__ import annotations

from typing import Annotated

from rlrobot.envs.checks import Interval, check_arguments

# Steps between releases; None releases only at the episode's end.
ReleasePeriod = Annotated[int, Interval(1, unit="steps")] | None


class RewardDelay:
    """Withholds rewards and releases their running sum every `period` steps and at episode end.

    The one accumulator behind both `reward_mode="delayed"` and the `DelayedReward` wrapper:
    the released rewards of an episode sum to its undelayed rewards.

    Args:
        period: Release every `period` steps as well as at the episode's end; None releases
            only at the end.
    """

    @check_arguments
    def __init__(self, period: ReleasePeriod = None) -> None:
        self.period = period
        self.reset()

    def reset(self) -> None:
        """Forget what is withheld (start of an episode)."""
        self.withheld = 0.0
        self.pending_steps = 0

    def step(self, reward: float, episode_over: bool) -> float:
        """Withhold `reward`; return what is released now (0.0 or the withheld sum)."""
        self.withheld += float(reward)
        self.pending_steps += 1
        if episode_over or (self.period is not None and self.pending_steps >= self.period):
            released = self.withheld
            self.reset()
            return released
        return 0.0
