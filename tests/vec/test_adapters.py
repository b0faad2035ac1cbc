"""Every vector env ``make_vec_env`` adapts steps the same episodes as the ``SAME_STEP`` original.

Each test steps the adapted env and a reference with the same seeds and actions and compares
observations, rewards, terminated, truncated and the final observations step by step.
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecFrameStack,
    VecMonitor,
    VecNormalize,
)

from rlrobot.agents.her import get_compute_reward
from rlrobot.errors import UnsupportedEnvError
from rlrobot.vec import get_vec_normalize, make_vec_env
from rlrobot.vec.adapters import SameStepAutoreset, SB3VecEnvAdapter, is_sb3_vec_env

N_ENVS = 2
SEED = 3
N_STEPS = 200


def make_cartpole():
    # A short time limit, so that both truncations and terminations happen.
    return gym.make("CartPole-v1", max_episode_steps=15)


class GoalCartPole(gym.ObservationWrapper):
    """CartPole with a Dict observation of HER's keys (the goal: cart and pole upright)."""

    def __init__(self, env):
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Dict(
            observation=box,
            achieved_goal=gym.spaces.Box(box.low[::2], box.high[::2]),
            desired_goal=gym.spaces.Box(box.low[::2], box.high[::2]),
        )

    def observation(self, observation):
        return {
            "observation": observation,
            "achieved_goal": observation[::2],
            "desired_goal": np.zeros(2, np.float32),
        }

    def compute_reward(self, achieved_goal, desired_goal, info):
        return -(np.linalg.norm(achieved_goal - desired_goal, axis=-1) > 0.1).astype(np.float64)


def make_goal_cartpole():
    return GoalCartPole(make_cartpole())


def same_step_reference(make_env=make_cartpole):
    return gym.vector.SyncVectorEnv([make_env] * N_ENVS, autoreset_mode=AutoresetMode.SAME_STEP)


def as_array(observations):
    """Dict observations as one array (keys in order), to compare them as a whole."""
    if isinstance(observations, dict):
        return np.concatenate([np.asarray(observations[key]) for key in sorted(observations)], -1)
    return np.asarray(observations)


def actions(n_steps=N_STEPS):
    return np.random.default_rng(0).integers(0, 2, (n_steps, N_ENVS))


def final_observations(infos):
    mask = infos.get("_final_obs", np.zeros(N_ENVS, dtype=bool))
    return mask, [as_array(infos["final_obs"][i]) for i in np.flatnonzero(mask)]


def assert_same_episodes(adapted, reference, truncated_only_if_not_terminated=False):
    """Step both with the same seeds and actions; every step's results must be equal.

    With ``truncated_only_if_not_terminated`` (SB3's ``TimeLimit.truncated``), an episode that
    terminates at its time limit is expected as terminated only.
    """
    observations, _ = adapted.reset(seed=SEED)
    expected, _ = reference.reset(seed=SEED)
    np.testing.assert_array_equal(as_array(observations), as_array(expected))
    ends = {"terminated": 0, "truncated": 0}
    for step, action in enumerate(actions()):
        got, want = adapted.step(action), reference.step(action)
        got, want = (as_array(got[0]), *got[1:]), (as_array(want[0]), *want[1:])
        if truncated_only_if_not_terminated:
            want = (*want[:3], want[3] & ~want[2], want[4])
        for name, value, expected in zip(
            ("observations", "rewards", "terminated", "truncated"), got[:4], want[:4], strict=True
        ):
            np.testing.assert_array_equal(value, expected, err_msg=f"{name} at step {step}")
        assert got[1].dtype == np.float64
        got_mask, got_final = final_observations(got[4])
        want_mask, want_final = final_observations(want[4])
        np.testing.assert_array_equal(got_mask, want_mask)
        np.testing.assert_array_equal(got_final, want_final)
        np.testing.assert_array_equal(got[4].get("_final_info", got_mask), got_mask)
        ends["terminated"] += int(want[2].sum())
        ends["truncated"] += int(want[3].sum())
    assert ends["terminated"] > 0 and ends["truncated"] > 0, ends  # both kinds of end compared
    adapted.close()
    reference.close()


SB3_KINDS = {
    "DummyVecEnv": lambda: DummyVecEnv([make_cartpole] * N_ENVS),
    "SubprocVecEnv": lambda: SubprocVecEnv([make_cartpole] * N_ENVS),
    "sb3-make_vec_env": lambda: sb3_make_vec_env(make_cartpole, n_envs=N_ENVS),
    "VecMonitor": lambda: VecMonitor(DummyVecEnv([make_cartpole] * N_ENVS)),
}


@pytest.mark.parametrize("make_sb3", SB3_KINDS.values(), ids=SB3_KINDS.keys())
def test_sb3_vec_envs_step_the_same_episodes_as_same_step(make_sb3):
    adapted = make_vec_env(make_sb3())
    assert isinstance(adapted, SB3VecEnvAdapter)
    assert adapted.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert adapted.num_envs == N_ENVS
    assert adapted.single_observation_space == make_cartpole().observation_space
    assert_same_episodes(adapted, same_step_reference(), truncated_only_if_not_terminated=True)


