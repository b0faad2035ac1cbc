"""SharedMemoryVectorEnv: same transitions as SyncVectorEnv, faults named, agents train with it."""

import functools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import ClassVar, get_args, get_type_hints

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from rlrobot.agents import ALGORITHMS
from rlrobot.common.env_util import get_final_observations, make_env
from rlrobot.run.config import RunConfig
from rlrobot.vec import (
    VEC_ENV_CHOICES,
    EnvWorkerError,
    SharedMemoryVectorEnv,
    default_main_envs,
    make_vec_env,
)


def make_cartpole() -> gym.Env:
    return gym.make("CartPole-v1", max_episode_steps=30)  # short episodes: many autoresets


def make_reach() -> gym.Env:
    return gym.make("rlrobot/Reach-v0", max_episode_steps=20)  # Dict observations


def corrupt_joint_table() -> None:
    raise ValueError("joint limit table is corrupt")


def hang() -> None:
    time.sleep(3600)


class FailAt(gym.Wrapper):
    """Calls ``fail`` (raise, hang) on step ``at``: a failing env in a worker."""

    def __init__(self, env: gym.Env, at: int, fail: Callable[[], None]) -> None:
        super().__init__(env)
        self.at, self.fail, self.steps = at, fail, 0

    def step(self, action):
        """Step, or fail on step ``at``."""
        self.steps += 1
        if self.steps == self.at:
            self.fail()
        return super().step(action)


def make_failing_cartpole() -> gym.Env:
    return FailAt(make_cartpole(), at=5, fail=corrupt_joint_table)


def make_hanging_cartpole() -> gym.Env:
    return FailAt(make_cartpole(), at=5, fail=hang)


def assert_tree_equal(actual, expected) -> None:
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_tree_equal(actual[key], expected[key])
    else:
        np.testing.assert_array_equal(actual, expected)


def assert_no_worker_alive(vector: SharedMemoryVectorEnv) -> None:
    assert vector.closed
    assert all(not process.is_alive() for process in vector.processes)
    for process in vector.processes:  # reaped: the pid is gone, not a zombie
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)


