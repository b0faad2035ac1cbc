"""Hostile inputs to agents, buffers, predict and vector envs (probe findings U1-U6, S4, S5, H1,
H2): each is refused with one message naming it, or, for NumPy seeds, accepted."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest

from rlrobot.agents import ALGORITHMS
from rlrobot.common import memory
from rlrobot.common.env_util import make_env
from rlrobot.common.replay_buffer import ReplayBuffer
from rlrobot.common.rollout_buffer import RolloutBuffer
from rlrobot.errors import ConfigError, EnvMakeError
from rlrobot.vec import make_vec_env
from rlrobot.vec.make import MAX_ENVS
from tests.reliability.small_runs import ALGORITHM_ENV, make_small_agent

BOX = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)


def test_memory_is_counted_exactly_and_formatted_in_binary_units():
    assert memory.array_bytes((10**12, 1, 3), np.float32) == 12 * 10**12
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(3 * 2**30 // 2) == "1.5 GiB"
    assert memory.check_memory("n", "test", [((1024,), np.float64)]) == 8192


def test_the_machine_memory_falls_back_where_the_os_does_not_say(monkeypatch):
    def no_sysconf(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(memory.os, "sysconf", no_sysconf)
    assert memory.machine_memory_bytes() == memory.FALLBACK_MEMORY_BYTES


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ReplayBuffer(10**12, BOX, BOX),  # 42 bytes a transition
            r"^buffer_size=1000000000000 needs 38\.2 TiB for the replay buffer; this machine "
            r"has \d+\.\d [GMT]iB$",
        ),
        (
            lambda: RolloutBuffer(10**30, 2, BOX, BOX),
            r"^n_steps=10{30} × n_envs=2 needs .* EiB for the rollout buffer; this machine has",
        ),
    ],
)
def test_buffers_refuse_what_the_machine_cannot_hold_before_allocating(make, message):
    started = time.monotonic()
    with pytest.raises(ConfigError, match=message):
        make()
    assert time.monotonic() - started < 1.0  # refused, not tried


@pytest.mark.parametrize(
    ("algo", "arguments", "message"),
    [
        ("ppo", {"n_steps": 10**30}, r"n_steps=10{30} × n_envs=1 needs .* for the rollout"),
        ("a2c", {"n_steps": 10**15}, r"n_steps=10{15} × n_envs=1 needs .* for the rollout"),
        ("sac", {"buffer_size": 10**12}, r"buffer_size=10{12} needs .* for the replay buffer"),
        ("td3", {"buffer_size": 10**12}, r"buffer_size=10{12} needs .* for the replay buffer"),
        ("sac", {"batch_size": 10**9}, r"batch_size=10{9} needs .* minibatch and its activ"),
        ("ppo", {"reward_redistribution": "rrd", "rrd_buffer_size": 10**13}, r"rrd_buffer_size="),
    ],
)
def test_agents_refuse_oversized_buffers_when_made(algo, arguments, message):
    with pytest.raises(ConfigError, match=message):
        make_small_agent(algo, **arguments)


def test_a_batch_larger_than_a_small_buffer_is_kept_as_in_sb3():
    agent = make_small_agent("sac", buffer_size=64, batch_size=128)
    assert agent.config.batch_size == 128


@pytest.mark.parametrize("n_envs", [0, MAX_ENVS + 1, 10**6])
def test_make_vec_env_caps_n_envs_before_making_any(n_envs):
    with pytest.raises(ConfigError, match=r"n_envs must be an integer in \[1, 1024\] \(an env "):
        make_vec_env(ALGORITHM_ENV, n_envs)


def test_checkpoints_and_make_vec_env_share_the_env_cap():
    from rlrobot.agents import checkpointing

    assert checkpointing.MAX_ENVS is MAX_ENVS == 1024


@pytest.mark.parametrize("seed", [np.int64(3), np.int32(3), np.uint64(3)])
def test_numpy_integer_seeds_are_taken_as_ints(seed, tmp_path):
    agent = make_small_agent("ppo", seed=seed)
    assert type(agent.seed) is int and agent.seed == 3
    agent.save(tmp_path / "agent")
    loaded = ALGORITHMS["ppo"].load(tmp_path / "agent", env=ALGORITHM_ENV, seed=seed)
    assert type(loaded.seed) is int and loaded.seed == 3
    vector = make_vec_env(ALGORITHM_ENV, 2, seed=seed)
    vector.close()


@pytest.mark.parametrize("seed", [np.float64(3.0), 2.5])
def test_float_seeds_stay_refused(seed):
    with pytest.raises(ConfigError, match="seed must be an integer or None"):
        make_small_agent("ppo", seed=seed)


@pytest.fixture(scope="module")
def sac():
    return make_small_agent("sac")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tb_log_name": 5}, "tb_log_name must be a non-empty string or None, got 5"),
        ({"tb_log_name": ""}, "tb_log_name must be a non-empty string or None, got ''"),
        ({"reset_num_timesteps": "no"}, "reset_num_timesteps must be true or false, got 'no'"),
        ({"progress_bar": "x"}, "progress_bar must be true or false, got 'x'"),
        ({"progress_bar": 1}, "progress_bar must be true or false, got 1"),
    ],
)
def test_learn_keywords_are_type_checked(sac, arguments, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        sac.learn(8, **arguments)
    assert sac.num_timesteps == 0


EXPECTED = r"expected shape \(4,\) or \(n, 4\) for Box"


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        (np.full(4, np.nan), r"observation holds NaN or inf at index \(0,\); a policy must not"),
        (np.array([[0, 0, 0, 0], [0, np.inf, 0, 0]]), r"NaN or inf at index \(1, 1\)"),
        (
            np.array([1, 2, 3, 4j]),
            rf"dtype complex128 \(ndarray\); expected real numbers of {EXPECTED[9:]}",
        ),
        (None, rf"observation is None; {EXPECTED}"),
        (
            {"observation": np.zeros(4)},
            rf"^this agent takes a Box observation, got a dict with keys \['observation'\]; "
            rf"{EXPECTED}",
        ),
        ("obs", rf"observation has dtype <U3 \(str\); expected real numbers of {EXPECTED[9:]}"),
        (np.array(["a"] * 4), r"observation has dtype <U1"),
        (np.array([object()] * 4, dtype=object), r"observation has dtype object"),
        ([[1, 2], [3]], rf"observation is no array \(.*\); {EXPECTED}"),
        (np.zeros((2, 3)), rf"observation has shape \(2, 3\), {EXPECTED}"),
        (np.zeros((2, 2, 4)), rf"observation has shape \(2, 2, 4\), {EXPECTED}"),
        (np.zeros(()), rf"observation has shape \(\), {EXPECTED}"),
        (np.zeros((0, 4)), r"observation is an empty batch \(0, 4\); give at least one"),
    ],
)
def test_predict_refuses_hostile_observations_naming_them(sac, observation, message):
    with pytest.raises(ValueError, match=message):
        sac.predict(observation)


def test_predict_takes_one_observation_a_list_or_a_batch(sac):
    assert sac.predict(np.zeros(4, np.float32))[0].shape == (1,)
    assert sac.predict([0, 0, 0, 0])[0].shape == (1,)  # ints: real numbers
    assert sac.predict(np.zeros((5, 4)))[0].shape == (5, 1)


@pytest.mark.parametrize("deterministic", ["yes", 1, None])
def test_predict_checks_deterministic(sac, deterministic):
    with pytest.raises(ConfigError, match="deterministic must be true or false"):
        sac.predict(np.zeros(4), deterministic=deterministic)


def test_predict_on_a_dict_space_names_missing_keys_and_mismatched_batches():
    space = gym.spaces.Dict({"a": BOX, "b": gym.spaces.Box(-1, 1, (2,), np.float32)})
    agent = ALGORITHMS["ppo"](None, observation_space=space, action_space=BOX, device="cpu")
    assert agent.predict({"a": np.zeros(4), "b": np.zeros(2)})[0].shape == (4,)
    with pytest.raises(ValueError, match=r"observation must be a dict with keys \['a', 'b'\]"):
        agent.predict(np.zeros(4))
    with pytest.raises(ValueError, match=r"observation is missing key 'b' \(has \['a'\]\)"):
        agent.predict({"a": np.zeros(4)})
    with pytest.raises(ValueError, match=r"different batch sizes: \{'a': 2, 'b': 3\}"):
        agent.predict({"a": np.zeros((2, 4)), "b": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"observation\['b'\] holds NaN"):
        agent.predict({"a": np.zeros(4), "b": np.array([0, np.nan])})


@pytest.mark.parametrize("vec_env", ["sync", "async", "shm"])
def test_vector_envs_name_an_action_batch_of_the_wrong_length(vec_env):
    vector = make_vec_env(ALGORITHM_ENV, 2, vec_env=vec_env)
    try:
        for rows in (3, 1):
            with pytest.raises(ValueError, match=rf"^actions have {rows} rows \(shape \({rows}, 1"):
                vector.step(np.zeros((rows, 1), np.float32))
        vector.step(np.zeros((2, 1), np.float32))  # the env still steps afterwards
    finally:
        vector.close()


def _alias_bomb(levels: int) -> list:
    """The value a YAML "billion laughs" loads to: ``levels`` lists of 9 aliases each."""
    value: list = ["lol"] * 9
    for _ in range(levels - 1):
        value = [value] * 9
    return value


@pytest.mark.parametrize(
    "env_kwargs",
    [
        {"force_magnitude": _alias_bomb(9)},
        {"randomization": {"mass_scale": _alias_bomb(9)}},
        {"x_threshold": "x" * 10**6},
    ],
)
def test_make_env_bounds_the_values_it_shows(env_kwargs):
    started = time.monotonic()
    with pytest.raises(EnvMakeError, match=r"^cannot make rlrobot/CartPole-v0 with \{") as caught:
        make_env("rlrobot/CartPole-v0", env_kwargs)
    assert time.monotonic() - started < 5.0  # 97 s before the repr was bounded
    assert len(str(caught.value)) < 700
