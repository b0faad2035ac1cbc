"""Long runs keep memory, file descriptors, physics clients and worker processes flat.

The suite runs a short version (300 make/close cycles over every env id, a 50k-step rollout,
a few async vector envs); ``rlrobot bench --study soak`` runs the long one (1,000 cycles, 1M
steps) and its figures are in ``docs/reliability.md``.
"""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlrobot
from rlrobot.sim import Simulation
from rlrobot.vec import make_vec_env

CYCLES, WARM_UP_CYCLES = 300, 30
ROLLOUT_STEPS, ROLLOUT_WARM_UP = 50_000, 5_000
PROC = Path("/proc/self")


def _resident_mb() -> float:
    """Current (not peak) resident memory of this process in MiB."""
    return int((PROC / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _open_files() -> int:
    return len(os.listdir(PROC / "fd"))


def _lowest_free_client_id() -> int:
    probe = Simulation()
    probe.close()
    return probe.client_id


@pytest.fixture(autouse=True)
def _needs_proc():
    if not (PROC / "statm").exists():
        pytest.skip("needs /proc (Linux) to read the current memory and open files")


def _cycle(env_id: str, seed: int) -> None:
    env = gym.make(env_id)
    env.reset(seed=seed)
    for _ in range(3):
        env.step(env.action_space.sample())
    env.close()


def _in_fresh_process(measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run ``measure`` in a new interpreter.

    The resident memory of a process that has run other tests depends on what they allocated
    and freed (the allocator hands freed pages back and faults them in again), by up to 20 MiB
    in a one-process run of the suite: a fresh process measures only the envs.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(measure).result(timeout=600)


def _measure_make_close_cycles() -> dict[str, float]:
    for index in range(WARM_UP_CYCLES):  # allocator pools and PyBullet's caches settle
        _cycle(rlrobot.ENV_IDS[index % len(rlrobot.ENV_IDS)], index)
    gc.collect()
    memory, files, client = _resident_mb(), _open_files(), _lowest_free_client_id()
    for index in range(CYCLES):
        _cycle(rlrobot.ENV_IDS[index % len(rlrobot.ENV_IDS)], index)
    gc.collect()
    return {
        "client_change": _lowest_free_client_id() - client,
        "files_change": _open_files() - files,
        "growth_mb": _resident_mb() - memory,
    }


def test_make_close_cycles_over_every_env_keep_resources_flat():
    result = _in_fresh_process(_measure_make_close_cycles)
    assert result["client_change"] == 0
    assert result["files_change"] == 0
    assert result["growth_mb"] < 20, "memory grows with every make/close cycle"


def _measure_long_rollout() -> dict[str, float]:
    env = gym.make("rlrobot/CartPole-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(2, size=ROLLOUT_STEPS)
    memory = episodes = client = 0
    for step, action in enumerate(actions):
        if step == ROLLOUT_WARM_UP:
            gc.collect()
            memory, client = _resident_mb(), _lowest_free_client_id()
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
            episodes += 1
    gc.collect()
    result = {
        "growth_mb": _resident_mb() - memory,
        "client_change": _lowest_free_client_id() - client,
        "episodes": episodes,
    }
    env.close()
    return result


def test_long_rollout_keeps_memory_flat():
    result = _in_fresh_process(_measure_long_rollout)
    assert result["client_change"] == 0
    assert result["episodes"] > 1000  # thousands of resets, not one long episode
    growth = result["growth_mb"]
    assert growth < 5, f"{growth:.1f} MiB more after {ROLLOUT_STEPS - ROLLOUT_WARM_UP} steps"


def test_async_vector_env_cycles_leave_no_worker_processes_or_pipes():
    files = None
    for seed in range(5):
        vector = make_vec_env("rlrobot/CartPole-v0", n_envs=2, vec_env="async", seed=seed)
        vector.step(vector.action_space.sample())
        vector.close()
        # The first cycle starts multiprocessing's resource tracker (one pipe, kept).
        files = files or _open_files()
    assert multiprocessing.active_children() == []
    assert _open_files() == files
