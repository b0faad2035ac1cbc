"""Soft Actor-Critic (Haarnoja et al., 2018) with automatic entropy tuning.

Replay, env interaction and the training schedule come from ``OffPolicyAgent``; this file is
the SAC update. With ``α`` the entropy coefficient, ``π`` a tanh-squashed Gaussian and
``Q̄_1, Q̄_2`` Polyak-averaged target critics, one gradient step on a minibatch is:

- α: minimise ``−log α · (log π(ã|s) + H̄)`` with the target entropy ``H̄ = −dim(A)``;
- critics: regress both ``Q_i(s, a)`` on ``y = r + γ^m (1 − terminated) ·
  (min_i Q̄_i(s', ã') − α log π(ã'|s'))`` with ``ã' ~ π(·|s')`` (loss ``½ Σ_i MSE``);
- actor: minimise ``α log π(ã|s) − min_i Q_i(s, ã)`` with ``ã ~ π(·|s)`` reparameterised;
- targets: ``Q̄ ← (1 − τ) Q̄ + τ Q`` every ``target_update_interval`` steps.

The actor and α losses share one backward pass and one fused Adam step; nothing is read back
to the host inside the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlrobot.agents.off_policy import Actor, OffPolicyAgent, OffPolicyConfig
from rlrobot.common.config import option
from rlrobot.common.distributions import SquashedDiagGaussian, SquashedGaussianHead
from rlrobot.common.losses import (
    critic_mse_loss,
    entropy_temperature_loss,
    polyak_update,
    sac_actor_loss,
    soft_q_target,
)
from rlrobot.common.networks import (
    hidden_layers_precision,
    make_adam,
    mlp,
    mlp_output_dim,
)
from rlrobot.common.replay_buffer import ReplaySample


@dataclass
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters (defaults as in SB3)."""

    ent_coef: float = option(
        1.0,
        "entropy coefficient α; while auto_ent_coef is true, only its starting value (SB3's "
        "ent_coef=0.1 is auto_ent_coef=false, ent_coef=0.1 here; its 'auto_0.1' is the default "
        "auto_ent_coef with ent_coef=0.1)",
    )
    auto_ent_coef: bool = option(True, "learn α to keep the entropy near target_entropy")
    target_entropy: float | None = option(None, "target entropy H̄ (None: −dim(action))")
    target_update_interval: int = option(1, "gradient steps between target-network updates")

    def validate(self) -> None:
        """Check value ranges."""
        super().validate()
        self._require(self.ent_coef > 0, "ent_coef", "must be > 0")
        self._require(self.target_update_interval >= 1, "target_update_interval", "must be >= 1")


class SquashedGaussianActor(Actor):
    """Feature extractor → MLP → tanh-squashed Gaussian over actions in ``[-1, 1]``."""

    def __init__(
        self, features_extractor: nn.Module, action_dim: int, config: OffPolicyConfig
    ) -> None:
        super().__init__(features_extractor)
        in_dim = features_extractor.features_dim
        self.latent = mlp(in_dim, config.net_arch, None, config.activation)
        latent_dim = mlp_output_dim(in_dim, config.net_arch, None)
        self.head = SquashedGaussianHead(latent_dim, action_dim)

    def forward(self, observations: Any) -> SquashedDiagGaussian:
        """Return the action distribution for a batch of observations."""
        features = self.features_extractor(observations)
        # The head stays float32: log-probabilities need more than bfloat16's 8 bits.
        with hidden_layers_precision(features):
            latent = self.latent(features)
        return self.head(latent.float())


class EntropyCoefficient(nn.Module):
    """Holds ``log α`` as a parameter so it is saved with the weights."""

    def __init__(self, initial_value: float) -> None:
        super().__init__()
        self.log_ent_coef = nn.Parameter(torch.tensor(math.log(initial_value)))


class SAC(OffPolicyAgent):
    """Soft Actor-Critic; see the module docstring.

    Example:
        >>> agent = SAC("Pendulum-v1", seed=0)
        >>> agent.learn(total_timesteps=10_000)
        >>> agent = SAC("rlrobot/Reach-v0", env_kwargs={"reward_mode": "sparse"},
        ...             replay_buffer="her", seed=0)
    """

    algorithm = "sac"
    config_class = SACConfig
    config: SACConfig

    def _setup(self) -> None:
        super()._setup()
        config = self.config
        self._setup_actor_and_critics(SquashedGaussianActor)
        self.entropy = EntropyCoefficient(config.ent_coef).to(self.device)
        self.entropy.requires_grad_(config.auto_ent_coef)
        self.target_entropy = (
            config.target_entropy if config.target_entropy is not None else -float(self.action_dim)
        )
        actor_groups: list[Any] = [{"params": list(self.actor.parameters())}]
        if config.auto_ent_coef:
            actor_groups.append({"params": [self.entropy.log_ent_coef]})
        self.actor_optimizer = make_adam(actor_groups, config.learning_rate)
        self._critic_parameters = list(self.critic.parameters())
        self._target_parameters = list(self.critic_target.parameters())

    def modules(self) -> dict[str, nn.Module]:
        """Return the actor, critics, target critics and ``log α``."""
        return {
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
            "entropy": self.entropy,
        }

    def _predict_actions(self, observations: Any, deterministic: bool) -> torch.Tensor:
        distribution = self.actor(observations)
        return distribution.mode() if deterministic else distribution.sample()

    def train_step(self, batch: ReplaySample) -> dict[str, torch.Tensor]:
        """One SAC gradient step (α, critics, actor, targets); see the module docstring."""
        log_ent_coef = self.entropy.log_ent_coef
        ent_coef = log_ent_coef.detach().exp()
        actions_pi, log_prob = self.actor(batch.observations).sample_and_log_prob()

        with torch.no_grad():
            next_actions, next_log_prob = self.actor(batch.next_observations).sample_and_log_prob()
            next_q_values = self.critic_target(batch.next_observations, next_actions)
            target_q = soft_q_target(
                batch.rewards, batch.discounts, next_q_values, next_log_prob, ent_coef
            )
        q_values = self.critic(batch.observations, batch.actions)
        critic_loss = 0.5 * critic_mse_loss(q_values, target_q)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        q_values_pi = self.critic(batch.observations, actions_pi, detach=True)
        actor_loss = sac_actor_loss(log_prob, q_values_pi, ent_coef)
        loss = actor_loss
        stats = {"train/critic_loss": critic_loss.detach(), "train/ent_coef": ent_coef}
        if self.config.auto_ent_coef:
            ent_coef_loss = entropy_temperature_loss(log_ent_coef, log_prob, self.target_entropy)
            loss = actor_loss + ent_coef_loss
            stats["train/ent_coef_loss"] = ent_coef_loss.detach()
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()

        if (self.n_updates + 1) % self.config.target_update_interval == 0:
            polyak_update(self._critic_parameters, self._target_parameters, self.config.tau)
        stats["train/actor_loss"] = actor_loss.detach()
        return stats
