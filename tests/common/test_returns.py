"""Hand-computed checks of discounted returns and GAE, keeping terminated and truncated apart."""

import numpy as np
import pytest
import torch

from rlrobot.common.returns import discounted_returns, gae

GAMMA = 0.9


def column(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32).reshape(-1, 1)


def test_gae_lambda_one_without_episode_end_is_bootstrapped_monte_carlo():
    rewards, values = column(1, 1, 1), column(0.5, 0.5, 0.5)
    next_values = column(0.5, 0.5, 2.0)
    zeros = np.zeros((3, 1), dtype=bool)
    advantages, returns = gae(rewards, values, next_values, zeros, zeros, GAMMA, 1.0)
    # G_2 = 1 + 0.9*2 = 2.8; G_1 = 1 + 0.9*2.8 = 3.52; G_0 = 1 + 0.9*3.52 = 4.168
    np.testing.assert_allclose(returns[:, 0], [4.168, 3.52, 2.8], rtol=1e-6)
    np.testing.assert_allclose(advantages[:, 0], [3.668, 3.02, 2.3], rtol=1e-6)


def test_gae_lambda_zero_gives_one_step_td_errors():
    rewards, values, next_values = column(1, 2), column(0.5, 1.0), column(1.0, 3.0)
    zeros = np.zeros((2, 1), dtype=bool)
    advantages, _ = gae(rewards, values, next_values, zeros, zeros, GAMMA, 0.0)
    np.testing.assert_allclose(advantages[:, 0], [1 + 0.9 * 1.0 - 0.5, 2 + 0.9 * 3.0 - 1.0])


def test_termination_stops_bootstrapping_and_the_trace():
    rewards, values = column(1, 1, 1), column(0.0, 0.0, 0.0)
    # Step 1 terminates: V(next) must be ignored (set huge to be sure), trace must not cross.
    next_values = column(0.0, 100.0, 10.0)
    terminated = column(0, 1, 0).astype(bool)
    _, returns = gae(rewards, values, next_values, terminated, terminated, GAMMA, 1.0)
    np.testing.assert_allclose(returns[:, 0], [1 + 0.9 * 1, 1, 1 + 0.9 * 10], rtol=1e-6)


def test_truncation_bootstraps_from_the_real_final_observation():
    rewards, values = column(1, 1, 1), column(0.0, 0.0, 0.0)
    next_values = column(0.0, 5.0, 10.0)  # 5.0 is V(real final obs) of the truncated step 1
    terminated = np.zeros((3, 1), dtype=bool)
    episode_ends = column(0, 1, 0).astype(bool)
    _, returns = gae(rewards, values, next_values, terminated, episode_ends, GAMMA, 1.0)
    np.testing.assert_allclose(returns[:, 0], [1 + 0.9 * (1 + 0.9 * 5), 1 + 0.9 * 5, 10], rtol=1e-5)
    mc = discounted_returns(rewards, terminated, episode_ends, next_values, GAMMA)
    np.testing.assert_allclose(mc, returns, rtol=1e-6)


def test_gae_hand_computed_with_lambda_and_two_envs():
    lam = 0.5
    rewards = np.array([[1.0, 0.0], [0.0, 1.0]])
    values = np.array([[0.2, 0.4], [0.6, 0.8]])
    next_values = np.array([[0.6, 0.8], [1.0, 2.0]])
    terminated = np.array([[False, False], [True, False]])
    # env 0: δ1 = 0 - 0.6 = -0.6 (terminal), δ0 = 1 + 0.9*0.6 - 0.2 = 1.34; A0 = 1.34 + 0.45*-0.6
    # env 1: δ1 = 1 + 0.9*2 - 0.8 = 2.0, δ0 = 0 + 0.9*0.8 - 0.4 = 0.32; A0 = 0.32 + 0.45*2.0
    advantages, returns = gae(rewards, values, next_values, terminated, terminated, GAMMA, lam)
    np.testing.assert_allclose(advantages, [[1.34 - 0.27, 0.32 + 0.9], [-0.6, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(returns, advantages + values, rtol=1e-6)


def test_discounted_returns_pure_monte_carlo_and_torch_inputs():
    rewards = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    ends = torch.tensor([[False], [False], [True], [False]])
    returns = discounted_returns(rewards, ends, ends, None, GAMMA)
    assert isinstance(returns, torch.Tensor)
    torch.testing.assert_close(returns[:, 0], torch.tensor([0.81, 0.9, 1.0, 1.0]))


@pytest.mark.parametrize("lam", [0.0, 0.7, 1.0])
def test_gae_matches_a_naive_implementation(lam):
    rng = np.random.default_rng(0)
    n_steps, n_envs = 7, 3
    rewards, values = rng.normal(size=(2, n_steps, n_envs))
    next_values = rng.normal(size=(n_steps, n_envs))
    terminated = rng.random((n_steps, n_envs)) < 0.2
    truncated = (rng.random((n_steps, n_envs)) < 0.2) & ~terminated
    ends = terminated | truncated
    advantages, _ = gae(rewards, values, next_values, terminated, ends, GAMMA, lam)
    for env in range(n_envs):
        for t in range(n_steps):
            total, weight = 0.0, 1.0
            for k in range(t, n_steps):
                delta = rewards[k, env] + GAMMA * (1 - terminated[k, env]) * next_values[k, env]
                total += weight * (delta - values[k, env])
                if ends[k, env]:
                    break
                weight *= GAMMA * lam
            assert advantages[t, env] == pytest.approx(total, rel=1e-9, abs=1e-9)