@pytest.mark.parametrize(
    ("factory", "n_envs", "n_workers", "n_main_envs", "n_steps"),
    [
        (make_cartpole, 3, 2, 0, 300),
        (make_reach, 2, 1, 0, 60),
        (make_cartpole, 2, 1, 1, 300),
        (make_cartpole, 4, 1, 2, 300),
        (make_reach, 2, 1, 1, 200),
    ],
    ids=[
        "cartpole-3-envs-2-workers",
        "reach-dict-2-envs-1-worker",
        "cartpole-2-envs-1-in-main",
        "cartpole-4-envs-2-in-main",
        "reach-dict-2-envs-1-in-main",
    ],
)
def test_same_transitions_as_sync_vector_env(factory, n_envs, n_workers, n_main_envs, n_steps):
    sync = gym.vector.SyncVectorEnv([factory] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    shared = SharedMemoryVectorEnv([factory] * n_envs, n_workers=n_workers, n_main_envs=n_main_envs)
    try:
        assert shared.main_envs == range(n_main_envs)
        assert shared.worker_envs[0][0] == n_main_envs
        assert shared.worker_envs[-1][-1] == n_envs - 1
        assert shared.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert shared.single_observation_space == sync.single_observation_space
        expected, expected_info = sync.reset(seed=3)
        observations, infos = shared.reset(seed=3)
        assert_tree_equal(observations, expected)
        assert_tree_equal(infos, expected_info)
        sync.action_space.seed(0)
        n_episode_ends = 0
        for _ in range(n_steps):
            actions = sync.action_space.sample()
            expected_step = sync.step(actions)
            step = shared.step(actions)
            for actual, wanted in zip(step[:4], expected_step[:4], strict=True):
                assert_tree_equal(actual, wanted)
            assert step[1].dtype == np.float64 and step[2].dtype == step[3].dtype == np.bool_
            infos, expected_info = step[4], expected_step[4]
            assert infos.keys() == expected_info.keys()
            final, ended = get_final_observations(step[0], infos)
            expected_final, expected_ended = get_final_observations(expected_step[0], expected_info)
            np.testing.assert_array_equal(ended, expected_ended)
            assert_tree_equal(final, expected_final)
            if ended.any():
                assert_tree_equal(infos["final_info"], expected_info["final_info"])
            n_episode_ends += int(ended.sum())
        assert n_episode_ends >= n_envs  # the autoreset path was exercised
    finally:
        sync.close()
        shared.close()
    assert_no_worker_alive(shared)


def assert_steps_match(shared, sync, n_steps: int) -> None:
    """Step both vector envs with the same random actions; same observations, rewards, flags."""
    for _ in range(n_steps):
        actions = sync.action_space.sample()
        for actual, wanted in zip(shared.step(actions)[:4], sync.step(actions)[:4], strict=True):
            assert_tree_equal(actual, wanted)


@pytest.mark.parametrize(
    ("factory", "n_envs", "n_main_envs", "masks"),
    [
        # Groups: env 0 in main, worker 0 env 1, worker 1 envs 2-3.
        (make_cartpole, 4, 1, ["TFFF", "FTFF", "FFTF", "FFTT", "TFFT", "TTTT"]),
        # Groups: worker 0 envs 0-1, worker 1 env 2.
        (make_cartpole, 3, 0, ["FTF", "FFT", "TFT"]),
        # Groups: env 0 in main, worker 0 envs 1-2.
        (make_reach, 3, 1, ["TFF", "FTF", "TFT", "TTT"]),
    ],
    ids=["cartpole-main-and-2-workers", "cartpole-workers-only", "reach-dict-main-and-worker"],
)
def test_partial_reset_matches_sync_vector_env(factory, n_envs, n_main_envs, masks):
    sync = gym.vector.SyncVectorEnv([factory] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    n_workers = 1 if n_main_envs else 2
    shared = SharedMemoryVectorEnv([factory] * n_envs, n_workers=n_workers, n_main_envs=n_main_envs)
    try:
        sync.reset(seed=3)
        shared.reset(seed=3)
        sync.action_space.seed(0)
        for round_, letters in enumerate(masks):
            assert_steps_match(shared, sync, 7)
            mask = np.array([letter == "T" for letter in letters])
            # Int seeds and seed lists alternate; only the masked envs' seeds are used.
            seed = 100 * round_ if round_ % 2 else [100 * round_ + 7 * i for i in range(n_envs)]
            options = {"reset_mask": mask, "unused": 1}
            observations, infos = shared.reset(seed=seed, options=options)
            expected, expected_infos = sync.reset(seed=seed, options=dict(options))
            assert_tree_equal(observations, expected)
            assert_tree_equal(infos, expected_infos)
            assert options["reset_mask"] is mask  # the caller's options are left as they are
            if infos:  # Reach's reset infos: only the reset envs', with their `_key` masks
                np.testing.assert_array_equal(infos["_is_success"], mask)
        assert_steps_match(shared, sync, 40)  # the envs that were not reset kept their state
    finally:
        sync.close()
        shared.close()


def test_partial_reset_runs_only_the_groups_holding_masked_envs(monkeypatch):
    shared = SharedMemoryVectorEnv([make_cartpole] * 4, n_workers=2, n_main_envs=1)
    sent_to, main_runs = [], []  # workers sent a reset command, main-process group runs
    send, run_main = shared._send, shared._main.run

    def record_send(worker: int, payload) -> None:
        sent_to.append(worker)
        send(worker, payload)

    def record_main_run(command: int, payload):
        main_runs.append(command)
        return run_main(command, payload)

    monkeypatch.setattr(shared, "_send", record_send)
    monkeypatch.setattr(shared._main, "run", record_main_run)
    try:
        shared.reset(seed=0)
        assert sent_to == [0, 1] and len(main_runs) == 1
        # Groups: env 0 in main, worker 0 env 1, worker 1 envs 2-3.
        for letters, workers, in_main in [("TFFF", [], 1), ("FFFT", [1], 0), ("TTFF", [0], 1)]:
            sent_to.clear()
            main_runs.clear()
            mask = np.array([letter == "T" for letter in letters])
            shared.reset(seed=0, options={"reset_mask": mask})
            assert sent_to == workers and len(main_runs) == in_main
    finally:
        shared.close()


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        ([True, False, True], TypeError, "must be a numpy array, got list"),
        (np.array([True, False]), ValueError, r"must have shape \(3,\), got \(2,\)"),
        (np.array([[True, False, True]]), ValueError, r"must have shape \(3,\)"),
        (np.array([1, 0, 1]), TypeError, "must have dtype bool, got int64"),
        (np.zeros(3, dtype=bool), ValueError, "must select at least one env"),
    ],
    ids=["list", "too-short", "2d", "int-dtype", "none-set"],
)
def test_bad_reset_mask_is_refused_like_sync_vector_env(mask, error, message):
    sync = gym.vector.SyncVectorEnv([make_cartpole] * 3, autoreset_mode=AutoresetMode.SAME_STEP)
    shared = SharedMemoryVectorEnv([make_cartpole] * 3, n_workers=1, n_main_envs=1)
    try:
        sync.reset(seed=0)
        before, _ = shared.reset(seed=0)
        with pytest.raises(error):
            sync.reset(seed=1, options={"reset_mask": mask})
        with pytest.raises(error, match=message):
            shared.reset(seed=1, options={"reset_mask": mask})
        np.testing.assert_array_equal(shared.reset(seed=0)[0], before)  # still usable
    finally:
        sync.close()
        shared.close()


