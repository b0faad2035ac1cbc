"""Envs and vector envs over their whole life: dropped, closed, killed, fed strange actions.

- An env dropped without `close()` gives its PyBullet client back when it is collected.
- A worker process killed between two calls is an `EnvWorkerError` naming the env, `close()`
  after it is quiet, and every worker is reaped (no zombie processes).
- `step`, `reset`, `render` and the ground-truth queries of a closed env raise
  `ClosedEnvironmentError`, for every env.
- A complex (or text) action is refused, not cast to its real part; agents act in floats.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlrobot
from rlrobot.agents import ALGORITHMS
from rlrobot.sim import connected_client_ids
from rlrobot.vec import EnvWorkerError, ReportingAsyncVectorEnv
from rlrobot.vec.shared_memory import SharedMemoryVectorEnv
from tests.reliability.small_runs import ALGORITHM_ENV, make_small_agent

N_DROPPED = 20  # each client holds tens of MB: enough to show a leak, cheap to run


def test_dropped_envs_give_their_clients_back():
    before = connected_client_ids()
    envs = [gym.make("rlrobot/CartPole-v0") for _ in range(N_DROPPED)]
    envs += [gym.make(env_id) for env_id in rlrobot.ENV_IDS]
    for env in envs:
        env.reset(seed=0)
    assert len(connected_client_ids()) == len(before) + len(envs)
    del envs, env
    gc.collect()
    assert connected_client_ids() == before


def test_a_closed_env_collected_later_leaves_the_next_client_alone():
    """PyBullet reuses a freed client id: the finaliser must not disconnect its new owner."""
    closed = gym.make("rlrobot/CartPole-v0")
    closed.close()
    reusing = gym.make("rlrobot/CartPole-v0")  # gets the id just freed
    del closed
    gc.collect()
    reusing.reset(seed=0)
    reusing.step(reusing.action_space.sample())
    reusing.close()


def test_a_dropped_agent_gives_its_clients_back():
    before = connected_client_ids()
    agent = make_small_agent("ppo", n_envs=2)
    assert len(connected_client_ids()) == len(before) + 2
    del agent
    gc.collect()
    assert connected_client_ids() == before


# ----------------------------------------------------------------------- dead workers
def _vector_env(kind: str, n_envs: int = 3) -> gym.vector.VectorEnv:
    factories = [lambda: gym.make("rlrobot/CartPole-v0")] * n_envs
    if kind == "async":
        return ReportingAsyncVectorEnv(factories)
    return SharedMemoryVectorEnv(factories, n_workers=n_envs)


def _is_zombie(pid: int) -> bool:
    """Whether `pid` is a child of this process that exited and was never reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False  # reaped
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return state == "Z" and int(parent) == os.getpid()


def _kill_worker(vector: gym.vector.VectorEnv, index: int) -> int:
    """SIGKILL worker `index` between two calls; wait until it is dead; return its pid."""
    process = vector.processes[index]
    os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.pid


@pytest.mark.parametrize("kind", ["async", "shm"])
@pytest.mark.parametrize("call", ["step", "reset"])
def test_worker_killed_between_calls_is_named_and_reaped(kind, call):
    vector = _vector_env(kind)
    vector.reset(seed=0)
    vector.step(vector.action_space.sample())
    pid = _kill_worker(vector, 1)
    pids = [process.pid for process in vector.processes]
    run = {
        "step": lambda: vector.step(vector.action_space.sample()),
        "reset": lambda: vector.reset(seed=1),
    }[call]
    phase = "vector step 2" if call == "step" else "reset after vector step 1"
    with pytest.raises(
        EnvWorkerError,
        match=rf"env 1 of 3 \(worker pid {pid}\) died \(killed by SIGKILL\) during {phase}",
    ):
        run()
    vector.close()  # quiet after the error
    assert vector.closed
    assert not any(_is_zombie(pid) for pid in pids)


@pytest.mark.parametrize("kind", ["async", "shm"])
def test_close_after_a_worker_was_killed_is_quiet_and_reaps_all(kind):
    vector = _vector_env(kind)
    vector.reset(seed=0)
    _kill_worker(vector, 2)
    pids = [process.pid for process in vector.processes]
    vector.close()
    assert vector.closed
    assert not any(process.is_alive() for process in vector.processes)
    assert not any(_is_zombie(pid) for pid in pids)


def test_async_get_and_set_attr_with_a_killed_worker_name_the_env():
    vector = _vector_env("async")
    vector.reset(seed=0)
    pid = _kill_worker(vector, 0)
    with pytest.raises(EnvWorkerError, match=rf"env 0 of 3 \(worker pid {pid}\) died"):
        vector.get_attr("spec")
    vector.close()
    vector = _vector_env("async")
    vector.reset(seed=0)
    pid = _kill_worker(vector, 0)
    with pytest.raises(EnvWorkerError, match=rf"env 0 of 3 \(worker pid {pid}\) died"):
        vector.set_attr("episode_state", None)
    vector.close()


# ------------------------------------------------------------------------ closed envs
def _calls(env: gym.Env) -> dict:
    scene = env.unwrapped
    return {
        "step": lambda: env.step(env.action_space.sample()),
        "reset": lambda: env.reset(seed=0),
        "render": env.render,
        "body_names": lambda: scene.body_names,
        "get_body_pose": lambda: scene.get_body_pose("plane"),
        "get_ground_truth": scene.get_ground_truth,
        "get_proprioception": scene.get_proprioception,
        "render_view": lambda: scene.render_view(scene.camera, 8, 8),
    }


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_a_closed_env_says_it_is_closed(env_id):
    env = gym.make(env_id, render_mode="rgb_array", render_width=32, render_height=32)
    env.reset(seed=0)
    env.close()
    for name, call in _calls(env).items():
        with pytest.raises(
            gym.error.ClosedEnvironmentError, match=rf"{name}\(\) called on a closed"
        ):
            call()
    env.close()  # closing again is harmless


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_an_env_closed_before_its_first_reset_says_it_is_closed(env_id):
    env = gym.make(env_id)
    env.close()
    with pytest.raises(gym.error.ClosedEnvironmentError, match="closed"):
        env.reset(seed=0)


# -------------------------------------------------------------------------- actions
@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_complex_and_text_actions_are_refused(env_id):
    env = gym.make(env_id)
    try:
        env.reset(seed=0)
        real = np.asarray(env.action_space.sample())
        for action in (real + 1j, real.astype(np.complex128), real.astype(str)):
            with pytest.raises(ValueError, match="action"):
                env.step(action)
        env.step(real)  # a real action still steps
    finally:
        env.close()


def test_a_box_action_refusal_names_the_dtype():
    env = gym.make("rlrobot/CartPoleContinuous-v0")
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="action must be real numbers, got dtype complex128"):
            env.step(np.array([0.5 + 0.5j]))
    finally:
        env.close()


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_agents_act_in_real_numbers(algo):
    agent = make_small_agent(algo)
    try:
        env = gym.make(ALGORITHM_ENV)
        observation, _ = env.reset(seed=0)
        env.close()
        for deterministic in (True, False):
            action, _ = agent.predict(observation, deterministic=deterministic)
            assert np.asarray(action).dtype.kind == "f"
    finally:
        agent.env.close()
