"""Twin Delayed DDPG (Fujimoto et al., 2018): clipped double Q, target smoothing, delayed actor.

Replay, env interaction and the training schedule come from ``OffPolicyAgent``; this file is
the TD3 update. With a deterministic actor ``μ`` (tanh output in ``[-1, 1]``) and target
networks ``μ̄, Q̄_1, Q̄_2``, one gradient step on a minibatch is:

- critics: regress both ``Q_i(s, a)`` on ``y = r + γ^m (1 − terminated) · min_i Q̄_i(s', ã')``,
  with the smoothed target action ``ã' = clip(μ̄(s') + clip(ε, −c, c), −1, 1)``,
  ``ε ~ N(0, target_policy_noise²)`` (loss ``Σ_i MSE``);
- every ``policy_delay`` steps: the actor maximises ``Q_1(s, μ(s))``, then both target
  networks move by Polyak averaging.

Exploration adds ``N(0, action_noise²)`` to ``μ(s)`` (in the ``[-1, 1]`` action scale), or the
samples of an SB3 noise object.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlrobot.agents.config import OffPolicyConfig
from rlrobot.agents.off_policy import OffPolicyAgent
from rlrobot.agents.policies import Actor
from rlrobot.common.config import COUNT, option
from rlrobot.common.losses import (
    clipped_double_q_target,
    critic_mse_loss,
    polyak_update,
    target_policy_smoothing,
)
from rlrobot.common.networks import hidden_layers_precision, mlp
from rlrobot.common.noise import ActionNoise
from rlrobot.common.replay_buffer import ReplaySample
from rlrobot.common.schedules import Schedule
from rlrobot.envs.checks import NON_NEGATIVE


@dataclass
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters (defaults as in SB3, plus Gaussian exploration noise)."""

    learning_rate: float | Schedule = option(1e-3, "Adam step size of the actor and critics")
    net_arch: tuple[int, ...] = option((400, 300), "hidden layer sizes of the actor and critics")
    policy_delay: int = option(2, "critic updates per actor and target update", COUNT)
    target_policy_noise: float = option(
        0.2, "std of the target smoothing noise (action scale)", NON_NEGATIVE
    )
    target_noise_clip: float = option(0.5, "clip of the target smoothing noise", NON_NEGATIVE)
    action_noise: float | ActionNoise = option(
        0.1,
        "exploration noise (action scale): the std of a Gaussian (0: none), or an SB3 "
        "NormalActionNoise, OrnsteinUhlenbeckActionNoise or VectorizedActionNoise",
    )


class DeterministicActor(Actor):
    """Feature extractor → MLP → ``tanh``: actions in ``[-1, 1]``."""

    def __init__(
        self, features_extractor: nn.Module, action_dim: int, config: OffPolicyConfig
    ) -> None:
        super().__init__(features_extractor)
        in_dim = features_extractor.features_dim
        self.mu = mlp(in_dim, config.net_arch, action_dim, config.activation, "tanh")

    def forward(self, observations: Any) -> torch.Tensor:
        """Return actions ``(batch, action_dim)``."""
        hidden = self.features_extractor(observations)
        *hidden_layers, output_layer, squash = self.mu
        with hidden_layers_precision(hidden):
            for layer in hidden_layers:
                hidden = layer(hidden)
        return squash(output_layer(hidden.float()))


class TD3(OffPolicyAgent):
    """TD3; see the module docstring.

    Example:
        >>> agent = TD3("Pendulum-v1", seed=0)
        >>> agent.learn(total_timesteps=10_000)
    """

    algorithm = "td3"
    config_class = TD3Config
    config: TD3Config

    def _setup(self) -> None:
        super()._setup()
        self._setup_actor_and_critics(DeterministicActor)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_optimizer = self.make_optimizer(list(self.actor.parameters()))
        self._sources = [*self.critic.parameters(), *self.actor.parameters()]
        self._targets = [*self.critic_target.parameters(), *self.actor_target.parameters()]

    def modules(self) -> dict[str, nn.Module]:
        """Return the actor, critics and their targets."""
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }

    def _predict_actions(self, observations: Any, deterministic: bool) -> torch.Tensor:
        # The policy is deterministic; exploration noise is added only while collecting data.
        return self.actor(observations)

    def train_step(self, batch: ReplaySample) -> dict[str, torch.Tensor]:
        """One TD3 gradient step (critics; actor and targets every ``policy_delay``)."""
        config = self.config
        with torch.no_grad():
            next_actions = self.actor_target(batch.next_observations)
            noise = torch.randn_like(next_actions) * config.target_policy_noise
            next_actions = target_policy_smoothing(next_actions, noise, config.target_noise_clip)
            next_q_values = self.critic_target(batch.next_observations, next_actions)
            target_q = clipped_double_q_target(batch.rewards, batch.discounts, next_q_values)
        q_values = self.critic(batch.observations, batch.actions)
        critic_loss = critic_mse_loss(q_values, target_q)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        stats = {"train/critic_loss": critic_loss.detach()}

        if (self.n_updates + 1) % config.policy_delay == 0:
            actions = self.actor(batch.observations)
            actor_loss = -self.critic(batch.observations, actions, detach=True, members=1).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            polyak_update(self._sources, self._targets, config.tau)
            stats["train/actor_loss"] = actor_loss.detach()
        return stats