def test_without_step_infos_only_episode_ends_send_infos():
    shared = SharedMemoryVectorEnv([make_cartpole] * 2, step_infos=False)
    try:
        shared.reset(seed=0)
        seen_final = False
        for _ in range(80):
            _, _, terminated, truncated, infos = shared.step(np.array([1, 1]))
            ended = terminated | truncated
            if ended.any():
                np.testing.assert_array_equal(infos["_final_obs"], ended)
                seen_final = True
            else:
                assert infos == {}
        assert seen_final
    finally:
        shared.close()


@pytest.mark.parametrize(("n_workers", "n_main_envs"), [(2, 0), (1, 1)])
def test_call_get_attr_set_attr_and_seed_lists(n_workers, n_main_envs):
    shared = SharedMemoryVectorEnv(
        [make_cartpole] * 3, n_workers=n_workers, n_main_envs=n_main_envs
    )
    try:
        first, _ = shared.reset(seed=[5, 6, 7])
        again, _ = shared.reset(seed=[5, 6, 7])
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first[0], first[1])
        shared.set_attr("marker", [10, 11, 12])
        assert shared.get_attr("marker") == (10, 11, 12)
        assert shared.call("get_wrapper_attr", "marker") == (10, 11, 12)
        assert len(shared.get_attr("np_random")) == 3
        with pytest.raises(ValueError, match="expected 3 seeds"):
            shared.reset(seed=[1, 2])
    finally:
        shared.close()


@pytest.mark.parametrize(
    ("n_envs", "options", "victim_index", "workers", "named"),
    [
        (4, {"n_workers": 2}, 1, [range(0, 2), range(2, 4)], "envs 2-3 of 4"),
        (2, {"n_main_envs": 1}, 0, [range(1, 2)], "env 1 of 2"),
    ],
    ids=["two-workers", "env-in-main"],
)
def test_killed_worker_is_named(n_envs, options, victim_index, workers, named):
    shared = SharedMemoryVectorEnv([make_cartpole] * n_envs, **options)
    assert shared.worker_envs == workers
    actions = np.zeros(n_envs, dtype=np.int64)
    shared.reset(seed=0)
    shared.step(actions)
    victim = shared.processes[victim_index]
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(EnvWorkerError) as raised:
        for _ in range(10):
            shared.step(actions)
    message = str(raised.value)
    assert f"{named} (worker pid {victim.pid}) died (killed by SIGKILL)" in message
    assert "during vector step 2" in message
    assert_no_worker_alive(shared)
    with pytest.raises(gym.error.ClosedEnvironmentError):
        shared.step(actions)


def test_exception_in_env_is_named():
    shared = SharedMemoryVectorEnv(
        [make_cartpole, make_cartpole, make_failing_cartpole], n_workers=3
    )
    shared.reset(seed=0)
    for _ in range(4):
        shared.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(EnvWorkerError) as raised:
        shared.step(np.zeros(3, dtype=np.int64))
    error = raised.value
    pid = shared.processes[2].pid
    assert str(error).startswith(
        f"env 2 of 3 (worker pid {pid}) raised ValueError: joint limit table is corrupt "
        "during vector step 5"
    )
    assert isinstance(error.__cause__, ValueError)
    notes = "".join(error.__cause__.__notes__)  # the worker's traceback
    assert "traceback in worker 2" in notes and 'raise ValueError("joint limit' in notes
    assert_no_worker_alive(shared)


