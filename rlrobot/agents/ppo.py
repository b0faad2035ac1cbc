"""Proximal Policy Optimization (Schulman et al., 2017) with the clipped surrogate objective.

Rollout and GAE come from ``OnPolicyAgent``; this file is the PPO update: ``n_epochs`` passes
over the rollout in shuffled minibatches of ``batch_size``, maximising
``min(ratio·A, clip(ratio, 1 − ε, 1 + ε)·A)`` with ``ratio = π(a|s) / π_old(a|s)``, plus an
(optionally clipped) value loss and an entropy bonus, with gradient-norm clipping and an
optional early stop when the approximate KL divergence exceeds ``1.5 · target_kl``.

Delayed rewards (a reward only at the end of the episode): the signal has to travel back
through every step, so keep ``gamma`` close to 1 (``gamma ≥ 1 − 1/episode_length``, e.g.
0.99–0.999), use ``gae_lambda`` 0.95–1.0 (λ = 1 is Monte Carlo and carries the final reward
back undiminished by a poor early critic), and make the rollout long enough to contain whole
episodes (``n_steps · n_envs`` several times the episode length). Normalising rewards helps when
the final reward is large.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.nn import functional as F

from rlrobot.agents.config import EPOCHS, OnPolicyConfig
from rlrobot.agents.on_policy import OnPolicyAgent
from rlrobot.common.config import COUNT, option
from rlrobot.common.losses import (
    approx_kl_divergence,
    clip_values,
    clipped_surrogate_loss,
    normalize_advantages,
)
from rlrobot.common.networks import index_observations, stats_to_floats
from rlrobot.common.schedules import Schedule, ScheduleKind, check_schedule
from rlrobot.envs.checks import POSITIVE


@dataclass
class PPOConfig(OnPolicyConfig):
    """PPO hyperparameters (defaults as in SB3)."""

    batch_size: int = option(64, "minibatch size", COUNT)
    n_epochs: int = option(10, "passes over each rollout", EPOCHS)
    clip_range: float | Schedule = option(
        0.2, "clipping ε of the probability ratio, or a callable of progress_remaining", POSITIVE
    )
    clip_range_schedule: ScheduleKind = option(
        "constant", "schedule of clip_range over each learn() call"
    )
    clip_range_vf: float | Schedule | None = option(
        None,
        "clip value predictions to ±this around the old values (None: no clipping), or a "
        "callable of progress_remaining",
        POSITIVE,
    )
    target_kl: float | None = option(
        None, "stop the epoch loop when approx. KL exceeds 1.5·target_kl (None: never)", POSITIVE
    )

    schedule_fields: ClassVar[dict[str, str | None]] = {
        **OnPolicyConfig.schedule_fields,
        "clip_range": "clip_range_schedule",
        "clip_range_vf": None,
    }

    def validate(self) -> None:
        """Check the schedules."""
        super().validate()
        check_schedule(
            "clip_range", self.clip_range, self.clip_range_schedule, "clip_range_schedule"
        )
        if self.clip_range_vf is not None:
            check_schedule("clip_range_vf", self.clip_range_vf, "constant", "clip_range_vf")


class PPO(OnPolicyAgent):
    """PPO with the clipped surrogate objective; see the module docstring.

    Example:
        >>> agent = PPO("CartPole-v1", n_envs=8, seed=0, n_steps=32)
        >>> agent.learn(total_timesteps=50_000)
    """

    algorithm = "ppo"
    config_class = PPOConfig
    config: PPOConfig

    def _setup(self) -> None:
        super()._setup()
        rollout_size = self.steps_per_iteration
        if self.config.batch_size > rollout_size:
            from rlrobot.errors import ConfigError

            raise ConfigError(
                f"config key 'batch_size': {self.config.batch_size} is larger than the rollout "
                f"(n_steps × n_envs = {rollout_size})"
            )

    def update_policy(self, batch: dict[str, Any]) -> dict[str, float]:
        """Run ``n_epochs`` of minibatch updates on one rollout; return ``train/…`` stats."""
        config = self.config
        progress_remaining = self.current_progress_remaining()
        clip_range = config.schedule_value("clip_range", progress_remaining)
        clip_range_vf = (
            None
            if config.clip_range_vf is None
            else config.schedule_value("clip_range_vf", progress_remaining)
        )
        rollout_size = batch["advantages"].shape[0]
        policy_losses, value_losses, entropy_losses, clip_fractions, approx_kls = [], [], [], [], []
        stop = False
        for _ in range(config.n_epochs):
            permutation = torch.randperm(rollout_size, device=self.device)
            for start in range(0, rollout_size, config.batch_size):
                indices = permutation[start : start + config.batch_size]
                observations = index_observations(batch["observations"], indices)
                old_log_prob = batch["log_probs"][indices]
                old_values = batch["values"][indices]
                returns = batch["returns"][indices]
                advantages = batch["advantages"][indices]
                if config.normalize_advantage:
                    advantages = normalize_advantages(advantages)

                log_prob, entropy, values = self.policy.evaluate_actions(
                    observations, batch["actions"][indices]
                )
                log_ratio = log_prob - old_log_prob
                ratio = log_ratio.exp()
                policy_loss, clip_fraction = clipped_surrogate_loss(advantages, ratio, clip_range)
                if clip_range_vf is not None:
                    values = clip_values(values, old_values, clip_range_vf)
                value_loss = F.mse_loss(values, returns)
                entropy_loss = -entropy.mean()
                loss = policy_loss + config.ent_coef * entropy_loss + config.vf_coef * value_loss

                approx_kl = approx_kl_divergence(ratio, log_ratio)
                clip_fractions.append(clip_fraction)
                approx_kls.append(approx_kl)
                # Only a target_kl needs the KL on the host now; otherwise avoid the sync.
                if config.target_kl is not None and approx_kl.item() > 1.5 * config.target_kl:
                    stop = True
                    break
                self._gradient_step(loss)
                policy_losses.append(policy_loss.detach())
                value_losses.append(value_loss.detach())
                entropy_losses.append(entropy_loss.detach())
            if stop:
                break

        def mean(values: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack(values).mean() if values else torch.tensor(float("nan"))

        return stats_to_floats(
            {
                "train/policy_loss": mean(policy_losses),
                "train/value_loss": mean(value_losses),
                "train/entropy_loss": mean(entropy_losses),
                "train/approx_kl": mean(approx_kls),
                "train/clip_fraction": mean(clip_fractions),
                "train/clip_range": clip_range,
                "train/explained_variance": explained_variance(batch["values"], batch["returns"]),
            }
        )


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Return ``1 − Var[targets − predictions] / Var[targets]`` (1 is perfect, ≤ 0 useless)."""
    variance = targets.var()
    return 1.0 - (targets - predictions).var() / variance if variance > 0 else variance * 0
