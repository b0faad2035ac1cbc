"""Faults: physics pushed to extremes, a diverged simulation, env worker processes that die.

Extreme actions and domain randomisation must never hand a NaN to a learner; a simulation that
does diverge ends its episode with ``terminated=True`` and ``info["sim_error"]`` and training
goes on; a dead ``AsyncVectorEnv`` worker is an ``EnvWorkerError`` naming the env and the
step, raised at once rather than a hang.
"""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import rlrobot
from rlrobot.agents import ALGORITHMS
from rlrobot.envs.stress import EXTREME_RANDOMIZATION, extreme_actions
from rlrobot.vec import EnvWorkerError, ReportingAsyncVectorEnv
from tests.reliability.small_runs import ALGORITHM_ENV, ROBOT_BODIES, make_small_agent

FUZZ_STEPS = 300
ABSURD_SPEED = 1e300  # m/s and rad/s: PyBullet's state turns to inf/NaN within one step


def _is_finite(observation) -> bool:
    values = observation.values() if isinstance(observation, dict) else [observation]
    return all(np.isfinite(value).all() for value in values)


def test_every_env_has_a_robot_body_to_teleport():
    assert sorted(ROBOT_BODIES) == sorted(rlrobot.ENV_IDS)


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_extreme_actions_and_randomisation_never_give_nan(env_id):
    env = gym.make(env_id, randomization=EXTREME_RANDOMIZATION)
    actions = extreme_actions(env.action_space, np.random.default_rng(0))
    observation, _ = env.reset(seed=0)
    non_finite, episodes, sim_errors = 0, 1, 0
    for _ in range(FUZZ_STEPS):
        observation, reward, terminated, truncated, info = env.step(next(actions))
        non_finite += not (_is_finite(observation) and np.isfinite(reward))
        if "sim_error" in info:
            sim_errors += 1
            assert terminated  # a divergence always ends the episode
        if terminated or truncated:
            observation, _ = env.reset()
            non_finite += not _is_finite(observation)
            episodes += 1
    env.close()
    assert non_finite == 0
    assert episodes >= 1 and sim_errors <= episodes


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_forced_divergence_ends_the_episode_with_sim_error(env_id):
    env = gym.make(env_id)
    first_observation, _ = env.reset(seed=5)
    env.unwrapped.sim.set_base_velocity(
        ROBOT_BODIES[env_id], (ABSURD_SPEED,) * 3, (ABSURD_SPEED,) * 3
    )
    observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert terminated and not truncated
    assert info["sim_error"] == "non-finite physics state"
    assert reward == 0.0 and _is_finite(observation)
    # The next episode starts from a clean state: the same one the seed gave before.
    again, _ = env.reset(seed=5)
    env.close()
    for expected, actual in zip(
        *(o.values() if isinstance(o, dict) else [o] for o in (first_observation, again)),
        strict=True,
    ):
        np.testing.assert_array_equal(expected, actual)


class DivergeEvery(gym.Wrapper):
    """Teleports the robot with an absurd velocity before every ``period``-th step."""

    def __init__(self, env: gym.Env, period: int) -> None:
        super().__init__(env)
        self.period, self.steps, self.sim_errors = period, 0, 0

    def step(self, action):
        """Step, after a forced divergence every ``period`` steps."""
        self.steps += 1
        if self.steps % self.period == 0:
            speed = (ABSURD_SPEED,) * 3
            self.env.unwrapped.sim.set_base_velocity(ROBOT_BODIES[ALGORITHM_ENV], speed, speed)
        result = super().step(action)
        self.sim_errors += "sim_error" in result[4]
        return result


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_learning_continues_through_diverged_episodes(algo):
    wrappers = []

    def factory() -> gym.Env:
        wrappers.append(DivergeEvery(gym.make(ALGORITHM_ENV), period=23))
        return wrappers[-1]

    agent = make_small_agent(algo, env=factory, seed=0)
    agent.learn(256)
    agent.env.close()
    assert agent.num_timesteps >= 256
    assert sum(wrapper.sim_errors for wrapper in wrappers) >= 256 // 23 - 1
    for module in agent.modules().values():
        for name, parameter in module.state_dict().items():
            assert torch.isfinite(parameter).all(), name


