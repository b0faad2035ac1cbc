"""Replay buffer: stored transitions equal a naive list of them, n-step targets by hand, memory."""

import gymnasium as gym
import numpy as np
import pytest

from rlrobot.common.replay_buffer import ReplayBuffer

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def fill(buffer, n_steps, episode_ends_at, terminated_at, seed=0):
    """Feed ``n_steps`` vector steps; return the naive transition list per env.

    Observations are unique numbers ``[step, env]``; the reset observation after an episode
    end is ``[-step, env]`` and the final one ``[step + 0.5, env]``.
    """
    n_envs = buffer.n_envs
    rng = np.random.default_rng(seed)
    observations = np.stack([np.zeros(n_envs), np.arange(n_envs)], axis=1).astype(np.float32)
    transitions = [[] for _ in range(n_envs)]
    for step in range(n_steps):
        actions = rng.uniform(-1, 1, (n_envs, 1)).astype(np.float32)
        rewards = rng.normal(size=n_envs).astype(np.float32)
        ended = np.array([(step, env) in episode_ends_at for env in range(n_envs)])
        terminated = np.array([(step, env) in terminated_at for env in range(n_envs)])
        next_observations = observations.copy()
        next_observations[:, 0] = step + 1
        next_observations[ended, 0] = step + 0.5  # the real final observation
        buffer.add(observations, actions, rewards, next_observations, terminated, ended)
        for env in range(n_envs):
            transitions[env].append(
                (observations[env], actions[env], rewards[env], next_observations[env],
                 terminated[env], ended[env])
            )  # fmt: skip
        observations = next_observations.copy()
        observations[ended, 0] = -(step + 1)  # the reset observation of the next episode
    return transitions


def all_indices(buffer):
    if buffer.full:
        valid_rows = [r for r in range(buffer.n_rows) if r != buffer.pos]
    else:
        valid_rows = list(range(buffer.pos))
    rows = np.repeat(valid_rows, buffer.n_envs)
    envs = np.tile(np.arange(buffer.n_envs), len(valid_rows))
    return rows, envs


def row_age(buffer, rows):
    """How many steps ago each row was written (0: the newest)."""
    return (buffer.pos - 1 - rows) % buffer.n_rows


@pytest.mark.parametrize("buffer_size, n_steps_fed", [(40, 12), (10, 23)])
def test_samples_equal_naive_transitions_with_wraparound(buffer_size, n_steps_fed):
    buffer = ReplayBuffer(buffer_size, OBS_SPACE, ACTION_SPACE, n_envs=2, gamma=0.9)
    ends = {(3, 0), (4, 1), (9, 0), (10, 1), (11, 0), (15, 1), (19, 0), (20, 0)}
    terminated = {(3, 0), (10, 1), (19, 0)}
    naive = fill(buffer, n_steps_fed, ends, terminated)
    assert len(buffer) == min(n_steps_fed, buffer.n_rows - 1) * 2
    rows, envs = all_indices(buffer)
    sample = buffer.get_samples(rows, envs)
    for i, (row, env) in enumerate(zip(rows, envs, strict=True)):
        step = n_steps_fed - 1 - row_age(buffer, row)
        obs, action, reward, next_obs, term, _ = naive[env][step]
        np.testing.assert_array_equal(sample.observations[i], obs)
        np.testing.assert_array_equal(sample.actions[i], action)
        assert sample.rewards[i] == reward
        # Truncated episodes keep their real final observation and are bootstrapped.
        np.testing.assert_array_equal(sample.next_observations[i], next_obs)
        assert sample.discounts[i] == pytest.approx(0.0 if term else 0.9)


def test_final_observation_ring_grows_and_stays_consistent():
    buffer = ReplayBuffer(3000, OBS_SPACE, ACTION_SPACE, n_envs=1)
    assert buffer.final_capacity == 1024
    every_step = {(step, 0) for step in range(2500)}  # every transition ends an episode
    naive = fill(buffer, 2500, every_step, set())
    assert buffer.final_capacity >= 2500 and buffer.final_count == 2500
    rows, envs = all_indices(buffer)
    sample = buffer.get_samples(rows, envs)
    expected = np.stack([naive[0][2499 - row_age(buffer, row)][3] for row in rows])
    np.testing.assert_array_equal(sample.next_observations, expected)


def test_final_ring_frees_entries_of_overwritten_rows():
    buffer = ReplayBuffer(20, OBS_SPACE, ACTION_SPACE, n_envs=2)
    ends = {(step, env) for step in range(200) for env in range(2) if step % 3 == env}
    fill(buffer, 200, ends, set())
    live = buffer.final_slot[buffer.final_slot >= 0]
    assert buffer.final_count == live.size <= buffer.final_capacity
    assert len(set(live.tolist())) == live.size


