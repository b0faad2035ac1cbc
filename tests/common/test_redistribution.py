"""Reward redistribution maths (rlrobot.common.redistribution), with hand-computed values."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobot.agents.redistribution import ActionEncoder, RewardRedistributor
from rlrobot.common.redistribution import (
    ChunkIndex,
    find_chunk_ends,
    rrd_loss,
    uniform_redistribution,
)
from rlrobot.common.replay_buffer import ReplayBuffer


def test_chunks_end_at_episode_ends_and_at_paid_rewards():
    rewards = np.array([[0.0], [0.0], [3.0], [0.0], [0.0]])
    ends = np.array([[False], [False], [False], [False], [True]])
    assert find_chunk_ends(rewards, ends)[:, 0].tolist() == [False, False, True, False, True]


def test_uniform_split_spreads_each_released_sum_over_its_chunk():
    # env 0: chunk of 3 paying 6, then an episode of 2 paying 4 at its end.
    # env 1: 2 steps that continue an earlier chunk of 2 steps (sum 1), paying 5 at step 1;
    #        then 3 pending steps.
    rewards = np.array([[0.0, 0.0], [0.0, 5.0], [6.0, 0.0], [0.0, 0.0], [4.0, 0.0]])
    ends = np.array([[False, False], [False, False], [False, False], [False, False], [True, False]])
    split = uniform_redistribution(rewards, ends, carry_sum=[0.0, 1.0], carry_length=[0, 2])
    np.testing.assert_allclose(split.rewards[:, 0], [2, 2, 2, 2, 2])
    np.testing.assert_allclose(split.rewards[:, 1], [1.5, 1.5, 0, 0, 0])  # (1 + 5) / 4
    assert split.released[:, 0].all()
    assert split.released[:, 1].tolist() == [True, True, False, False, False]
    assert split.carry_sum.tolist() == [0.0, 0.0] and split.carry_length.tolist() == [0, 3]
    # Within the rollout, every finished chunk's redistributed rewards sum to its return.
    assert split.rewards[:, 0].sum() == pytest.approx(rewards[:, 0].sum())


def test_uniform_split_of_a_dense_reward_is_the_identity():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(20, 3))
    ends = rng.random((20, 3)) < 0.1
    split = uniform_redistribution(rewards, ends)
    np.testing.assert_allclose(split.rewards, rewards, rtol=1e-6)
    assert split.released.all()


def test_rrd_loss_equals_the_hand_computed_value():
    subset = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # subset means 2 and 0
    returns = torch.tensor([10.0, -4.0])
    lengths = torch.tensor([4.0, 2.0])  # per-step means 2.5 and −2
    # ((2.5 − 2)² + (−2 − 0)²) / 2 = (0.25 + 4) / 2
    assert rrd_loss(subset, returns, lengths).item() == pytest.approx(2.125)


def test_chunk_index_closes_chunks_and_draws_only_whole_stored_ones():
    index = ChunkIndex(n_rows=8, n_envs=1)
    paid = [0.0, 0.0, 3.0, 0.0, 1.0, 0.0]  # chunks [0, 2] (3) and [3, 4] (1), then one pending
    for row, reward in enumerate(paid):
        index.add(row, np.array([reward]), np.array([False]), n_live=row + 1)
    assert index.lengths[:6, 0].tolist() == [3, 3, 3, 2, 2, 0]
    assert index.returns[:6, 0].tolist() == [3, 3, 3, 1, 1, 0]
    assert index.positions[:6, 0].tolist() == [0, 1, 2, 0, 1, 0]
    assert index.n_chunks_ended == 2
    rows, envs = np.arange(6), np.zeros(6, dtype=np.int64)
    age = np.append(5 - rows, 6)
    chunk_rows, _, returns, lengths = index.sample_chunks(
        10, 50, rows, envs, age, np.random.default_rng(0)
    )
    assert len(returns) == 5  # the pending transition is no candidate
    for subset, chunk_return, length in zip(chunk_rows, returns, lengths, strict=True):
        assert set(subset) == ({0, 1, 2} if chunk_return == 3 else {3, 4})
        assert length == (3 if chunk_return == 3 else 2)
    # A chunk whose first step is no longer stored is not drawn.
    age_after_overwrite = np.append(5 - rows, 3)  # rows 3-5 stored
    _, _, returns, _ = index.sample_chunks(
        10, 4, rows, envs, age_after_overwrite, np.random.default_rng(0)
    )
    assert set(returns) == {1.0}
    index.abandon_running_chunks()
    assert index.running_length.tolist() == [0]


def make_uniform_buffer(n_steps: int = 1) -> ReplayBuffer:
    return ReplayBuffer(
        100,
        gym.spaces.Box(-10, 10, (1,)),
        gym.spaces.Box(-1, 1, (1,)),
        n_envs=1,
        gamma=0.5,
        n_steps=n_steps,
        seed=0,
        reward_redistribution="uniform",
    )


def fill(buffer: ReplayBuffer, rewards: list[float], ends: list[bool]) -> None:
    for step, (reward, end) in enumerate(zip(rewards, ends, strict=True)):
        observation = np.array([[float(step)]], dtype=np.float32)
        buffer.add(
            observation,
            np.zeros((1, 1), dtype=np.float32),
            np.array([reward]),
            observation + 1,
            np.array([end]),
            np.array([end]),
        )


def test_uniform_buffer_samples_only_released_steps_with_their_share():
    buffer = make_uniform_buffer()
    fill(buffer, [0.0, 0.0, 0.0], [False, False, False])
    assert not buffer.can_sample()  # nothing released yet: learn waits
    fill(buffer, [8.0, 0.0, 0.0], [True, False, False])  # a 4-step episode paying 8; 2 pending
    assert buffer.can_sample()
    sample = buffer.sample(500)
    assert set(sample.observations[:, 0].tolist()) <= {0.0, 1.0, 2.0}  # 3 steps of episode 1…
    np.testing.assert_allclose(sample.rewards, 2.0)  # …each 8 / 4; fill restarts obs at 0
    # n-step sums stop before pending steps.
    two_step = make_uniform_buffer(n_steps=2)
    fill(two_step, [0.0, 4.0, 0.0], [False, False, False])
    first = two_step.get_samples(np.array([0, 1]), np.array([0, 0]))
    np.testing.assert_allclose(first.rewards, [2.0 + 0.5 * 2.0, 2.0])


def test_uniform_buffer_state_round_trips_and_rejects_a_buffer_without_chunks(tmp_path):
    buffer = make_uniform_buffer()
    fill(buffer, [0.0, 6.0, 0.0], [False, True, False])
    path = buffer.save(tmp_path / "buffer")
    restored = make_uniform_buffer()
    restored.load(path)
    np.testing.assert_array_equal(restored.chunks.lengths, buffer.chunks.lengths)
    assert restored.chunks.running_length.tolist() == [1]
    plain = ReplayBuffer(100, gym.spaces.Box(-10, 10, (1,)), gym.spaces.Box(-1, 1, (1,)))
    plain_path = plain.save(tmp_path / "plain")
    with pytest.raises(ValueError, match="chunks"):
        make_uniform_buffer().load(plain_path)


def test_actions_are_encoded_one_hot_or_scaled_to_the_unit_box():
    discrete = ActionEncoder(gym.spaces.Discrete(3))(torch.tensor([0, 2]))
    assert discrete.tolist() == [[1, 0, 0], [0, 0, 1]]
    box = ActionEncoder(gym.spaces.Box(0.0, 4.0, (1,)))(torch.tensor([[0.0], [4.0]]))
    assert box.flatten().tolist() == [-1.0, 1.0]


class RRDConfig:
    """The rrd_* fields of an agent config."""

    rrd_net_arch = (64, 64)
    rrd_learning_rate = 3e-3
    rrd_batch_size = 16
    rrd_subset_size = 16
    rrd_gradient_steps = 1


def test_rrd_recovers_the_per_step_rewards_of_a_synthetic_chain():
    """Episodes of 10 steps pay only their sum; r̂ must find r(s, a) = s₀ − 2·a₀ + s₁·a₀."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.Box(-1, 1, (1,))
    buffer = ReplayBuffer(
        20_000, observation_space, action_space, n_envs=1, seed=0, reward_redistribution="rrd"
    )

    def true_reward(state: np.ndarray, action: np.ndarray) -> float:
        return float(state[0] - 2 * action[0] + state[1] * action[0])

    for step in range(10_000):
        state = rng.uniform(-1, 1, 2).astype(np.float32)
        action = rng.uniform(-1, 1, 1).astype(np.float32)
        end = step % 10 == 9
        buffer.add(state[None], action[None], np.zeros(1), state[None], [end], [end])
        buffer.rewards[(buffer.pos - 1) % buffer.n_rows, 0] = true_reward(state, action)
    # Release each episode's sum at its end, as a delayed env would.
    true = buffer.rewards[:10_000, 0].copy()
    index = ChunkIndex(buffer.n_rows, 1)
    for row in range(10_000):
        paid = true[row - 9 : row + 1].sum() if row % 10 == 9 else 0.0
        index.add(row, np.array([paid]), np.array([row % 10 == 9]), n_live=row + 1)
    buffer.chunks = index
    redistributor = RewardRedistributor(
        observation_space, action_space, RRDConfig(), torch.device("cpu")
    )
    for _ in range(1500):
        redistributor.train(buffer)
    rows = np.arange(9_000, 10_000)
    predicted = redistributor.predict_at(buffer, rows, np.zeros_like(rows)).numpy()
    correlation = np.corrcoef(predicted, true[rows])[0, 1]
    assert correlation >= 0.9, correlation
    # The untrained model does not: the threshold can fail.
    untrained = RewardRedistributor(
        observation_space, action_space, RRDConfig(), torch.device("cpu")
    )
    untrained_prediction = untrained.predict_at(buffer, rows, np.zeros_like(rows)).numpy()
    assert np.corrcoef(untrained_prediction, true[rows])[0, 1] < 0.9