class DieAt(gym.Wrapper):
    """Ends its own process, raises or hangs at step ``at``: a crashing physics worker."""

    def __init__(self, env: gym.Env, at: int, how: str) -> None:
        super().__init__(env)
        self.at, self.how, self.steps = at, how, 0

    def step(self, action):
        """Step, or die on step ``at``."""
        self.steps += 1
        if self.steps == self.at:
            if self.how == "SIGKILL":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.how == "exit":
                os._exit(3)
            elif self.how == "hang":
                time.sleep(3600)
            else:
                raise RuntimeError("physics worker failed")
        return super().step(action)


def _factories(dying_index: int, how: str, n_envs: int = 3):
    def factory(index: int):
        def make() -> gym.Env:
            env = gym.make("rlrobot/CartPole-v0", max_episode_steps=10_000)
            return DieAt(env, at=7, how=how) if index == dying_index else env

        return make

    return [factory(index) for index in range(n_envs)]


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (
            "SIGKILL",
            r"env 1 of 3 \(worker pid \d+\) died \(killed by SIGKILL\) during vector step 7",
        ),
        ("exit", r"env 1 of 3 \(worker pid \d+\) died \(exit code 3\) during vector step 7"),
        ("raise", "env 1 of 3 raised RuntimeError: physics worker failed during vector step 7"),
    ],
)
def test_dead_async_worker_names_the_env_and_the_step(how, message):
    vector = ReportingAsyncVectorEnv(_factories(1, how), autoreset_mode=AutoresetMode.SAME_STEP)
    vector.reset(seed=0)
    start = time.monotonic()
    with pytest.raises(EnvWorkerError, match=message):
        for _ in range(20):
            vector.step(vector.action_space.sample())
    assert time.monotonic() - start < 30  # reported, not a hang
    assert vector.closed and not any(process.is_alive() for process in vector.processes)
    vector.close()  # closing again is harmless


def test_hung_async_worker_is_named_after_the_timeout():
    vector = ReportingAsyncVectorEnv(
        _factories(1, "hang"), autoreset_mode=AutoresetMode.SAME_STEP, worker_timeout_s=1.0
    )
    vector.reset(seed=0)
    start = time.monotonic()
    expected = r"^env 1 of 3 \(worker pid \d+\) did not answer within 1 s during vector step 7$"
    with pytest.raises(EnvWorkerError, match=expected):
        for _ in range(20):
            vector.step(vector.action_space.sample())
    assert time.monotonic() - start < 30
    assert vector.closed and not any(process.is_alive() for process in vector.processes)


@pytest.mark.parametrize("vec_env", ["async", "shm_workers"])
def test_training_with_a_hung_worker_stops_after_the_timeout(vec_env):
    def factory() -> gym.Env:
        return DieAt(gym.make(ALGORITHM_ENV, max_episode_steps=10_000), at=40, how="hang")

    agent = ALGORITHMS["ppo"](
        factory, n_envs=2, vec_env=vec_env, worker_timeout_s=1.0, n_steps=16, batch_size=32
    )
    with pytest.raises(EnvWorkerError, match=r"did not answer within 1 s during vector step 40"):
        agent.learn(10_000)
    assert agent.num_timesteps < 10_000
    agent.env.close()


def test_training_with_a_dying_async_worker_stops_with_a_clear_error():
    def factory() -> gym.Env:
        return DieAt(gym.make(ALGORITHM_ENV, max_episode_steps=10_000), at=40, how="SIGKILL")

    agent = ALGORITHMS["ppo"](factory, n_envs=2, vec_env="async", n_steps=16, batch_size=32)
    with pytest.raises(EnvWorkerError, match=r"killed by SIGKILL.*during vector step 40"):
        agent.learn(10_000)
    assert agent.num_timesteps < 10_000
    agent.env.close()