def test_hung_worker_is_named_after_the_timeout():
    shared = SharedMemoryVectorEnv(
        [make_cartpole, make_hanging_cartpole], n_workers=2, worker_timeout_s=1.0
    )
    actions = np.zeros(2, dtype=np.int64)
    shared.reset(seed=0)
    for _ in range(4):
        shared.step(actions)
    start = time.monotonic()
    with pytest.raises(EnvWorkerError) as raised:
        shared.step(actions)
    assert 1.0 <= time.monotonic() - start < 10
    pid = shared.processes[1].pid
    assert str(raised.value) == (
        f"env 1 of 2 (worker pid {pid}) did not answer within 1 s during vector step 5"
    )
    assert_no_worker_alive(shared)


def test_hung_construction_is_named():
    def hanging() -> gym.Env:
        if os.getpid() != parent:  # the probe env in this process is built normally
            time.sleep(3600)
        return make_cartpole()

    parent = os.getpid()
    expected = r"^env 0 of 1 \(worker pid \d+\) did not answer within 0.5 s during construction$"
    with pytest.raises(EnvWorkerError, match=expected):
        SharedMemoryVectorEnv([hanging], worker_timeout_s=0.5)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("value", [0, -1.0, True])
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # clean __del__
def test_worker_timeout_must_be_positive(value):
    with pytest.raises(ValueError, match="worker_timeout_s must be > 0"):
        SharedMemoryVectorEnv([make_cartpole], worker_timeout_s=value)


class Slow(gym.Wrapper):
    """Takes 0.6 s per step: longer than the main process's liveness period."""

    def step(self, action):
        """Sleep, then step."""
        time.sleep(0.6)
        return super().step(action)


def test_exception_is_named_while_another_worker_is_still_stepping():
    def failing() -> gym.Env:
        return FailAt(make_cartpole(), at=1, fail=corrupt_joint_table)

    shared = SharedMemoryVectorEnv([failing, lambda: Slow(make_cartpole())], n_workers=2)
    shared.reset(seed=0)
    with pytest.raises(EnvWorkerError, match=r"^env 0 of 2 .* raised ValueError"):
        shared.step(np.zeros(2, dtype=np.int64))  # the failing worker exits before the other ends
    assert_no_worker_alive(shared)


def test_exception_in_a_main_process_env_propagates_and_stops_the_workers():
    shared = SharedMemoryVectorEnv(
        [make_cartpole, make_failing_cartpole, make_cartpole], n_main_envs=2
    )
    assert shared.main_envs == range(2) and len(shared.processes) == 1
    shared.reset(seed=0)
    for _ in range(4):
        shared.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="joint limit table is corrupt") as raised:
        shared.step(np.zeros(3, dtype=np.int64))
    assert type(raised.value) is ValueError  # the env's own exception, not an EnvWorkerError
    assert "in env 1 of 3 (main process) during vector step 5" in raised.value.__notes__
    assert_no_worker_alive(shared)
    with pytest.raises(gym.error.ClosedEnvironmentError):
        shared.step(np.zeros(3, dtype=np.int64))


def test_failing_construction_in_the_main_process_stops_the_workers():
    calls_here = []

    def broken() -> gym.Env:
        if os.getpid() == parent:
            calls_here.append(1)
            if len(calls_here) > 1:  # the first is the probe env
                raise ZeroDivisionError("no mass")
        return make_cartpole()

    parent = os.getpid()
    with pytest.raises(ZeroDivisionError) as raised:
        SharedMemoryVectorEnv([broken] * 2, n_main_envs=1)
    assert "in env 0 of 2 (main process) during construction" in raised.value.__notes__
    assert multiprocessing.active_children() == []  # the worker was stopped and reaped


def test_failing_construction_is_named():
    def broken() -> gym.Env:
        return gym.make("CartPole-v1") if os.getpid() == parent else 1 / 0

    parent = os.getpid()
    expected = r"env 0 of 2 .* raised ZeroDivisionError.* during construction"
    with pytest.raises(EnvWorkerError, match=expected):
        SharedMemoryVectorEnv([broken] * 2, n_workers=1)


def test_close_stops_every_worker_and_is_idempotent():
    shared = SharedMemoryVectorEnv([make_cartpole] * 3, n_workers=3)
    shared.reset(seed=0)
    processes = list(shared.processes)
    assert all(process.is_alive() for process in processes)
    shared.close()
    assert_no_worker_alive(shared)
    assert all(process.exitcode == 0 for process in processes)  # closed, not terminated
    shared.close()


class RecordClose(gym.Wrapper):
    """Counts ``close`` calls in this process."""

    closes: ClassVar[list[int]] = []

    def close(self):
        """Count, then close."""
        RecordClose.closes.append(os.getpid())
        super().close()


