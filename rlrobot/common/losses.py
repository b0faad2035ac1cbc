"""The update maths as pure functions: the agents' losses, TD targets, the Polyak update, and
the (β-)VAE loss of the perception autoencoders.

Each function is the formula of its paper and nothing else: the agents compute the network
outputs, draw any noise, and pass tensors in; nothing here reads a config, calls a network or
draws a random number, so every formula can be checked by hand (``tests/common/test_losses.py``).
Shapes: ``batch`` is the minibatch size, ``n_critics`` the number of Q-networks.

TD targets keep ``terminated`` and ``truncated`` apart through ``discounts``: the replay buffer
stores ``γ^m·(1 − terminated)`` for an ``m``-step transition, so a step that ended its episode
for real has discount 0 (nothing is bootstrapped) and a step cut by a time limit keeps ``γ^m``
and bootstraps from its real final observation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


# -- on-policy: REINFORCE, A2C, PPO ------------------------------------------------------------
def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """Standardise advantages ``(batch,)`` to mean 0 and std 1 (a single one is kept as is)."""
    if advantages.numel() <= 1:
        # The std of one sample is undefined (NaN); there is nothing to standardise.
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def policy_gradient_loss(advantages: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """Return the REINFORCE/A2C policy loss ``−mean(A_t · log π(a_t|s_t))``.

    Args:
        advantages: ``A_t``, shape ``(batch,)``; constants (no gradient).
        log_prob: ``log π(a_t|s_t)`` of the taken actions, shape ``(batch,)``.
    """
    return -(advantages * log_prob).mean()


def clipped_surrogate_loss(
    advantages: torch.Tensor, ratio: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return PPO's clipped surrogate loss ``−L^CLIP`` and the fraction of clipped ratios.

    ``L^CLIP = mean(min(r_t·A_t, clip(r_t, 1 − ε, 1 + ε)·A_t))`` (Schulman et al., 2017,
    eq. 7). The clip fraction counts the samples with ``|r_t − 1| > ε``, whatever the sign of
    ``A_t``; it carries no gradient.

    Args:
        advantages: ``A_t``, shape ``(batch,)``.
        ratio: Probability ratios ``r_t = π(a_t|s_t) / π_old(a_t|s_t)``, shape ``(batch,)``.
        clip_range: ``ε > 0``.

    Returns:
        ``(loss, clip_fraction)``, two scalars.
    """
    surrogate = advantages * ratio
    clipped_surrogate = advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = -torch.min(surrogate, clipped_surrogate).mean()
    with torch.no_grad():
        clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return loss, clip_fraction


def approx_kl_divergence(ratio: torch.Tensor, log_ratio: torch.Tensor) -> torch.Tensor:
    """Estimate ``KL(π_old ‖ π)`` by ``mean((r − 1) − log r)``: unbiased and never negative.

    Args:
        ratio: ``r_t = π/π_old``, shape ``(batch,)``.
        log_ratio: ``log r_t``, the same shape (passed in as the caller has it already).
    """
    with torch.no_grad():
        return ((ratio - 1.0) - log_ratio).mean()


def clip_values(
    values: torch.Tensor, old_values: torch.Tensor, clip_range_vf: float
) -> torch.Tensor:
    """Clip value predictions to ``old_values ± clip_range_vf`` (PPO's ``clip_range_vf``).

    As in SB3, the clipped predictions replace the new ones in the value loss (not the larger
    of the clipped and unclipped losses of OpenAI baselines' PPO2).

    Args:
        values: ``V(s_t)`` under the current critic, shape ``(batch,)``.
        old_values: ``V_old(s_t)`` stored with the rollout, shape ``(batch,)``.
        clip_range_vf: Largest allowed change, in the units of the returns.
    """
    return old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)


# -- off-policy: SAC, TD3 ----------------------------------------------------------------------
def soft_q_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    next_q_values: torch.Tensor,
    next_log_prob: torch.Tensor,
    ent_coef: torch.Tensor | float,
) -> torch.Tensor:
    """Return SAC's soft TD target ``y = r + γ^m (1 − d) · (min_i Q̄_i(s′, ã′) − α log π(ã′|s′))``.

    Args:
        rewards: (n-step) rewards ``r``, shape ``(batch,)``.
        discounts: ``γ^m (1 − terminated)``, shape ``(batch,)`` (see the module docstring).
        next_q_values: Target critics at the next state and a fresh action ``ã′ ~ π(·|s′)``,
            shape ``(n_critics, batch)``.
        next_log_prob: ``log π(ã′|s′)``, shape ``(batch,)``.
        ent_coef: The entropy coefficient ``α``.
    """
    next_q = next_q_values.amin(dim=0)
    return rewards + discounts * (next_q - ent_coef * next_log_prob)


