"""Checks every registered rlrobot env passes; parametrised over `rlrobot.ENV_IDS`."""

import gc
import resource
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlrobot
from rlrobot.sim import Simulation


def reward_mode_variants() -> list[tuple[str, str]]:
    """(env id, reward mode) for every mode each env's task accepts."""
    variants = []
    for env_id in rlrobot.ENV_IDS:
        env = gym.make(env_id)
        variants += [(env_id, mode) for mode in env.unwrapped.task.reward_modes]
        env.close()
    return variants


def rollout(env: gym.Env, seed: int, n_steps: int) -> tuple[list, list[float]]:
    """Observations and rewards of `n_steps` seeded random steps (resetting at episode ends)."""
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [observation], []
    for _ in range(n_steps):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(observation)
        rewards.append(reward)
        if terminated or truncated:
            observations.append(env.reset()[0])
    return observations, rewards


def flatten(observation) -> np.ndarray:
    if isinstance(observation, dict):
        return np.concatenate([observation[key] for key in sorted(observation)])
    return np.asarray(observation)


@pytest.mark.parametrize(("env_id", "reward_mode"), reward_mode_variants())
def test_gymnasium_and_sb3_env_checkers_pass(env_id, reward_mode):
    env = gym.make(
        env_id, reward_mode=reward_mode, render_mode="rgb_array", render_width=32, render_height=32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure, except:
        # unbounded state (velocities) is declared as ±inf, as Gymnasium's MuJoCo envs do.
        warnings.filterwarnings("ignore", message=".*Box observation space m.*infinity")
        # Rendering is checked below on its own; "human" needs a display.
        gymnasium_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True, skip_render_check=True)
    env.close()


def test_reach_joint_control_mode_passes_checkers():
    env = gym.make("rlrobot/Reach-v0", control_mode="joints")
    assert env.action_space.shape == (7,)
    assert env.observation_space["observation"].shape == (13,)
    gymnasium_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_same_seed_same_rollout_different_seed_differs(env_id):
    env = gym.make(env_id)
    observations_a, rewards_a = rollout(env, seed=3, n_steps=200)
    observations_b, rewards_b = rollout(env, seed=3, n_steps=200)
    observations_c, _ = rollout(env, seed=4, n_steps=200)
    env.close()
    assert rewards_a == rewards_b
    for a, b in zip(observations_a, observations_b, strict=True):
        np.testing.assert_array_equal(flatten(a), flatten(b))
    assert not np.array_equal(flatten(observations_a[0]), flatten(observations_c[0]))


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_render_rgb_array_without_display(env_id, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    env = gym.make(env_id, render_mode="rgb_array", render_width=64, render_height=48)
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (48, 64, 3)
    assert frame.dtype == np.uint8
    assert frame.std() > 5  # not a blank image


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_human_render_without_display_is_a_clear_error(env_id, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="display"):
        gym.make(env_id, render_mode="human")


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_env_exposes_its_own_physics_client(env_id):
    first, second = gym.make(env_id), gym.make(env_id)
    assert isinstance(first.unwrapped.sim, Simulation)
    assert first.unwrapped.sim.client_id != second.unwrapped.sim.client_id
    first.close()
    assert not first.unwrapped.sim.is_connected
    assert second.unwrapped.sim.is_connected
    second.close()


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_make_step_close_cycles_leak_no_clients_or_memory(env_id):
    def cycle() -> Simulation:
        env = gym.make(env_id)
        env.reset(seed=0)
        for _ in range(5):
            env.step(env.action_space.sample())
        env.close()
        return env.unwrapped.sim

    for _ in range(20):  # warm-up: allocator pools and caches settle
        cycle()
    gc.collect()
    # PyBullet hands out the lowest free client id: a leak would push new ids upwards. Compared
    # with the id free before the cycles, as other tests in this process may hold clients.
    lowest_free_before = _lowest_free_client_id()
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sims = [cycle() for _ in range(200)]
    gc.collect()
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kb) / 1024
    assert not any(sim.is_connected for sim in sims)
    assert _lowest_free_client_id() <= lowest_free_before
    assert rss_growth_mb < 25


def _lowest_free_client_id() -> int:
    probe = Simulation()
    probe.close()
    return probe.client_id


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_bad_actions_raise_or_clip(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    space = env.action_space
    if isinstance(space, gym.spaces.Box):
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros(space.shape[0] + 1))
        with pytest.raises(ValueError, match="NaN"):
            env.step(np.full(space.shape, np.nan))
        env.step(np.full(space.shape, 100.0))  # clipped, not an error
    else:
        with pytest.raises(ValueError, match="not in"):
            env.step(space.n)
    env.close()


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_reward_terms_are_in_info_and_sum_to_reward(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    terms = {key: value for key, value in info.items() if key.startswith("reward_")}
    assert terms
    assert sum(terms.values()) == pytest.approx(reward)
    env.close()


def test_unknown_keyword_and_bad_values_are_rejected():
    with pytest.raises(TypeError, match="reward_moed"):
        gym.make("rlrobot/Reach-v0", reward_moed="sparse")
    with pytest.raises(ValueError, match="reward_mode"):
        gym.make("rlrobot/Reach-v0", reward_mode="shaped")
    with pytest.raises(ValueError, match="control_mode"):
        gym.make("rlrobot/Reach-v0", control_mode="torque")
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("rlrobot/CartPole-v0", render_mode="ascii")