def test_close_closes_the_main_process_envs_and_render_covers_them():
    def make() -> gym.Env:
        return RecordClose(gym.make("rlrobot/CartPole-v0", render_mode="rgb_array"))

    RecordClose.closes.clear()
    shared = SharedMemoryVectorEnv([make] * 2, n_main_envs=1)
    assert RecordClose.closes == [os.getpid()]  # the probe env
    shared.reset(seed=[4, 4])
    first, second = shared.render()
    assert first.ndim == 3 and first.shape[2] == 3
    np.testing.assert_array_equal(first, second)  # same seed, same frame, either process
    shared.close()
    assert RecordClose.closes == [os.getpid()] * 2
    assert_no_worker_alive(shared)


def test_default_main_envs_is_one_env_per_process_up_to_the_cores():
    assert [default_main_envs(n, n_cores=2) for n in (1, 2, 3, 4, 5)] == [0, 1, 1, 2, 2]
    assert [default_main_envs(n, n_cores=8) for n in (1, 2, 8, 16)] == [0, 1, 1, 2]
    assert default_main_envs(4, n_cores=1) == 0


def test_make_vec_env_shm():
    vector = make_vec_env("CartPole-v1", n_envs=3, vec_env="shm", seed=0)
    try:
        assert isinstance(vector, SharedMemoryVectorEnv) and not vector.step_infos
        n_cores = len(os.sched_getaffinity(0))
        assert vector.main_envs == range(default_main_envs(3))
        assert len(vector.processes) == min(3, n_cores) - (n_cores > 1)
        assert vector.step(vector.action_space.sample())[0].shape == (3, 4)
    finally:
        vector.close()
    with pytest.raises(ValueError, match="cannot be moved to a subprocess"):
        make_vec_env(gym.make("CartPole-v1"), vec_env="shm")


@pytest.mark.parametrize("vec_env", ["async", "shm", "shm_workers"])
def test_make_vec_env_passes_the_worker_timeout(vec_env):
    vector = make_vec_env("CartPole-v1", n_envs=2, vec_env=vec_env, worker_timeout_s=30)
    try:
        assert vector.worker_timeout_s == 30.0
    finally:
        vector.close()


def test_make_vec_env_refuses_a_worker_timeout_without_workers():
    with pytest.raises(ValueError, match='vec_env="sync" has none'):
        make_vec_env("CartPole-v1", n_envs=2, worker_timeout_s=30)
    given = gym.vector.SyncVectorEnv([make_cartpole], autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="not a given one"):
        make_vec_env(given, vec_env="async", worker_timeout_s=30)
    given.close()


def test_make_vec_env_shm_workers_steps_every_env_in_a_worker():
    vector = make_vec_env(make_cartpole, n_envs=2, vec_env="shm_workers", seed=0)
    sync = make_vec_env(make_cartpole, n_envs=2, vec_env="sync", seed=0)
    try:
        assert isinstance(vector, SharedMemoryVectorEnv) and not vector.step_infos
        assert vector.main_envs == range(0) and vector._main is None
        assert [env for envs in vector.worker_envs for env in envs] == [0, 1]
        assert len(vector.processes) == min(2, len(os.sched_getaffinity(0)))
        assert_tree_equal(vector.reset(seed=5)[0], sync.reset(seed=5)[0])
        assert_steps_match(vector, sync, 80)
    finally:
        vector.close()
        sync.close()


def test_vec_env_choices_are_the_run_configs():
    assert get_args(get_type_hints(RunConfig)["vec_env"]) == VEC_ENV_CHOICES


@pytest.mark.parametrize(
    ("algorithm", "env_id", "keywords"),
    [
        ("ppo", "CartPole-v1", {"n_steps": 16, "batch_size": 32}),
        ("sac", "rlrobot/Reach-v0", {"replay_buffer": "her", "learning_starts": 20,
                                     "batch_size": 16, "net_arch": (16,)}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("n_main_envs", [0, 1], ids=["workers-only", "one-env-in-main"])
def test_agents_train_with_it(algorithm, env_id, keywords, n_main_envs):
    vector = SharedMemoryVectorEnv(
        [functools.partial(make_env, env_id)] * 2, n_main_envs=n_main_envs, step_infos=False
    )
    agent = ALGORITHMS[algorithm](vector, seed=0, **keywords)
    try:
        assert agent.env is vector and len(vector.processes) == 2 - n_main_envs
        agent.learn(64)
        assert agent.num_timesteps == 64
    finally:
        agent.env.close()
    assert_no_worker_alive(agent.env)