def target_policy_smoothing(
    next_actions: torch.Tensor, noise: torch.Tensor, noise_clip: float
) -> torch.Tensor:
    """Return TD3's smoothed target action ``clip(μ̄(s′) + clip(ε, −c, c), −1, 1)``.

    Args:
        next_actions: Target actor's actions ``μ̄(s′)`` in ``[-1, 1]``,
            shape ``(batch, action_dim)``.
        noise: ``ε ~ N(0, σ²)`` drawn by the caller, the same shape.
        noise_clip: ``c ≥ 0``.
    """
    return (next_actions + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def clipped_double_q_target(
    rewards: torch.Tensor, discounts: torch.Tensor, next_q_values: torch.Tensor
) -> torch.Tensor:
    """Return TD3's target ``y = r + γ^m (1 − d) · min_i Q̄_i(s′, ã′)`` (Fujimoto et al., 2018).

    Args:
        rewards: (n-step) rewards ``r``, shape ``(batch,)``.
        discounts: ``γ^m (1 − terminated)``, shape ``(batch,)`` (see the module docstring).
        next_q_values: Target critics at the next state and the smoothed target action,
            shape ``(n_critics, batch)``.
    """
    return rewards + discounts * next_q_values.amin(dim=0)


def critic_mse_loss(q_values: torch.Tensor, target_q: torch.Tensor) -> torch.Tensor:
    """Return ``Σ_i mean((Q_i(s, a) − y)²)``: every critic regressed on the same target.

    Args:
        q_values: ``Q_i(s, a)``, shape ``(n_critics, batch)``.
        target_q: The TD target ``y``, shape ``(batch,)`` (no gradient).
    """
    return (q_values - target_q).pow(2).mean(dim=1).sum()


def sac_actor_loss(
    log_prob: torch.Tensor, q_values: torch.Tensor, ent_coef: torch.Tensor | float
) -> torch.Tensor:
    """Return SAC's actor loss ``mean(α log π(ã|s) − min_i Q_i(s, ã))``, ``ã ~ π(·|s)``.

    Args:
        log_prob: ``log π(ã|s)`` of reparameterised actions, shape ``(batch,)``.
        q_values: ``Q_i(s, ã)``, shape ``(n_critics, batch)``.
        ent_coef: The entropy coefficient ``α`` (a constant here).
    """
    return (ent_coef * log_prob - q_values.amin(dim=0)).mean()


def entropy_temperature_loss(
    log_ent_coef: torch.Tensor, log_prob: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """Return SAC's α loss ``−mean(log α · (log π(ã|s) + H̄))`` (Haarnoja et al., 2018b).

    Its gradient raises α while the policy's entropy ``−log π`` is below the target ``H̄`` and
    lowers it above. ``log_prob`` is detached here: this loss moves α only, never the actor.

    Args:
        log_ent_coef: ``log α``, a scalar parameter.
        log_prob: ``log π(ã|s)`` of actions sampled from the policy, shape ``(batch,)``.
        target_entropy: ``H̄``, usually ``−dim(A)``.
    """
    return -(log_ent_coef * (log_prob.detach() + target_entropy)).mean()


@torch.no_grad()
def polyak_update(
    params: Sequence[torch.Tensor], target_params: Sequence[torch.Tensor], tau: float
) -> None:
    """Move target parameters in place: ``θ̄ ← (1 − τ)·θ̄ + τ·θ`` for every pair (one fused call).

    Args:
        params: The online parameters ``θ``.
        target_params: The target parameters ``θ̄``, in the same order and shapes.
        tau: ``τ`` in ``[0, 1]``: 0 leaves the targets, 1 copies the parameters.
    """
    torch._foreach_lerp_(target_params, params, tau)


# -- representation learning: autoencoder, β-VAE ------------------------------------------------


def gaussian_kl_divergence(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """Return ``KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)`` per sample.

    Args:
        mean: ``μ``, shape ``(batch, latent_dim)``.
        log_variance: ``log σ²``, same shape.

    Returns:
        Shape ``(batch,)`` (nats).
    """
    return 0.5 * (mean.pow(2) + log_variance.exp() - log_variance - 1.0).sum(dim=1)


def vae_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    mean: torch.Tensor | None = None,
    log_variance: torch.Tensor | None = None,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the β-VAE loss ``mean_b(Σ_d (x̂ − x)² + β·KL)`` and its terms (Higgins et al., 2017).

    The squared error summed over a sample's dimensions is the negative log-likelihood of a
    unit-variance Gaussian decoder up to ½ and a constant; with no ``mean``/``log_variance``
    (a plain autoencoder) the KL term is 0.

    Args:
        reconstruction: ``x̂``, shape ``(batch, *dims)``.
        target: ``x``, same shape.
        mean: ``μ`` of the posterior, ``(batch, latent_dim)``, or None.
        log_variance: ``log σ²`` of the posterior, same shape, or None.
        beta: ``β ≥ 0``, the weight of the KL term (1: the VAE of Kingma and Welling, 2014).

    Returns:
        ``(loss, reconstruction term, KL term)``, each a scalar averaged over the batch.
    """
    squared_error = (reconstruction - target).pow(2).flatten(1).sum(dim=1).mean()
    if mean is None or log_variance is None:
        kl = torch.zeros((), dtype=squared_error.dtype, device=squared_error.device)
    else:
        kl = gaussian_kl_divergence(mean, log_variance).mean()
    return squared_error + beta * kl, squared_error, kl