GYMNASIUM_KINDS = {
    "sync-next-step": lambda: gym.vector.SyncVectorEnv([make_cartpole] * N_ENVS),
    "sync-disabled": lambda: gym.vector.SyncVectorEnv(
        [make_cartpole] * N_ENVS, autoreset_mode=AutoresetMode.DISABLED
    ),
    "async-next-step": lambda: gym.vector.AsyncVectorEnv([make_cartpole] * N_ENVS),
}


@pytest.mark.parametrize("make_vector", GYMNASIUM_KINDS.values(), ids=GYMNASIUM_KINDS.keys())
def test_gymnasium_autoreset_modes_step_the_same_episodes_as_same_step(make_vector):
    adapted = make_vec_env(make_vector())
    assert isinstance(adapted, SameStepAutoreset)
    assert adapted.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert_same_episodes(adapted, same_step_reference())


DICT_KINDS = {
    "DummyVecEnv": lambda: DummyVecEnv([make_goal_cartpole] * N_ENVS),
    "sync-next-step": lambda: gym.vector.SyncVectorEnv([make_goal_cartpole] * N_ENVS),
    "async-next-step": lambda: gym.vector.AsyncVectorEnv([make_goal_cartpole] * N_ENVS),
}


@pytest.mark.parametrize("make_vector", DICT_KINDS.values(), ids=DICT_KINDS.keys())
def test_dict_observations_step_the_same_episodes_as_same_step(make_vector):
    adapted = make_vec_env(make_vector())
    assert adapted.single_observation_space == make_goal_cartpole().observation_space
    # HER reads compute_reward from a sub-env in this process (or a probe env made here).
    compute_reward = get_compute_reward(adapted)
    np.testing.assert_array_equal(compute_reward(np.ones((3, 2)), np.zeros((3, 2)), {}), -1.0)
    assert_same_episodes(
        adapted,
        same_step_reference(make_goal_cartpole),
        truncated_only_if_not_terminated=isinstance(adapted, SB3VecEnvAdapter),
    )


def test_her_on_a_vec_env_with_no_env_in_this_process_says_so():
    adapted = make_vec_env(SubprocVecEnv([make_goal_cartpole] * N_ENVS))
    try:
        with pytest.raises(UnsupportedEnvError, match="HER needs compute_reward in this process"):
            get_compute_reward(adapted)
    finally:
        adapted.close()


def test_a_same_step_vector_env_is_used_as_given():
    given = same_step_reference()
    assert make_vec_env(given) is given
    with pytest.raises(UnsupportedEnvError, match="SAME_STEP, NEXT_STEP or DISABLED"):
        SameStepAutoreset(given)
    given.metadata = {}  # a vector env that does not say how it autoresets
    with pytest.raises(UnsupportedEnvError, match=r"\['autoreset_mode'\]=None"):
        make_vec_env(given)
    given.close()


def sb3_wrapped(wrap):
    return wrap(DummyVecEnv([make_cartpole] * N_ENVS))


SB3_WRAPPERS = {
    "VecNormalize": VecNormalize,
    "VecFrameStack": lambda venv: VecFrameStack(venv, n_stack=3),
}


@pytest.mark.parametrize("wrap", SB3_WRAPPERS.values(), ids=SB3_WRAPPERS.keys())
def test_sb3_wrappers_run_as_under_sb3(wrap):
    """The adapter gives what the wrapper gives SB3 (normalised or stacked), renamed."""
    adapted, twin = make_vec_env(sb3_wrapped(wrap), seed=SEED), sb3_wrapped(wrap)
    assert adapted.single_observation_space == twin.observation_space
    for _ in range(2):  # make_vec_env's reset, then ours (VecNormalize counts each)
        twin.seed(SEED)
        expected = twin.reset()
    observations, _ = adapted.reset(seed=SEED)
    np.testing.assert_array_equal(observations, expected)
    n_ends = 0
    for action in actions():
        got_observations, rewards, terminated, truncated, infos = adapted.step(action)
        want_observations, want_rewards, dones, want_infos = twin.step(action)
        np.testing.assert_array_equal(got_observations, want_observations)
        np.testing.assert_array_equal(rewards, want_rewards)
        np.testing.assert_array_equal(terminated | truncated, dones)
        time_limits = [info["TimeLimit.truncated"] for info in want_infos]
        np.testing.assert_array_equal(truncated, dones & time_limits)
        for i in np.flatnonzero(dones):
            np.testing.assert_array_equal(
                infos["final_obs"][i], want_infos[i]["terminal_observation"]
            )
            n_ends += 1
    assert n_ends > 0
    adapted.close()


def test_get_vec_normalize_finds_the_users_vec_normalize():
    normalize = VecNormalize(DummyVecEnv([make_cartpole] * N_ENVS))
    stacked = make_vec_env(VecFrameStack(normalize, n_stack=2))
    assert get_vec_normalize(stacked) is normalize
    assert get_vec_normalize(make_vec_env(DummyVecEnv([make_cartpole]))) is None
    assert get_vec_normalize(make_vec_env("CartPole-v1")) is None
    assert get_vec_normalize(None) is None


def test_sb3_vec_envs_are_recognised_by_their_methods():
    assert is_sb3_vec_env(DummyVecEnv([make_cartpole]))
    assert not is_sb3_vec_env(make_cartpole())
    assert not is_sb3_vec_env(same_step_reference())
    with pytest.raises(ValueError, match="worker_timeout_s"):
        make_vec_env(DummyVecEnv([make_cartpole]), vec_env="async", worker_timeout_s=1.0)