def test_n_step_returns_by_hand():
    gamma = 0.5
    buffer = ReplayBuffer(100, OBS_SPACE, ACTION_SPACE, n_envs=1, gamma=gamma, n_steps=3)
    # Steps 0..7; the episode is truncated at step 2 and terminated at step 5.
    naive = fill(buffer, 8, episode_ends_at={(2, 0), (5, 0)}, terminated_at={(5, 0)})
    r = [t[2] for t in naive[0]]
    next_obs = [t[3] for t in naive[0]]
    rows = np.arange(8)
    sample = buffer.get_samples(rows, np.zeros(8, dtype=int))
    expected = [
        # (reward sum, discount, index of the transition whose next obs is bootstrapped)
        (r[0] + gamma * r[1] + gamma**2 * r[2], gamma**3, 2),  # stops at the truncation
        (r[1] + gamma * r[2], gamma**2, 2),
        (r[2], gamma, 2),
        (r[3] + gamma * r[4] + gamma**2 * r[5], 0.0, 5),  # terminated: no bootstrap
        (r[4] + gamma * r[5], 0.0, 5),
        (r[5], 0.0, 5),
        (r[6] + gamma * r[7], gamma**2, 7),  # stops at the newest stored step
        (r[7], gamma, 7),
    ]
    for i, (reward, discount, last) in enumerate(expected):
        assert sample.rewards[i] == pytest.approx(reward, rel=1e-6)
        assert sample.discounts[i] == pytest.approx(discount)
        np.testing.assert_array_equal(sample.next_observations[i], next_obs[last])


def test_uniform_sampling_covers_only_stored_transitions():
    buffer = ReplayBuffer(8, OBS_SPACE, ACTION_SPACE, n_envs=2, seed=0)
    fill(buffer, 30, set(), set())
    rows, envs = buffer.sample_indices(4000)
    assert not np.any(rows == buffer.pos)  # the row holding only the newest next observation
    counts = np.bincount(rows * 2 + envs, minlength=buffer.n_rows * 2)
    stored = counts[counts > 0]
    assert stored.size == len(buffer) == 8
    assert stored.min() > 4000 / 8 * 0.7


def test_dict_and_image_observations_keep_dtype_and_are_stored_once():
    space = gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
            "state": gym.spaces.Box(-1, 1, (4,), np.float32),
        }
    )
    buffer = ReplayBuffer(1000, space, ACTION_SPACE, n_envs=1)
    assert buffer.observations["image"].dtype == np.uint8
    assert buffer.observations["image"].shape == (1001, 1, 16, 16, 3)
    rng = np.random.default_rng(0)
    observations = {k: s.sample()[None] for k, s in space.spaces.items()}
    for step in range(5):
        next_observations = {k: s.sample()[None] for k, s in space.spaces.items()}
        ended = np.array([step == 2])
        buffer.add(observations, rng.uniform(-1, 1, (1, 1)), np.ones(1), next_observations,
                   np.zeros(1, bool), ended)  # fmt: skip
        sample = buffer.get_samples(np.array([step]), np.array([0]))
        for key in space.spaces:
            np.testing.assert_array_equal(
                sample.next_observations[key][0], next_observations[key][0]
            )
            assert sample.observations[key].dtype == space[key].dtype
        observations = next_observations
    image_bytes = 1001 * 16 * 16 * 3
    assert buffer.observations["image"].nbytes == image_bytes  # one copy, uint8


@pytest.mark.parametrize("name", ["buffer", "buffer.v2", "buffer.npz"])
def test_save_appends_npz_like_numpy_and_load_takes_the_same_path(tmp_path, name):
    buffer = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, seed=3)
    fill(buffer, 7, set(), set())
    written = buffer.save(tmp_path / name)
    assert written == tmp_path / (name if name.endswith(".npz") else f"{name}.npz")
    assert sorted(path.name for path in tmp_path.iterdir()) == [written.name]  # no stray temp
    assert written.stat().st_size > 0
    restored = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE)
    restored.load(tmp_path / name)
    np.testing.assert_array_equal(restored.actions, buffer.actions)


def test_million_transitions_of_30_floats_fit_in_300_mb():
    observation_space = gym.spaces.Box(-np.inf, np.inf, (30,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (8,), np.float32)
    buffer = ReplayBuffer(1_000_000, observation_space, action_space)
    assert buffer.nbytes < 300e6
    # Observations are stored once: less than 1.01 × one float32 copy of them.
    assert buffer.observations[""].nbytes < 1.01 * 1_000_000 * 30 * 4


def test_save_load_round_trip(tmp_path):
    buffer = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, n_envs=2, n_steps=2, seed=3)
    fill(buffer, 23, {(3, 0), (7, 1), (20, 0)}, {(7, 1)})
    buffer.save(tmp_path / "buffer.npz")
    restored = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, n_envs=2, n_steps=2, seed=99)
    restored.load(tmp_path / "buffer.npz")
    first, second = buffer.sample(64), restored.sample(64)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    wrong = ReplayBuffer(12, OBS_SPACE, ACTION_SPACE, n_envs=2, n_steps=2)
    with pytest.raises(ValueError, match="rows, n_envs, n_steps"):
        wrong.load(tmp_path / "buffer.npz")
