"""``get_env()`` is a VecEnv in both libraries: SB3's "Getting Started" loop runs on ours.

SB3's first documented example drives the model's own env with SB3's VecEnv API::

    vec_env = model.get_env()
    obs = vec_env.reset()
    action, _state = model.predict(obs, deterministic=True)
    obs, reward, done, info = vec_env.step(action)

Each test runs the same code with SB3's classes and with ours.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlrobot import agents

LIBRARIES = [pytest.param(stable_baselines3, id="sb3"), pytest.param(agents, id="rlrobot")]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def run_episodes(vec_env: VecEnv, model, n_steps: int) -> list[tuple[dict, bool]]:
    """SB3's loop: reset once, then predict and step; return each step's (info, done)."""
    obs = vec_env.reset()
    steps = []
    for _ in range(n_steps):
        action, _state = model.predict(obs, deterministic=True)
        obs, reward, done, info = vec_env.step(action)
        assert obs.shape == (vec_env.num_envs, 4) and reward.shape == (vec_env.num_envs,)
        assert done.dtype == bool and isinstance(info, list) and len(info) == vec_env.num_envs
        steps.append((info[0], bool(done[0])))
    return steps


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_getting_started_loop_runs_on_get_env(library):
    model = library.A2C("MlpPolicy", "CartPole-v1", n_steps=8, seed=0)
    model.learn(total_timesteps=64)
    vec_env = model.get_env()
    assert isinstance(vec_env, VecEnv) and vec_env.num_envs == 1
    assert vec_env.observation_space.shape == (4,) and vec_env.action_space.n == 2
    steps = run_episodes(vec_env, model, 300)
    ends = [info for info, done in steps if done]
    assert ends, "an untrained CartPole policy falls within 300 steps"
    for info in ends:  # the last observation of the episode, as DummyVecEnv reports it
        assert info["terminal_observation"].shape == (4,)
        assert info["TimeLimit.truncated"] in (True, False)
    assert all("terminal_observation" not in info for info, done in steps if not done)
    for info in ends:  # Monitor's record of the episode, as SB3's own envs carry it
        assert info["episode"]["r"] == info["episode"]["l"] >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns about an env it cannot see a Monitor in
        mean_reward, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=2)
    assert mean_reward >= 8  # CartPole pays 1 per step; an episode lasts at least 8 steps


@pytest.mark.parametrize("library", LIBRARIES)
def test_seeded_resets_of_get_env_repeat(library):
    model = library.PPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, seed=0)
    vec_env = model.get_env()
    vec_env.seed(7)
    first = vec_env.reset()
    vec_env.seed(7)
    np.testing.assert_array_equal(vec_env.reset(), first)
    vec_env.seed(8)
    assert not np.array_equal(vec_env.reset(), first)


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_time_limit_is_reported_as_sb3_does(library):
    """``TimeLimit.truncated`` is True only where the time limit, not a fall, ended it."""

    def make_env() -> gym.Env:
        return gym.make("CartPole-v1", max_episode_steps=5)

    # SB3 wraps a factory itself in DummyVecEnv; ours steps it in its own vector env.
    env = DummyVecEnv([make_env]) if library is stable_baselines3 else make_env
    model = library.PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0)
    steps = run_episodes(model.get_env(), model, 12)
    ended = [info for info, done in steps if done]
    assert len(ended) == 2 and all(info["TimeLimit.truncated"] for info in ended)
    assert [done for _, done in steps] == [False] * 4 + [True] + [False] * 4 + [True] + [False] * 2


def test_get_env_is_the_users_vec_env_when_one_was_given():
    env = DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1"))])
    model = agents.PPO("MlpPolicy", env, n_steps=16, batch_size=16)
    assert model.get_env() is env
    assert model.get_env().env_is_wrapped(Monitor) == [True]


def test_get_env_reaches_every_sub_env_in_worker_processes():
    """With envs in subprocesses, ``get_attr`` and ``env_method`` still reach each one."""
    model = agents.PPO(
        "MlpPolicy", "CartPole-v1", n_envs=2, vec_env="async", n_steps=8, batch_size=16
    )
    try:
        vec_env = model.get_env()
        assert vec_env is model.get_env()  # made once per env
        assert [spec.id for spec in vec_env.get_attr("spec")] == ["CartPole-v1"] * 2
        assert [spec.id for spec in vec_env.get_attr("spec", indices=[1])] == ["CartPole-v1"]
        assert vec_env.env_method("get_wrapper_attr", "spec", indices=0)[0].id == "CartPole-v1"
        assert vec_env.env_is_wrapped(Monitor) == [False, False]
        obs = vec_env.reset()
        _, rewards, dones, _ = vec_env.step(model.predict(obs)[0])
        assert rewards.tolist() == [1.0, 1.0] and dones.tolist() == [False, False]
    finally:
        model.env.close()
