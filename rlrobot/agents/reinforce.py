"""REINFORCE (Williams, 1992) with reward-to-go and a learned value baseline.

Advantages are Monte Carlo: ``A_t = G_t − V(s_t)`` with ``G_t`` the discounted reward-to-go of
the episode (``discounted_returns``). Episodes cut by a time limit or by the end of the
rollout are completed with the critic's estimate ``V(s)`` of the state where they were cut —
the only place the value function enters the target. One gradient step per rollout
(``OnPolicyAgent.update_policy``), so use long rollouts (``n_steps`` several episode lengths)
for low-variance gradients.

Delayed rewards: Monte Carlo returns carry a final reward back to every step of the episode
without relying on the critic; keep ``gamma`` near 1 (0.99–0.999).
"""

from __future__ import annotations

from dataclasses import dataclass

from rlrobot.agents.config import OnPolicyConfig
from rlrobot.agents.on_policy import OnPolicyAgent
from rlrobot.common.config import option
from rlrobot.common.returns import discounted_returns
from rlrobot.common.rollout_buffer import RolloutBuffer
from rlrobot.common.schedules import Schedule


@dataclass
class REINFORCEConfig(OnPolicyConfig):
    """REINFORCE hyperparameters."""

    learning_rate: float | Schedule = option(1e-3, "Adam step size")
    n_steps: int = option(1000, "env steps per env per update (whole episodes ideally)")
    vf_coef: float = option(0.5, "weight of the baseline's value loss")
    max_grad_norm: float = option(1.0, "clip the global gradient norm to this value")


class REINFORCE(OnPolicyAgent):
    """REINFORCE with a value baseline; see the module docstring."""

    algorithm = "reinforce"
    config_class = REINFORCEConfig
    config: REINFORCEConfig

    def compute_advantages(self, buffer: RolloutBuffer) -> None:
        """Fill ``buffer.returns`` with reward-to-go and ``buffer.advantages`` with ``G − V``."""
        buffer.returns[:] = discounted_returns(
            buffer.rewards,
            buffer.terminated,
            buffer.episode_ends,
            buffer.next_values,
            self.config.gamma,
        )
        buffer.advantages[:] = buffer.returns - buffer.values
