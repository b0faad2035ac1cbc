"""Every vector env of ``make_vec_env`` saves and restores its sub-envs' episodes in progress."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from rlrobot.errors import CheckpointError
from rlrobot.vec import VEC_ENV_CHOICES, make_vec_env
from rlrobot.vec.state import get_vector_env_state, set_vector_env_state


def play(vector, actions):
    """Step through ``actions``; return the observations, rewards and episode ends."""
    rows = []
    for action in actions:
        observations, rewards, terminated, truncated, _ = vector.step(action)
        rows.append(np.concatenate([observations.ravel(), rewards, terminated, truncated]))
    return np.array(rows)


@pytest.mark.parametrize("vec_env", VEC_ENV_CHOICES)
def test_a_restored_vector_env_continues_every_episode(vec_env):
    source = make_vec_env("rlrobot/CartPoleContinuous-v0", 3, vec_env, seed=0)
    target = make_vec_env("rlrobot/CartPoleContinuous-v0", 3, vec_env, seed=7)
    try:
        rng = np.random.default_rng(0)
        # Long enough for terminations on both sides of the cut (SAME_STEP autoresets).
        actions = rng.uniform(-1, 1, (90, 3, 1)).astype(np.float32)
        play(source, actions[:25])
        states = get_vector_env_state(source)
        assert states is not None and len(states) == 3
        expected = play(source, actions[25:])
        assert expected[:, -6:].any()  # some episode ended after the cut
        set_vector_env_state(target, states)
        np.testing.assert_array_equal(play(target, actions[25:]), expected)
    finally:
        source.close()
        target.close()


def test_vector_envs_whose_envs_cannot_save_their_state_say_so():
    third_party = make_vec_env("CartPole-v1", 2, seed=0)  # Gymnasium's env: no get_state
    assert get_vector_env_state(third_party) is None
    given = gym.vector.SyncVectorEnv(
        [lambda: gym.make("rlrobot/CartPole-v0")] * 2, autoreset_mode=AutoresetMode.SAME_STEP
    )
    own = make_vec_env("rlrobot/CartPole-v0", 2, seed=0)
    states = get_vector_env_state(own)
    # A vector env not made by make_vec_env: its sub-envs are not wrapped to reach their state.
    assert get_vector_env_state(make_vec_env(given)) is None
    with pytest.raises(CheckpointError, match="make_vec_env"):
        set_vector_env_state(given, states)
    with pytest.raises(CheckpointError, match="for 1 envs"):
        set_vector_env_state(own, states[:1])
    for vector in (third_party, given, own):
        vector.close()
