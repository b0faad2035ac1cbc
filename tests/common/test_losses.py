"""Hand-computed checks of the update maths: PPO's clipping, the SAC/TD3 targets, α, Polyak,
the β-VAE loss."""

import math

import pytest
import torch

from rlrobot.common.losses import (
    approx_kl_divergence,
    clip_values,
    clipped_double_q_target,
    clipped_surrogate_loss,
    critic_mse_loss,
    entropy_temperature_loss,
    gaussian_kl_divergence,
    normalize_advantages,
    policy_gradient_loss,
    polyak_update,
    sac_actor_loss,
    soft_q_target,
    target_policy_smoothing,
    vae_loss,
)

GAMMA = 0.9


def tensor(*values: float, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, requires_grad=requires_grad)


def assert_close(actual: torch.Tensor, expected: list[float] | float) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32))


# -- on-policy ---------------------------------------------------------------------------------
def test_normalize_advantages_standardises_with_the_unbiased_std():
    # mean 2, unbiased std sqrt((1 + 0 + 1) / 2) = 1
    assert_close(normalize_advantages(tensor(1, 2, 3)), [-1.0, 0.0, 1.0])


def test_normalize_advantages_keeps_a_single_advantage():
    # The std of one sample is NaN; the advantage must come back as it is.
    assert_close(normalize_advantages(tensor(5)), [5.0])


def test_policy_gradient_loss():
    advantages, log_prob = tensor(1, -2), tensor(-0.5, -1.0, requires_grad=True)
    loss = policy_gradient_loss(advantages, log_prob)
    # −mean(1·(−0.5), (−2)·(−1)) = −mean(−0.5, 2) = −0.75
    assert_close(loss, -0.75)
    loss.backward()
    # d/d log π_i = −A_i / n
    assert_close(log_prob.grad, [-0.5, 1.0])


def test_clipped_surrogate_on_both_sides_of_the_clip_range_with_both_signs():
    clip_range = 0.2
    advantages = tensor(1, 1, -1, -1, 2)
    ratio = tensor(1.5, 0.5, 1.5, 0.5, 1.1, requires_grad=True)
    loss, clip_fraction = clipped_surrogate_loss(advantages, ratio, clip_range)
    # min(r·A, clip(r, 0.8, 1.2)·A) per sample:
    #   A=+1, r=1.5: min(1.5, 1.2) = 1.2   (clipped: no incentive to raise r further)
    #   A=+1, r=0.5: min(0.5, 0.8) = 0.5   (unclipped: the loss still pulls r back up)
    #   A=−1, r=1.5: min(−1.5, −1.2) = −1.5 (unclipped: the loss still pulls r back down)
    #   A=−1, r=0.5: min(−0.5, −0.8) = −0.8 (clipped)
    #   A=+2, r=1.1: min(2.2, 2.2) = 2.2   (inside the range)
    # loss = −(1.2 + 0.5 − 1.5 − 0.8 + 2.2) / 5 = −0.32
    assert_close(loss, -0.32)
    # |r − 1| > 0.2 for the first four samples, whatever the sign of A.
    assert_close(clip_fraction, 0.8)
    assert not clip_fraction.requires_grad
    loss.backward()
    # Gradient −A/5 where the unclipped term is the minimum, 0 where the clipped one is.
    assert_close(ratio.grad, [0.0, -0.2, 0.2, 0.0, -0.4])


def test_approx_kl_divergence():
    log_ratio = tensor(0.0, math.log(2.0))
    # ((1 − 1) − 0 + (2 − 1) − log 2) / 2 = (1 − log 2) / 2
    assert_close(approx_kl_divergence(log_ratio.exp(), log_ratio), (1 - math.log(2.0)) / 2)
    # Zero when nothing changed, positive otherwise.
    assert_close(approx_kl_divergence(tensor(1, 1), tensor(0, 0)), 0.0)
    assert approx_kl_divergence(tensor(0.5), tensor(math.log(0.5))) > 0


