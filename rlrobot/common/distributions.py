"""Action distributions: categorical, diagonal Gaussian and tanh-squashed Gaussian.

These are small, allocation-light replacements for ``torch.distributions`` (which validates
arguments and builds broadcast shapes on every call — measurable overhead in small-MLP RL).
All ``log_prob``/``entropy`` results have shape ``(batch,)``: per-dimension terms are summed.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from rlrobot.errors import UnsupportedEnvError

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class Categorical:
    """Categorical distribution over ``n`` actions from ``logits`` of shape ``(batch, n)``."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.log_probs = F.log_softmax(logits, dim=-1)

    def sample(self) -> torch.Tensor:
        """Draw actions ``(batch,)`` with the Gumbel-max trick."""
        uniform = torch.rand_like(self.log_probs).clamp_(min=1e-20)
        return (self.log_probs - torch.log(-torch.log(uniform))).argmax(dim=-1)

    def mode(self) -> torch.Tensor:
        """Return the most likely actions ``(batch,)``."""
        return self.log_probs.argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability ``(batch,)`` of integer actions ``(batch,)``."""
        return self.log_probs.gather(-1, actions.long().reshape(-1, 1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy ``(batch,)``."""
        return -(self.log_probs.exp() * self.log_probs).sum(dim=-1)


class DiagGaussian:
    """Diagonal Gaussian with ``mean`` ``(batch, dim)`` and ``log_std`` broadcastable to it."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)
        self.std = self.log_std.exp()

    def sample(self) -> torch.Tensor:
        """Draw actions ``(batch, dim)`` (reparameterised, so gradients flow)."""
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        """Return the mean ``(batch, dim)``."""
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-density ``(batch,)`` of actions ``(batch, dim)``."""
        z = (actions - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        """Entropy ``(batch,)``."""
        return (0.5 + _LOG_SQRT_2PI + self.log_std).sum(dim=-1)


class SquashedDiagGaussian(DiagGaussian):
    """Gaussian followed by ``tanh`` (SAC's policy): actions lie in ``(-1, 1)``.

    ``log_prob`` includes the change-of-variables term ``−Σ log(1 − tanh(u)²)``.
    """

    def sample_and_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw squashed actions ``(batch, dim)`` and their log-density ``(batch,)``."""
        pre_tanh = super().sample()
        return torch.tanh(pre_tanh), self._log_prob_pre_tanh(pre_tanh)

    def sample(self) -> torch.Tensor:
        """Draw squashed actions ``(batch, dim)``."""
        return torch.tanh(super().sample())

    def mode(self) -> torch.Tensor:
        """Return ``tanh(mean)``."""
        return torch.tanh(self.mean)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-density ``(batch,)`` of squashed actions in ``(-1, 1)``."""
        eps = torch.finfo(actions.dtype).eps
        pre_tanh = torch.atanh(actions.clamp(-1.0 + eps, 1.0 - eps))
        return self._log_prob_pre_tanh(pre_tanh)

    def _log_prob_pre_tanh(self, pre_tanh: torch.Tensor) -> torch.Tensor:
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), numerically stable.
        correction = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
        return super().log_prob(pre_tanh) - correction.sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        """Not available in closed form; use ``-log_prob`` of samples instead."""
        raise NotImplementedError("a squashed Gaussian has no closed-form entropy")


class CategoricalHead(nn.Module):
    """Linear layer from features to the logits of a ``Discrete(n)`` action."""

    def __init__(self, in_dim: int, n_actions: int) -> None:
        super().__init__()
        self.logits = nn.Linear(in_dim, n_actions)

    def forward(self, features: torch.Tensor) -> Categorical:
        """Return the action distribution for ``(batch, in_dim)`` features."""
        return Categorical(self.logits(features))


class DiagGaussianHead(nn.Module):
    """Linear mean and a state-independent learned ``log_std`` (the on-policy default)."""

    def __init__(self, in_dim: int, action_dim: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.mean = nn.Linear(in_dim, action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor) -> DiagGaussian:
        """Return the action distribution for ``(batch, in_dim)`` features."""
        return DiagGaussian(self.mean(features), self.log_std)


class SquashedGaussianHead(nn.Module):
    """State-dependent mean and log-std, tanh-squashed (SAC); ``log_std`` is clamped."""

    def __init__(
        self, in_dim: int, action_dim: int, log_std_min: float = -20.0, log_std_max: float = 2.0
    ) -> None:
        super().__init__()
        self.mean = nn.Linear(in_dim, action_dim)
        self.log_std = nn.Linear(in_dim, action_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, features: torch.Tensor) -> SquashedDiagGaussian:
        """Return the action distribution for ``(batch, in_dim)`` features."""
        log_std = self.log_std(features).clamp(self.log_std_min, self.log_std_max)
        return SquashedDiagGaussian(self.mean(features), log_std)


def make_action_head(action_space: gym.Space, in_dim: int, log_std_init: float = 0.0) -> nn.Module:
    """Build the on-policy action head for a ``Discrete`` or ``Box`` action space."""
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(in_dim, int(action_space.n))
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return DiagGaussianHead(in_dim, action_space.shape[0], log_std_init)
    raise UnsupportedEnvError(f"unsupported action space {action_space}; use Discrete or a 1-D Box")
