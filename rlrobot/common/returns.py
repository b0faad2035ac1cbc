"""Discounted returns and generalised advantage estimation (GAE) as pure functions.

Every function takes arrays of shape ``(n_steps, n_envs)`` (NumPy arrays or torch tensors; the
result has the same type) and keeps ``terminated`` and ``truncated`` apart:

* ``terminated[t]`` — the episode really ended at step ``t``; nothing is bootstrapped.
* ``episode_ends[t] = terminated[t] | truncated[t]`` — the episode stopped at ``t`` (also by a
  time limit). The sums never cross into the next episode, but a truncated step still
  bootstraps from ``next_values[t]``, the value of the *real* final observation.

``next_values[t]`` is ``V(s_{t+1})`` where ``s_{t+1}`` is the observation that followed step
``t`` — for a truncated step the real final observation (not the reset one), and for the last
step of the rollout the observation the next rollout starts from.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _to_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy().astype(np.float64)
    return np.asarray(array, dtype=np.float64)


def _like(result: np.ndarray, reference: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    if isinstance(reference, torch.Tensor):
        dtype = reference.dtype if reference.is_floating_point() else torch.float32
        return torch.as_tensor(result, dtype=dtype, device=reference.device)
    dtype = reference.dtype if np.issubdtype(reference.dtype, np.floating) else np.float32
    return result.astype(dtype)


def discounted_returns(
    rewards: ArrayT,
    terminated: ArrayT,
    episode_ends: ArrayT,
    next_values: ArrayT | None,
    gamma: float,
) -> ArrayT:
    """Compute reward-to-go ``G_t = r_t + γ·G_{t+1}`` within each episode.

    Where an episode is cut without terminating (time limit, or end of the rollout) the tail
    is bootstrapped: ``G_t = r_t + γ·next_values[t]``. This equals ``gae(..., gae_lambda=1)``
    plus the values.

    Args:
        rewards: Rewards ``r_t``, shape ``(n_steps, n_envs)``.
        terminated: True where the episode terminated at step ``t``, shape ``(n_steps, n_envs)``.
        episode_ends: True where the episode terminated or was truncated at ``t``, same shape.
        next_values: ``V(s_{t+1})`` used to bootstrap truncated steps and the last step,
            shape ``(n_steps, n_envs)``; ``None`` means zeros (pure Monte Carlo).
        gamma: Discount factor in ``(0, 1]``.

    Returns:
        The returns ``G_t``, shape ``(n_steps, n_envs)``, same array type as ``rewards``.
    """
    rewards_np = _to_numpy(rewards)
    not_terminated = 1.0 - _to_numpy(terminated)
    continues = 1.0 - _to_numpy(episode_ends)
    next_values_np = np.zeros_like(rewards_np) if next_values is None else _to_numpy(next_values)
    returns = np.zeros_like(rewards_np)
    next_return = next_values_np[-1]
    for t in reversed(range(rewards_np.shape[0])):
        if t < rewards_np.shape[0] - 1:
            # Inside the rollout: continue the sum unless the episode stopped at t.
            next_return = continues[t] * returns[t + 1] + (1.0 - continues[t]) * next_values_np[t]
        returns[t] = rewards_np[t] + gamma * not_terminated[t] * next_return
    return _like(returns, rewards)


def gae(
    rewards: ArrayT,
    values: ArrayT,
    next_values: ArrayT,
    terminated: ArrayT,
    episode_ends: ArrayT,
    gamma: float,
    gae_lambda: float,
) -> tuple[ArrayT, ArrayT]:
    """Compute generalised advantage estimates (Schulman et al., 2016).

    ``δ_t = r_t + γ·(1 − terminated_t)·V(s_{t+1}) − V(s_t)`` and
    ``A_t = δ_t + γ·λ·(1 − episode_ends_t)·A_{t+1}``; the value targets are ``A_t + V(s_t)``.

    Args:
        rewards: Rewards ``r_t``, shape ``(n_steps, n_envs)``.
        values: ``V(s_t)``, shape ``(n_steps, n_envs)``.
        next_values: ``V(s_{t+1})`` of the real next observation, shape ``(n_steps, n_envs)``.
        terminated: True where the episode terminated at step ``t``.
        episode_ends: True where the episode terminated or was truncated at step ``t``.
        gamma: Discount factor in ``(0, 1]``.
        gae_lambda: Bias/variance trade-off λ in ``[0, 1]``; 1 gives Monte Carlo advantages,
            0 gives one-step TD errors.

    Returns:
        ``(advantages, returns)``, each of shape ``(n_steps, n_envs)``, same type as ``rewards``.
    """
    rewards_np, values_np = _to_numpy(rewards), _to_numpy(values)
    not_terminated = 1.0 - _to_numpy(terminated)
    continues = 1.0 - _to_numpy(episode_ends)
    deltas = rewards_np + gamma * not_terminated * _to_numpy(next_values) - values_np
    advantages = np.zeros_like(rewards_np)
    last_advantage = np.zeros(rewards_np.shape[1:])
    for t in reversed(range(rewards_np.shape[0])):
        last_advantage = deltas[t] + gamma * gae_lambda * continues[t] * last_advantage
        advantages[t] = last_advantage
    return _like(advantages, rewards), _like(advantages + values_np, rewards)