def test_clip_values_limits_the_change_from_the_old_values():
    old_values = tensor(1, 1, 1)
    values = tensor(1.5, 0.5, 1.05, requires_grad=True)
    clipped = clip_values(values, old_values, 0.2)
    # 1 + clamp(0.5, ±0.2) = 1.2; 1 + clamp(−0.5, ±0.2) = 0.8; 1.05 is within ±0.2
    assert_close(clipped, [1.2, 0.8, 1.05])
    clipped.sum().backward()
    # Clipped predictions get no gradient.
    assert_close(values.grad, [0.0, 0.0, 1.0])


# -- off-policy --------------------------------------------------------------------------------
# Three one-step transitions: the first continues, the second terminates, the third is cut by a
# time limit. The replay buffer stores discounts γ·(1 − terminated), so truncation does not
# enter them.
TERMINATED = tensor(0, 1, 0)
DISCOUNTS = GAMMA * (1 - TERMINATED)


def test_soft_q_target_bootstraps_truncated_steps_but_not_terminated_ones():
    rewards = tensor(1, 1, 1)
    next_q_values = torch.tensor([[2.0, 50.0, 4.0], [3.0, 60.0, 6.0]])  # (n_critics, batch)
    next_log_prob = tensor(-1, -1, 0.5)
    target = soft_q_target(rewards, DISCOUNTS, next_q_values, next_log_prob, ent_coef=0.5)
    # min_i Q̄_i = (2, 50, 4); minus α log π = (2.5, 50.5, 3.75)
    # y = (1 + 0.9·2.5, 1 + 0, 1 + 0.9·3.75) = (3.25, 1, 4.375): the terminated step keeps
    # only its reward, the truncated one bootstraps like a continuing one.
    assert_close(target, [3.25, 1.0, 4.375])


def test_clipped_double_q_target_takes_the_smaller_critic():
    rewards = tensor(1, -1, 2)
    next_q_values = torch.tensor([[2.0, 7.0, 10.0], [3.0, 5.0, 8.0]])
    target = clipped_double_q_target(rewards, DISCOUNTS, next_q_values)
    # min = (2, 5, 8); y = (1 + 0.9·2, −1 + 0, 2 + 0.9·8) = (2.8, −1, 9.2)
    assert_close(target, [2.8, -1.0, 9.2])


def test_n_step_targets_use_the_stored_discount():
    # A 2-step transition that did not terminate is discounted by γ².
    target = clipped_double_q_target(tensor(1.5), tensor(GAMMA**2), torch.tensor([[10.0], [20.0]]))
    assert_close(target, [1.5 + 0.81 * 10])


def test_target_policy_smoothing_clips_the_noise_then_the_action():
    next_actions = tensor(0.9, -0.5, 0.0)
    noise = tensor(0.3, -0.7, 0.1)
    smoothed = target_policy_smoothing(next_actions, noise, noise_clip=0.5)
    # noise → (0.3, −0.5, 0.1); sums (1.2, −1.0, 0.1); actions clipped to [−1, 1]
    assert_close(smoothed, [1.0, -1.0, 0.1])
    # No noise clip: the target action is the target actor's.
    assert_close(target_policy_smoothing(next_actions, noise, noise_clip=0.0), [0.9, -0.5, 0.0])


def test_critic_mse_loss_sums_the_critics_mean_squared_errors():
    q_values = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    # critic 1: errors (−1, 0) → 0.5; critic 2: errors (1, −2) → 2.5; sum 3
    assert_close(critic_mse_loss(q_values, tensor(2, 2)), 3.0)


def test_sac_actor_loss_uses_the_smaller_critic():
    log_prob = tensor(-1, 2)
    q_values = torch.tensor([[3.0, 1.0], [2.0, 4.0]])
    # min Q = (2, 1); α log π − min Q = (−0.5 − 2, 1 − 1) = (−2.5, 0); mean −1.25
    assert_close(sac_actor_loss(log_prob, q_values, ent_coef=0.5), -1.25)


