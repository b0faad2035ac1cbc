"""``ep_info_buffer`` (``rollout/ep_rew_mean``) from the env's episode recorder, as in SB3.

SB3 logs the returns that ``Monitor``/``VecMonitor`` put in ``info["episode"]``, so a
``VecNormalize(norm_reward=True)`` outside them does not change ``ep_rew_mean``. Ours reads
them too (and Gymnasium's ``RecordEpisodeStatistics``, per env or vector), falling back to its
own sums of the rewards it sees where no recorder reports. Each test runs one rollout before
any update, so the same seed gives the same actions with and without the reward scaling.
"""

from __future__ import annotations

import gymnasium as gym
import pytest
import stable_baselines3 as sb3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from rlrobot import agents

LIBRARIES = [sb3, agents]
N_ENVS, N_STEPS = 2, 64


def episodes(model) -> list[tuple[float, int]]:
    return [(round(float(info["r"]), 4), int(info["l"])) for info in model.ep_info_buffer]


def run_rollout(library, env) -> list[tuple[float, int]]:
    model = library.PPO(
        "MlpPolicy", env, n_steps=N_STEPS, batch_size=N_STEPS, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(N_STEPS * N_ENVS)
    model.get_env().close()
    return episodes(model)


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_ep_info_buffer_ignores_vec_normalize_reward_scaling(library):
    plain = run_rollout(library, make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0))
    scaled_env = VecNormalize(
        make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0), norm_obs=False, norm_reward=True
    )
    scaled = run_rollout(library, scaled_env)
    assert len(plain) >= 4
    assert scaled == plain
    assert all(ret == length for ret, length in plain)  # CartPole pays 1 per step


def scaled_cartpole(record_inside: bool) -> gym.Env:
    env = gym.make("CartPole-v1")
    if record_inside:
        env = gym.wrappers.RecordEpisodeStatistics(env)
    return gym.wrappers.TransformReward(env, lambda reward: 0.01 * reward)


def test_gymnasium_record_episode_statistics_per_env():
    recorded = run_rollout(agents, lambda: scaled_cartpole(record_inside=True))
    unrecorded = run_rollout(agents, lambda: scaled_cartpole(record_inside=False))
    assert all(ret == length for ret, length in recorded)
    # Without a recorder our own sums are what is left: the rewards as the agent sees them.
    assert unrecorded == [(round(0.01 * length, 4), length) for _, length in recorded]


def test_gymnasium_vector_record_episode_statistics():
    def vector_env(scale: float) -> gym.vector.VectorEnv:
        env = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * N_ENVS)
        env = gym.wrappers.vector.RecordEpisodeStatistics(env)
        return gym.wrappers.vector.TransformReward(env, lambda rewards: scale * rewards)

    plain, scaled = run_rollout(agents, vector_env(1.0)), run_rollout(agents, vector_env(0.01))
    assert len(plain) >= 4
    assert scaled == plain


def test_without_a_recorder_sb3_logs_nothing_and_ours_sums_what_it_sees():
    def unmonitored() -> VecNormalize:
        venv = DummyVecEnv([lambda: gym.make("CartPole-v1")] * N_ENVS)
        return VecNormalize(venv, norm_obs=False, norm_reward=True)

    assert run_rollout(sb3, unmonitored()) == []
    ours = run_rollout(agents, unmonitored())
    assert ours and all(ret != length for ret, length in ours)
