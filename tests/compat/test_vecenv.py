"""SB3's vector envs as ``env``: SB3's documented snippets run with SB3's PPO/SAC and with ours.

``make_vec_env`` from SB3, ``VecNormalize(DummyVecEnv(...))``, ``VecFrameStack`` and
Gymnasium's ``SyncVectorEnv`` with its default ``NEXT_STEP`` autoreset are given to both
libraries; the snippet (learn, then ``predict`` on what the vector env returns, then ``step``)
must run in both. Our agents must train on an adapted env exactly as on our own vector env.
"""

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecMonitor, VecNormalize

from rlrobot.agents import PPO, SAC
from rlrobot.common.evaluation import evaluate_policy

SMALL = {
    PPO: {"n_steps": 16, "batch_size": 32},
    SAC: {"learning_starts": 50, "batch_size": 32},
}
ENV_ID = {PPO: "CartPole-v1", SAC: "Pendulum-v1"}
BUDGET = 64


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def build(library, cls, env):
    """``cls`` of ``library`` ("ours" or "sb3") on ``env``, as each library spells it."""
    if library == "sb3":
        sb3_class = getattr(stable_baselines3, cls.__name__)
        return sb3_class("MlpPolicy", env, seed=0, **SMALL[cls])
    return cls(env, seed=0, **SMALL[cls])


def sb3_make_vec_env(cls):
    return make_vec_env(ENV_ID[cls], n_envs=2, seed=0)


def sb3_vec_normalize(cls):
    return VecNormalize(DummyVecEnv([lambda: gym.make(ENV_ID[cls])] * 2))


def gymnasium_next_step(cls):
    return gym.vector.SyncVectorEnv([lambda: gym.make(ENV_ID[cls])] * 2)


# (library, env kind): SB3 takes no Gymnasium vector env, so that one runs with ours only.
SNIPPET_RUNS = [
    pytest.param(library, make_env, id=f"{make_env.__name__}-{library}")
    for make_env in (sb3_make_vec_env, sb3_vec_normalize, gymnasium_next_step)
    for library in ("sb3", "ours")
    if not (library == "sb3" and make_env is gymnasium_next_step)
]


@pytest.mark.parametrize("cls", [PPO, SAC], ids=["ppo", "sac"])
@pytest.mark.parametrize(("library", "make_env"), SNIPPET_RUNS)
def test_the_sb3_snippet_runs_on_each_vector_env(library, cls, make_env):
    vec_env = make_env(cls)
    model = build(library, cls, vec_env)
    model.learn(BUDGET)
    assert model.num_timesteps >= BUDGET
    assert model.n_envs == 2
    if isinstance(vec_env, gym.vector.VectorEnv):
        observations, _ = vec_env.reset(seed=0)
    else:
        observations = vec_env.reset()
    actions, _ = model.predict(observations, deterministic=True)
    assert actions.shape == (2, *model.action_space.shape)
    assert all(model.action_space.contains(action) for action in actions)
    vec_env.step(actions)
    vec_env.close()


@pytest.mark.parametrize("library", ["sb3", "ours"])
def test_vec_normalize_is_used_as_is_and_returned_by_get_vec_normalize_env(library):
    vec_env = sb3_vec_normalize(PPO)
    model = build(library, PPO, vec_env)
    count = vec_env.obs_rms.count
    model.learn(BUDGET)
    assert model.get_vec_normalize_env() is vec_env
    assert vec_env.obs_rms.count > count + BUDGET - 1  # its statistics follow the training
    observations = vec_env.reset()
    assert np.abs(observations).max() <= vec_env.clip_obs  # what the agent sees: normalised
    model.predict(observations)
    vec_env.close()


def test_frame_stacked_observations_reach_our_agent_as_they_reach_sb3():
    def stacked():
        return VecFrameStack(sb3_make_vec_env(PPO), n_stack=4)

    ours, theirs = build("ours", PPO, stacked()), build("sb3", PPO, stacked())
    assert ours.observation_space == theirs.observation_space
    assert ours.observation_space.shape == (16,)
    ours.learn(BUDGET)
    ours.predict(np.zeros((2, 16), dtype=np.float32))


# Short episodes: time-limit truncations and terminations both happen while training.
TIME_LIMIT = 30


def adapted_dummy_vec_env(env_id):
    return DummyVecEnv([lambda: gym.make(env_id, max_episode_steps=TIME_LIMIT)] * 2)


def adapted_vec_monitor(env_id):
    return VecMonitor(DummyVecEnv([lambda: gym.make(env_id, max_episode_steps=TIME_LIMIT)] * 2))


def adapted_gymnasium_next_step(env_id):
    return gym.vector.SyncVectorEnv([lambda: gym.make(env_id, max_episode_steps=TIME_LIMIT)] * 2)


@pytest.mark.parametrize("cls", [PPO, SAC], ids=["ppo", "sac"])
@pytest.mark.parametrize(
    "make_adapted", [adapted_dummy_vec_env, adapted_vec_monitor, adapted_gymnasium_next_step]
)
def test_our_agents_train_on_an_adapted_env_exactly_as_on_their_own(cls, make_adapted):
    env_id = ENV_ID[cls]
    budget = 256 if cls is PPO else 160
    own = cls(
        env_id, n_envs=2, env_kwargs={"max_episode_steps": TIME_LIMIT}, seed=0, **SMALL[cls]
    ).learn(budget)
    adapted = cls(make_adapted(env_id), seed=0, **SMALL[cls]).learn(budget)
    assert adapted.episode_tracker.n_episodes == own.episode_tracker.n_episodes > 0
    for name, module in own.modules().items():
        for own_parameter, parameter in zip(
            module.parameters(), adapted.modules()[name].parameters(), strict=True
        ):
            torch.testing.assert_close(parameter, own_parameter, rtol=0, atol=0)


def test_our_sac_learns_on_sb3s_dummy_vec_env():
    env = DummyVecEnv([lambda: gym.make("rlrobot/CartPoleContinuous-v0")])
    agent = SAC(
        env, seed=0, net_arch=(64, 64), batch_size=64, learning_starts=100, learning_rate=1e-3
    )
    # The same run as tests/agents/test_off_policy.py's on our own vector env (3000 steps: the
    # lowest of seeds 0–9 scores 168 there; the untrained agent scores 36).
    agent.learn(3000)
    evaluation = evaluate_policy(agent, gym.make("rlrobot/CartPoleContinuous-v0"), 3, seed=1000)
    assert evaluation.summary()["mean_reward"] >= 100


def test_an_agent_saved_while_training_on_an_sb3_vec_env_loads_into_one(tmp_path):
    model = PPO(sb3_make_vec_env(PPO), seed=0, **SMALL[PPO]).learn(BUDGET)
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", env=sb3_make_vec_env(PPO))
    observations = np.linspace(-0.2, 0.2, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0],
        model.predict(observations, deterministic=True)[0],
    )
    loaded.learn(BUDGET, reset_num_timesteps=False)
    assert loaded.num_timesteps == 2 * BUDGET
