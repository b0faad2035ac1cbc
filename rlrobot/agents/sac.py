"""Soft Actor-Critic (Haarnoja et al., 2018), with a fixed or automatically tuned α.

Replay, env interaction and the training schedule come from ``OffPolicyAgent``; this file is
the SAC update. With ``α`` the entropy coefficient, ``π`` a tanh-squashed Gaussian and
``Q̄_1, Q̄_2`` Polyak-averaged target critics, one gradient step on a minibatch is:

- α (unless fixed): minimise ``−log α · (log π(ã|s) + H̄)`` with the target entropy
  ``H̄ = −dim(A)`` by default;
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
from typing import Any, Literal

import torch
from torch import nn

from rlrobot.agents.config import OffPolicyConfig
from rlrobot.agents.off_policy import OffPolicyAgent
from rlrobot.agents.policies import Actor
from rlrobot.common.config import COUNT, option
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
    mlp,
    mlp_output_dim,
)
from rlrobot.common.replay_buffer import ReplaySample
from rlrobot.envs.checks import ANY_NUMBER, POSITIVE


@dataclass
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters (defaults as in SB3)."""

    ent_coef: float | str = option(
        "auto",
        "entropy coefficient α, as in SB3: a float (α fixed), 'auto' (α learned, starting at "
        "1) or 'auto_X' (α learned, starting at X, e.g. 'auto_0.1')",
        POSITIVE,
    )
    target_entropy: float | Literal["auto"] = option(
        "auto", "target entropy H̄ of the learned α ('auto': −dim(action))", ANY_NUMBER
    )
    target_update_interval: int = option(1, "gradient steps between target-network updates", COUNT)

    @classmethod
    def upgrade(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Return saved values with the α keys of older rlrobot migrated (see
        ``migrate_entropy_keys``)."""
        return migrate_entropy_keys(super().upgrade(values))

    def get_entropy_coefficient(self) -> tuple[bool, float]:
        """Return ``(learned, initial α)`` from ``ent_coef`` (SB3's meaning)."""
        parsed = parse_ent_coef(self.ent_coef)
        assert parsed is not None  # validate() refused the others
        return parsed

    def validate(self) -> None:
        """Check the string forms of ``ent_coef`` (a float one is checked by its range)."""
        super().validate()
        self._require(
            parse_ent_coef(self.ent_coef) is not None,
            "ent_coef",
            f"must be a number in {POSITIVE} (fixed α), 'auto' or 'auto_X' (learned α starting "
            f"at X, a finite number in {POSITIVE})",
        )


def parse_ent_coef(ent_coef: float | str) -> tuple[bool, float] | None:
    """Return ``(learned, initial α)`` for one of SB3's ``ent_coef`` forms, None otherwise."""
    if not isinstance(ent_coef, str):
        return (False, float(ent_coef)) if 0 < ent_coef < math.inf else None
    if ent_coef == "auto":
        return True, 1.0
    prefix, _, initial = ent_coef.partition("_")
    try:
        initial_value = float(initial)
    except ValueError:
        return None
    return (True, initial_value) if prefix == "auto" and 0 < initial_value < math.inf else None


def migrate_entropy_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Translate the α keys of rlrobot before issue #19 into SB3's ``ent_coef`` form.

    They had ``auto_ent_coef`` (learn α) with ``ent_coef`` its starting value, and
    ``target_entropy=None`` for −dim(action). Checkpoints and run folders saved so still load
    with the same α: ``auto_ent_coef=True, ent_coef=x`` becomes ``ent_coef='auto_x'``,
    ``auto_ent_coef=False`` keeps ``ent_coef=x`` (fixed).
    """
    if "auto_ent_coef" not in values:
        return values
    migrated = dict(values)
    learned = migrated.pop("auto_ent_coef")
    initial = migrated.get("ent_coef", 1.0)
    if learned is True and not isinstance(initial, str):
        migrated["ent_coef"] = f"auto_{float(initial)!r}"
    if migrated.get("target_entropy", "auto") is None:
        migrated["target_entropy"] = "auto"
    return migrated


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
        self.auto_ent_coef, initial_ent_coef = config.get_entropy_coefficient()
        self.entropy = EntropyCoefficient(initial_ent_coef).to(self.device)
        self.entropy.requires_grad_(self.auto_ent_coef)
        self.target_entropy = (
            -float(self.action_dim)
            if config.target_entropy == "auto"
            else float(config.target_entropy)
        )
        actor_groups: list[Any] = [{"params": list(self.actor.parameters())}]
        if self.auto_ent_coef:
            # SB3 steps log α with its own Adam at the learning rate alone (eps 1e-8, no weight
            # decay), whatever optimizer_kwargs say: one group of the actor's Adam, with those.
            actor_groups.append(
                {"params": [self.entropy.log_ent_coef], "eps": 1e-8, "weight_decay": 0.0}
            )
        self.actor_optimizer = self.make_optimizer(actor_groups)
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
        if self.auto_ent_coef:
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