@pytest.mark.parametrize(
    ("log_prob", "gradient"),
    [
        # Entropy −log π = 2 on average, above the target −2: log α must go down.
        # loss = −log α·mean(log π + H̄) = −log α·mean(−3, −5); d/d log α = 4
        ((-1.0, -3.0), 4.0),
        # Entropy −4, below the target: log α must go up; mean(1, 3) = 2, gradient −2.
        ((3.0, 5.0), -2.0),
    ],
)
def test_entropy_temperature_loss_moves_alpha_toward_the_target_entropy(log_prob, gradient):
    log_ent_coef = torch.tensor(math.log(0.5), requires_grad=True)
    log_prob = tensor(*log_prob, requires_grad=True)
    loss = entropy_temperature_loss(log_ent_coef, log_prob, target_entropy=-2.0)
    # The loss is linear in log α, with the gradient as its slope.
    assert_close(loss, math.log(0.5) * gradient)
    loss.backward()
    assert_close(log_ent_coef.grad, gradient)
    # The α loss never moves the actor.
    assert log_prob.grad is None


def make_parameters() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    params = [tensor(1, 2, requires_grad=True), tensor(10, requires_grad=True)]
    target_params = [tensor(3, 4), tensor(0)]
    return params, target_params


@pytest.mark.parametrize(
    ("tau", "expected"),
    [
        (0.0, [[3.0, 4.0], [0.0]]),  # τ = 0: the targets stay
        (1.0, [[1.0, 2.0], [10.0]]),  # τ = 1: a hard copy
        # τ = 0.25: 0.75·3 + 0.25·1 = 2.5; 0.75·4 + 0.25·2 = 3.5; 0.75·0 + 0.25·10 = 2.5
        (0.25, [[2.5, 3.5], [2.5]]),
    ],
)
def test_polyak_update(tau, expected):
    params, target_params = make_parameters()
    polyak_update(params, target_params, tau)
    for target, values in zip(target_params, expected, strict=True):
        assert_close(target, values)
        assert not target.requires_grad
    # The online parameters are read, never written.
    assert_close(params[0].detach(), [1.0, 2.0])
    assert_close(params[1].detach(), [10.0])


def test_gaussian_kl_divergence_matches_hand_computed_values() -> None:
    mean = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    log_variance = torch.tensor([[0.0, 0.0], [0.0, math.log(2.0)]])
    # Sample 1 is the prior: 0. Sample 2: ½(1 + 1 − 0 − 1) + ½(0 + 2 − ln 2 − 1) = 1 − ½ ln 2.
    assert_close(gaussian_kl_divergence(mean, log_variance), [0.0, 1.0 - 0.5 * math.log(2.0)])


def test_vae_loss_is_summed_squared_error_plus_beta_kl_averaged_over_the_batch() -> None:
    reconstruction = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    mean = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    log_variance = torch.tensor([[0.0, 0.0], [0.0, math.log(2.0)]])
    # Squared errors per sample: 1 + 0 = 1 and 4 + 9 = 13, mean 7; mean KL (1 − ½ ln 2) / 2.
    kl = (1.0 - 0.5 * math.log(2.0)) / 2
    loss, squared_error, kl_term = vae_loss(reconstruction, target, mean, log_variance, beta=4.0)
    assert_close(squared_error, 7.0)
    assert_close(kl_term, kl)
    assert_close(loss, 7.0 + 4.0 * kl)
    # A plain autoencoder (no posterior) has no KL term, whatever β.
    loss, squared_error, kl_term = vae_loss(reconstruction, target, beta=4.0)
    assert_close(loss, 7.0)
    assert_close(kl_term, 0.0)
    # Images (batch, C, H, W) are summed over every dimension of a sample.
    images = torch.ones(2, 3, 2, 2)
    assert_close(vae_loss(images, torch.zeros_like(images))[0], 12.0)
