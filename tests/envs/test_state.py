"""An env's state mid-episode survives a checkpoint round trip and continues the episode."""

import json

import gymnasium as gym
import numpy as np
import pytest

import rlrobot
from rlrobot.common.checkpoint import pack_state, unpack_state
from rlrobot.envs.registration import DELAYED_ENV_ID
from rlrobot.envs.state import EpisodeStateAccess, get_env_state, set_env_state
from rlrobot.errors import CheckpointError

# Envs whose physics a restored snapshot continues bit for bit (no contacts; see
# docs/reliability.md for the envs with contacts), with every option that adds episode state.
EXACT_ENVS = [
    ("rlrobot/CartPole-v0", {}),
    ("rlrobot/CartPoleContinuous-v0", {"reward_mode": "delayed", "randomization": True}),
    (DELAYED_ENV_ID, {"env_id": "rlrobot/CartPoleContinuous-v0", "period": 7}),
]


def flatten(observation):
    """One 1-D array of an observation (the values of a dict observation concatenated)."""
    if isinstance(observation, dict):
        return np.concatenate([np.ravel(value) for value in observation.values()])
    return np.ravel(observation)


def play(env, actions):
    """Step through ``actions`` (resetting at episode ends); return one row per step."""
    rows = []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(action)
        rows.append(np.concatenate([flatten(observation), [reward, terminated, truncated]]))
        if terminated or truncated:
            env.reset()
    return np.array(rows)


def body_state(sim, name):
    """Base pose and velocity and joint positions and velocities of a body, as one array.

    Link frames are left out: PyBullet's own lag the joints by a substep, and a restore
    recomputes them from the joints (see docs/reliability.md).
    """
    parts = [*sim.get_base_pose(name), *sim.get_base_velocity(name)]
    n_joints = sim.get_num_joints(name)
    if n_joints:
        parts += sim.get_joint_states(name, range(n_joints))
    return np.concatenate(parts)


def checkpoint_round_trip(state):
    """What a checkpoint gives back of ``state``: tensors and a JSON tree, reloaded."""
    tensors, tree = pack_state(state)
    return unpack_state(json.loads(json.dumps(tree)), {k: v.clone() for k, v in tensors.items()})


@pytest.mark.parametrize(("env_id", "kwargs"), EXACT_ENVS)
def test_a_restored_env_continues_its_episode_step_for_step(env_id, kwargs):
    source = gym.make(env_id, **kwargs)
    source.reset(seed=1)
    source.action_space.seed(0)
    # Long enough for a time limit, terminations and periodic releases on both sides of the cut.
    actions = [source.action_space.sample() for _ in range(160)]
    play(source, actions[:30])
    state = checkpoint_round_trip(get_env_state(source))
    expected = play(source, actions[30:])
    expected_action = source.action_space.sample()

    target = gym.make(env_id, **kwargs)
    target.reset(seed=99)
    play(target, actions[:11])  # elsewhere in another episode
    set_env_state(target, state)
    np.testing.assert_array_equal(play(target, actions[30:]), expected)
    assert target.action_space.sample() == pytest.approx(expected_action)
    source.close()
    target.close()


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_saving_the_state_changes_nothing_and_restoring_it_moves_the_bodies_back(env_id):
    def trajectory(save: bool) -> np.ndarray:
        env = gym.make(env_id)
        env.reset(seed=2)
        env.action_space.seed(2)
        rows = []
        for step in range(24):
            if save and step % 5 == 2:
                get_env_state(env)
            rows.append(play(env, [env.action_space.sample()])[0])
        env.close()
        return np.array(rows)

    np.testing.assert_array_equal(trajectory(save=True), trajectory(save=False))

    source, target = gym.make(env_id), gym.make(env_id)
    source.reset(seed=3)
    target.reset(seed=4)
    source.action_space.seed(3)
    play(source, [source.action_space.sample() for _ in range(9)])
    set_env_state(target, checkpoint_round_trip(get_env_state(source)))
    source_sim, target_sim = source.unwrapped.sim, target.unwrapped.sim
    for name in source_sim.body_names:
        np.testing.assert_array_equal(body_state(source_sim, name), body_state(target_sim, name))
    source.close()
    target.close()


def test_an_env_without_get_state_has_no_state_and_the_access_wrapper_says_so():
    assert get_env_state(gym.make("CartPole-v1")) is None  # Gymnasium's, not rlrobot's
    wrapped = EpisodeStateAccess(gym.make("rlrobot/CartPole-v0"))
    wrapped.reset(seed=0)
    assert wrapped.get_wrapper_attr("episode_state")["layers"][-1]["layer"] == "CartPoleEnv"
    assert EpisodeStateAccess(gym.make("CartPole-v1")).episode_state is None


def test_a_state_that_does_not_fit_is_refused():
    source, other = gym.make("rlrobot/CartPole-v0"), gym.make("rlrobot/CartPoleContinuous-v0")
    source.reset(seed=0)
    other.reset(seed=0)
    state = get_env_state(source)
    with pytest.raises(CheckpointError, match="wrappers"):
        set_env_state(source, {**state, "layers": state["layers"][1:]})
    broken = checkpoint_round_trip(state)
    broken["layers"][-1]["state"]["sim"] = np.frombuffer(b"not a snapshot", dtype=np.uint8)
    with pytest.raises(CheckpointError, match="bullet"):
        set_env_state(source, broken)
    elapsed = checkpoint_round_trip(state)
    elapsed["layers"][1]["state"]["_elapsed_steps"] = "three"
    with pytest.raises(CheckpointError, match="_elapsed_steps"):
        set_env_state(source, elapsed)
    with pytest.raises(CheckpointError, match="PCG64"):
        set_env_state(source, {**state, "action_space_rng": {"bit_generator": "MT19937"}})
