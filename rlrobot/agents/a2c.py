"""Advantage Actor-Critic (Mnih et al., 2016), synchronous version.

Rollout and GAE(λ) advantages come from ``OnPolicyAgent`` (λ = 1 gives n-step returns
bootstrapped at the end of the rollout); the update is a single gradient step on the whole
rollout (``OnPolicyAgent.update_policy``). Defaults follow SB3 (RMSprop, ``n_steps=5``, no
advantage normalisation).

Delayed rewards: with ``n_steps=5`` a reward at the end of a long episode reaches early steps
only through the critic, one rollout at a time; use ``gamma`` ≥ 0.99, ``gae_lambda`` near 1
and a longer ``n_steps`` (e.g. 32–128) so the final reward is propagated within one rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlrobot.agents.config import OnPolicyConfig
from rlrobot.agents.on_policy import OnPolicyAgent
from rlrobot.common.config import option
from rlrobot.common.schedules import Schedule


@dataclass
class A2CConfig(OnPolicyConfig):
    """A2C hyperparameters (defaults as in SB3)."""

    learning_rate: float | Schedule = option(7e-4, "RMSprop step size")
    n_steps: int = option(5, "env steps per env per update")
    gamma: float = option(0.99, "discount factor γ in (0, 1]")
    gae_lambda: float = option(1.0, "GAE λ; 1 gives n-step returns")
    normalize_advantage: bool = option(False, "standardise advantages per rollout")
    optimizer: Literal["adam", "rmsprop"] = option("rmsprop", "optimizer")


class A2C(OnPolicyAgent):
    """A2C: one policy-gradient + value step per rollout; see the module docstring."""

    algorithm = "a2c"
    config_class = A2CConfig
    config: A2CConfig
