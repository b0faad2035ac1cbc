"""SB3's off-policy models hold an empty replay buffer as soon as they have an env.

Where SB3 shows the behaviour, the same snippet runs with SB3's class and ours: a script may
read ``model.replay_buffer.size()`` or call ``save_replay_buffer`` before any ``learn``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3

from rlrobot.agents import SAC, TD3
from rlrobot.agents.her import HerReplayBuffer
from rlrobot.errors import ConfigError

OURS = {"SAC": SAC, "TD3": TD3}
IMPLEMENTATIONS = ["sb3", "rlrobot"]


def _class(implementation: str, name: str):
    return getattr(sb3, name) if implementation == "sb3" else OURS[name]


def _make(implementation: str, name: str, env, **kwargs):
    # SB3 takes the policy first; ours builds the MlpPolicy equivalent from the env alone.
    cls = _class(implementation, name)
    if implementation == "sb3":
        return cls("MlpPolicy", env, seed=0, device="cpu", **kwargs)
    return cls(env, seed=0, device="cpu", **kwargs)


@pytest.mark.parametrize("name", ["SAC", "TD3"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_new_model_has_an_empty_buffer_it_can_save(implementation, name, tmp_path):
    model = _make(implementation, name, "Pendulum-v1", buffer_size=200)
    assert model.replay_buffer is not None and model.replay_buffer.size() == 0
    model.save_replay_buffer(tmp_path / "buffer")
    assert [path.stem for path in tmp_path.iterdir()] == ["buffer"]
    model.learn(30)
    assert model.replay_buffer.size() == 30
    model.env.close()


@pytest.mark.parametrize("name", ["SAC", "TD3"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_model_loaded_with_an_env_has_an_empty_buffer(implementation, name, tmp_path):
    model = _make(implementation, name, "Pendulum-v1", buffer_size=200)
    model.learn(30)
    model.save(tmp_path / "model")  # without the buffer, SB3's default
    model.env.close()
    loaded = _class(implementation, name).load(tmp_path / "model", env=gym.make("Pendulum-v1"))
    assert loaded.replay_buffer.size() == 0
    loaded.save_replay_buffer(tmp_path / "buffer")
    loaded.learn(20, reset_num_timesteps=False)
    assert loaded.replay_buffer.size() == 20
    loaded.env.close()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_her_buffer_exists_before_learn(implementation):
    extra = {"policy": "MultiInputPolicy"} if implementation == "sb3" else {}
    cls = _class(implementation, "SAC")
    model = cls(
        env=gym.make("rlrobot/Reach-v0", reward_mode="sparse"),
        buffer_size=200,
        replay_buffer_class=sb3.HerReplayBuffer,
        device="cpu",
        **extra,
    )
    assert type(model.replay_buffer).__name__ == "HerReplayBuffer"
    assert model.replay_buffer.size() == 0
    model.env.close()


# -- ours only: no env, no buffer (SB3 builds one regardless) ------------------------------------
def test_without_an_env_there_is_no_buffer_and_the_error_says_to_give_one(tmp_path):
    SAC("Pendulum-v1", buffer_size=200, seed=0).save(tmp_path / "model")
    predict_only = SAC.load(tmp_path / "model")
    assert predict_only.replay_buffer is None
    with pytest.raises(RuntimeError, match=r"has no env, so no replay buffer; give it one"):
        predict_only.save_replay_buffer(tmp_path / "buffer")
    with pytest.raises(RuntimeError, match=r"set_env\(env\) or SAC\.load\(path, env=env\)"):
        predict_only.load_replay_buffer(tmp_path / "buffer")
    predict_only.set_env(gym.make("Pendulum-v1"))
    assert predict_only.replay_buffer.size() == 0
    assert predict_only.save_replay_buffer(tmp_path / "buffer").is_file()
    predict_only.env.close()


def test_set_env_keeps_the_buffer_and_gives_her_the_new_envs_compute_reward():
    agent = SAC(gym.make("rlrobot/Reach-v0"), replay_buffer="her", buffer_size=200, seed=0)
    agent.learn(10)
    buffer = agent.replay_buffer
    goal, far = np.zeros((1, 3)), np.ones((1, 3))
    assert buffer.compute_reward(goal, far, {}).tolist() == [pytest.approx(-(3**0.5))]  # dense
    agent.env.close()
    agent.set_env(gym.make("rlrobot/Reach-v0", reward_mode="sparse"))
    assert agent.replay_buffer is buffer and buffer.size() == 10
    assert isinstance(buffer, HerReplayBuffer)
    assert buffer.compute_reward(goal, far, {}).tolist() == [-1.0]  # sparse: -1 until reached
    agent.env.close()


def test_a_buffer_too_big_for_the_machine_is_refused_at_construction():
    with pytest.raises(ConfigError, match=r"^buffer_size=10{14} needs .* for the replay buffer"):
        SAC("Pendulum-v1", buffer_size=10**14)


def test_a_loaded_agent_samples_as_one_built_with_its_saved_seed(tmp_path):
    agent = SAC("Pendulum-v1", buffer_size=200, seed=7)
    agent.save(tmp_path / "model")
    agent.env.close()
    loaded = SAC.load(tmp_path / "model", env=gym.make("Pendulum-v1"))
    assert loaded.replay_buffer.rng.integers(10**9) == np.random.default_rng(7).integers(10**9)
    loaded.env.close()


def test_a_saved_buffer_is_restored_and_checked_on_load(tmp_path):
    agent = SAC("Pendulum-v1", buffer_size=200, seed=0)
    agent.learn(40)
    agent.save(tmp_path / "model", include_replay_buffer=True)
    agent.save_replay_buffer(tmp_path / "buffer")
    loaded = SAC.load(tmp_path / "model", env=gym.make("Pendulum-v1"))
    assert loaded.replay_buffer.size() == 40
    for name, array in agent.replay_buffer.state_dict().items():
        np.testing.assert_array_equal(loaded.replay_buffer.state_dict()[name], array)
    other = SAC("Pendulum-v1", buffer_size=100, seed=0)  # another layout: refused
    with pytest.raises(ValueError, match=r"saved replay buffer has \(rows, n_envs, n_steps\)"):
        other.load_replay_buffer(tmp_path / "buffer")
    for model in (agent, loaded, other):
        model.env.close()
