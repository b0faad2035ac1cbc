"""The networks of the agent families: SB3's "policies" (actor-critic, actors, twin critics).

``ActorCriticPolicy`` is the on-policy agents' network; ``Actor``, ``CriticEnsemble`` and the
``OffPolicyPolicy`` view are SAC's and TD3's. The algorithms build their heads on these.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.agents.sb3_arguments import build_features_extractor
from rlrobot.common.distributions import make_action_head
from rlrobot.common.networks import (
    activation_after_linear,
    hidden_layers_precision,
    mlp,
    mlp_output_dim,
    orthogonal_init,
)

if TYPE_CHECKING:
    from rlrobot.agents.config import OnPolicyConfig
    from rlrobot.agents.off_policy import OffPolicyAgent


class ActorCriticPolicy(nn.Module):
    """Feature extractor → separate actor and critic MLPs → action head and value.

    Actor and critic share the extractor unless ``config.share_features_extractor`` is False;
    then the critic reads its own (``critic_features_extractor``).

    Args:
        observation_space: The env's observation space.
        action_space: ``Discrete`` or 1-D ``Box``.
        config: Network fields of ``OnPolicyConfig``.
        image_encoder: Optional image encoder replacing ``NatureCNN``.
        freeze_encoder: Keep ``image_encoder`` fixed.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: OnPolicyConfig,
        image_encoder: nn.Module | None = None,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.features_extractor = build_features_extractor(
            config, observation_space, image_encoder, freeze_encoder
        )
        # SB3's ``vf_features_extractor`` where it is not the actor's; None: the critic reads
        # ``features_extractor``.
        self.critic_features_extractor = (
            None
            if config.share_features_extractor
            else build_features_extractor(config, observation_space, image_encoder, freeze_encoder)
        )
        features_dim = self.features_extractor.features_dim
        critic_net_arch = (
            config.critic_net_arch if config.critic_net_arch is not None else config.net_arch
        )
        self.actor = mlp(features_dim, config.net_arch, None, config.activation)
        self.critic = mlp(features_dim, critic_net_arch, None, config.activation)
        self.action_head = make_action_head(
            action_space, mlp_output_dim(features_dim, config.net_arch, None), config.log_std_init
        )
        self.value_head = nn.Linear(mlp_output_dim(features_dim, critic_net_arch, None), 1)
        if config.ortho_init:
            if image_encoder is None:
                for extractor in (self.features_extractor, self.critic_features_extractor):
                    if extractor is not None:
                        orthogonal_init(extractor, gain=np.sqrt(2))
            orthogonal_init(self.actor, gain=np.sqrt(2))
            orthogonal_init(self.critic, gain=np.sqrt(2))
            orthogonal_init(self.action_head, gain=0.01)
            orthogonal_init(self.value_head, gain=1.0)

    def forward(self, observations: Any) -> tuple[Any, torch.Tensor]:
        """Return the action distribution and values ``(batch,)``."""
        features = self.features_extractor(observations)
        distribution = self.action_head(self.actor(features))
        if self.critic_features_extractor is not None:
            return distribution, self.predict_values(observations)
        values = self.value_head(self.critic(features)).squeeze(-1)
        return distribution, values

    def act(
        self, observations: Any, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(actions, values, log_prob)`` for a batch of observations."""
        distribution, values = self(observations)
        actions = distribution.mode() if deterministic else distribution.sample()
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(
        self, observations: Any, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(log_prob, entropy, values)``, each ``(batch,)``, for taken actions."""
        distribution, values = self(observations)
        return distribution.log_prob(actions), distribution.entropy(), values

    def predict_values(self, observations: Any) -> torch.Tensor:
        """Return ``V(s)`` of shape ``(batch,)``."""
        extractor = self.critic_features_extractor
        if extractor is None:
            extractor = self.features_extractor
        return self.value_head(self.critic(extractor(observations))).squeeze(-1)


class EnsembleLinear(nn.Module):
    """``n_members`` independent linear layers evaluated by one batched matmul (a broadcast
    multiply-and-sum when ``out_dim`` is 1).

    Weights ``(n_members, in_dim, out_dim)`` are initialised like ``nn.Linear``
    (uniform in ``±1/sqrt(in_dim)``).
    """

    def __init__(self, n_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n_members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, inputs: torch.Tensor, detach: bool = False, members: int = 0) -> torch.Tensor:
        """Map ``(n_members, batch, in_dim)`` to ``(n_members, batch, out_dim)``.

        Args:
            inputs: Per-member inputs; a ``(batch, in_dim)`` input is shared by all members.
            detach: Use detached weights (gradients reach the inputs only).
            members: Evaluate only the first ``members`` members (0: all).
        """
        weight, bias = self.weight, self.bias
        if members:
            weight, bias = weight[:members], bias[:members]
        if detach:
            weight, bias = weight.detach(), bias.detach()
        if weight.shape[2] == 1:
            # A matrix-vector product: bmm is ~5× slower at it (forward and backward) than a
            # broadcast multiply and sum.
            return (inputs * weight.transpose(1, 2)).sum(dim=2, keepdim=True) + bias
        if inputs.dim() == 2:
            inputs = inputs.expand(weight.shape[0], *inputs.shape)
        return torch.baddbmm(bias, inputs, weight)


class CriticEnsemble(nn.Module):
    """``n_critics`` Q-networks ``Q_i(s, a)`` on a shared observation feature extractor.

    Args:
        features_extractor: The critic's own observation feature extractor.
        action_dim: Size of the (1-D) action.
        net_arch: Hidden layer sizes of each Q-network.
        activation: Hidden activation name.
        n_critics: Number of Q-networks (2 for clipped double Q-learning).

    The hidden layers follow ``hidden_matmul_dtype`` scopes; the output layer stays float32
    so Q-values keep their resolution.
    """

    def __init__(
        self,
        features_extractor: nn.Module,
        action_dim: int,
        net_arch: tuple[int, ...],
        activation: str,
        n_critics: int = 2,
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        sizes = [self.features_extractor.features_dim + action_dim, *net_arch]
        self.hidden_layers = nn.ModuleList(
            EnsembleLinear(n_critics, sizes[i], sizes[i + 1]) for i in range(len(net_arch))
        )
        self.output_layer = EnsembleLinear(n_critics, sizes[-1], 1)
        self.activation = activation_after_linear(activation)

    def forward(
        self,
        observations: Any,
        actions: torch.Tensor,
        detach: bool = False,
        members: int = 0,
    ) -> torch.Tensor:
        """Return Q-values ``(n_critics, batch)`` (or ``(members, batch)``).

        Args:
            observations: A batch of observations.
            actions: ``(batch, action_dim)`` actions in ``[-1, 1]``.
            detach: Treat the critic as a fixed function: gradients flow to ``actions`` only.
            members: Evaluate only the first ``members`` Q-networks (0: all).
        """
        if detach:
            with torch.no_grad():
                features = self.features_extractor(observations)
        else:
            features = self.features_extractor(observations)
        hidden = torch.cat([features, actions], dim=1)
        with hidden_layers_precision(hidden):
            for layer in self.hidden_layers:
                hidden = self.activation(layer(hidden, detach, members))
        return self.output_layer(hidden.float(), detach, members).squeeze(-1)


class Actor(nn.Module):
    """Base of SAC's and TD3's actors: the feature extractor every head reads from."""

    def __init__(self, features_extractor: nn.Module) -> None:
        super().__init__()
        self.features_extractor = features_extractor


class OffPolicyPolicy(nn.Module):
    """SB3's ``policy`` of SAC and TD3, a module holding the agent's networks (still the agent's).

    Args:
        agent: The agent whose ``modules()`` (``actor``, ``critic``, ``critic_target``, TD3's
            ``actor_target``, SAC's ``entropy``) it shows as attributes, with its ``predict``.
    """

    def __init__(self, agent: OffPolicyAgent) -> None:
        super().__init__()
        for name, module in agent.modules().items():
            self.add_module(name, module)
        self.predict = agent.predict
