"""The vector-env part of the envs study: 2 processes against 1 env, with the CPU of each part.

Besides wall-clock speed-ups, ``bench_vector`` measures the CPU time of the workers, the main
thread and the envs the main process steps itself, and derives the speed-up those CPU times
allow on free cores (*capacity*), which other jobs on a shared machine move much less than
the wall clock. ``env_speed`` runs it as the study's ``vector`` part and renders its section.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rlrobot.benchmark.report import markdown_table
from rlrobot.vec import SharedMemoryVectorEnv

# The robots whose vector-env speed-up the goal is about.
HEAVY_ENV_IDS = ("rlrobot/Push-v0", "rlrobot/Quadruped-v0")
VECTOR_ENV_IDS = (*HEAVY_ENV_IDS, "rlrobot/Reach-v0", "rlrobot/Navigate-v0")
GOAL_SPEEDUP = 1.7


def worker_cpu_seconds(env: gym.Env | gym.vector.VectorEnv) -> float:
    """User + system CPU time of a vector env's live worker processes (Linux `/proc`, 10 ms
    ticks); 0 for a single env."""
    total = 0
    for process in getattr(env, "processes", []):
        with open(f"/proc/{process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


class MainProcessEnvClock(gym.Wrapper):
    """Adds the thread CPU time of its `step` and `reset` calls to `seconds`, a per-process
    total: in the main process, the time of the envs that a vector env steps there itself
    (`n_main_envs`), which overlaps the workers' steps."""

    seconds = 0.0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """The env's step, timed."""
        start = time.thread_time()
        result = self.env.step(action)
        MainProcessEnvClock.seconds += time.thread_time() - start
        return result

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The env's reset (an autoreset, while measuring), timed."""
        start = time.thread_time()
        result = self.env.reset(**kwargs)
        MainProcessEnvClock.seconds += time.thread_time() - start
        return result


def timed_steps(
    env: gym.Env | gym.vector.VectorEnv, n_steps: int, pause: float = 0.0
) -> tuple[float, float, float, float]:
    """(wall s, main-thread CPU s, worker CPU s, main-process env CPU s) per env step with
    random actions.

    A vector step counts `num_envs` env steps. `pause` (s) sleeps between steps, giving the
    CPU away as a vector env's worker does while it waits for the next command. Main-process
    env CPU is that of the `MainProcessEnvClock`-wrapped envs stepped in this process (part
    of the main-thread CPU).
    """
    env.reset(seed=0)
    env.action_space.seed(0)
    n_envs = getattr(env, "num_envs", 1)
    actions = [env.action_space.sample() for _ in range(n_steps // n_envs + 20)]
    for action in actions[:20]:
        env.step(action)
    worker, in_main = worker_cpu_seconds(env), MainProcessEnvClock.seconds
    wall, cpu = time.perf_counter(), time.thread_time()
    for action in actions[20:]:
        _, _, terminated, truncated, _ = env.step(action)
        if n_envs == 1 and (terminated or truncated):
            env.reset()
        if pause:
            time.sleep(pause)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    worker = worker_cpu_seconds(env) - worker
    in_main = MainProcessEnvClock.seconds - in_main
    n_env_steps = n_envs * (len(actions) - 20)
    return wall / n_env_steps, cpu / n_env_steps, worker / n_env_steps, in_main / n_env_steps


class InfosAtEpisodeEnds(gym.Wrapper):
    """Returns a step's info only when the episode ends: what Gymnasium's `AsyncVectorEnv`
    would gain from sending infos only when needed (rlrobot's agents read only final infos)."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """The env's step, with an empty info unless terminated or truncated."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, info if terminated or truncated else {}


def shared_memory_kind(
    n_envs: int, n_workers: int, n_main_envs: int = 0, step_infos: bool = False
) -> tuple[Callable[..., gym.vector.VectorEnv], int, int, int]:
    """A `VECTOR_KINDS` entry for `SharedMemoryVectorEnv` with these arguments."""

    def make_vector(make: Callable[[], gym.Env]) -> gym.vector.VectorEnv:
        return SharedMemoryVectorEnv(
            [make] * n_envs, n_workers=n_workers, n_main_envs=n_main_envs, step_infos=step_infos
        )

    return make_vector, n_envs, n_workers, n_main_envs


# Vector envs compared with one env: name → (factory of the vector env, n_envs, n_workers,
# envs stepped in the main process).
VECTOR_KINDS: dict[str, tuple[Callable[..., gym.vector.VectorEnv], int, int, int]] = {
    "Gymnasium `AsyncVectorEnv`, 2 workers": (
        lambda make: gym.vector.AsyncVectorEnv(
            [make] * 2, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        ),
        2,
        2,
        0,
    ),
    "Gymnasium `AsyncVectorEnv`, 2 workers, infos at episode ends": (
        lambda make: gym.vector.AsyncVectorEnv(
            [lambda: InfosAtEpisodeEnds(make())] * 2,
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        ),
        2,
        2,
        0,
    ),
    "`SharedMemoryVectorEnv`, 2 workers, step infos": shared_memory_kind(2, 2, step_infos=True),
    "`SharedMemoryVectorEnv`, 2 workers": shared_memory_kind(2, 2),
    "`SharedMemoryVectorEnv`, 2 workers × 2 envs": shared_memory_kind(4, 2),
    '`SharedMemoryVectorEnv`, 1 worker + 1 env in main (`vec_env="shm"`)': shared_memory_kind(
        2, 1, n_main_envs=1
    ),
    "`SharedMemoryVectorEnv`, 1 worker × 2 envs + 2 envs in main": shared_memory_kind(
        4, 1, n_main_envs=2
    ),
    "`SharedMemoryVectorEnv`, 2 workers × 4 envs": shared_memory_kind(8, 2),
    "`SharedMemoryVectorEnv`, 1 worker × 4 envs + 4 envs in main": shared_memory_kind(
        8, 1, n_main_envs=4
    ),
}


CEILING_KIND = "two independent single-env processes (no vector env: the machine's ceiling)"


def _timed_in_process(
    env_id: str, n_steps: int, barrier: Any, results: multiprocessing.queues.Queue
) -> None:
    """Make the env, wait for the other process, then put this process's `timed_steps`."""
    env = gym.make(env_id)
    barrier.wait()
    results.put(timed_steps(env, n_steps))
    env.close()


def independent_processes(env_id: str, n_steps: int) -> tuple[float, float]:
    """(wall s per env step of the slower, mean CPU s per env step) of two processes that
    each step their own env at the same time, with no vector env and nothing shared: what 2
    cores give a 2-process vector env at best."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_timed_in_process, args=(env_id, n_steps, barrier, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    timings = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return max(t[0] for t in timings), statistics.fmean(t[1] for t in timings)


def bench_vector(env_ids: list[str], n_steps: int, repeats: int) -> list[dict[str, Any]]:
    """Every vector env of `VECTOR_KINDS` vs 1 env, interleaved `repeats` times (medians).

    Besides wall-clock speed, the CPU time of each part is measured: the workers' per env
    step they run (their whole processes), the main thread's per vector step, and within it
    the env steps of the main process's own envs. On free cores (one per process) the
    workers and the main process's envs step in parallel, the rest of the main thread's
    work does not, so a vector step takes at most T = main besides its envs + max(main's
    envs, one worker's envs) time: `capacity` = n_envs × single / T is the speed-up those
    CPU times allow, whatever else the machine runs.
    """
    rows = []
    for env_id in env_ids:

        def make(env_id: str = env_id) -> gym.Env:
            return gym.make(env_id)

        def make_clocked(env_id: str = env_id) -> gym.Env:
            return MainProcessEnvClock(gym.make(env_id))

        runs: dict[str, list[tuple[float, ...]]] = {kind: [] for kind in VECTOR_KINDS}
        singles = []
        for _ in range(repeats):
            env = make()
            single_wall, single_cpu, *_ = timed_steps(env, n_steps)
            _, yielding_cpu, *_ = timed_steps(env, n_steps // 2, pause=0.0005)
            env.close()
            pair_wall, pair_cpu = independent_processes(env_id, n_steps)
            singles.append((single_wall, single_cpu, yielding_cpu, pair_wall, pair_cpu))
            for kind, (make_vector, n_envs, _, _) in VECTOR_KINDS.items():
                envs = make_vector(make_clocked)
                wall, main_cpu, worker_cpu, in_main_cpu = timed_steps(envs, n_steps)
                envs.close()
                # Per vector step: all workers, the main thread, the main process's envs.
                per_vector_step = (n_envs * worker_cpu, n_envs * main_cpu, n_envs * in_main_cpu)
                runs[kind].append((single_wall / wall, *per_vector_step))
        single_wall, single, yielding, pair_wall, pair_cpu = (
            statistics.median(v) for v in zip(*singles, strict=True)
        )
        rows.append(
            {
                "id": env_id,
                "kind": CEILING_KIND,
                "speedup": 2 * single_wall / pair_wall,
                "single_cpu": single,
                "yielding_cpu": yielding,
                "worker_cpu": pair_cpu,
                "in_main_cpu": None,
                "main_cpu": None,
                "capacity": None,
            }
        )
        for kind, (_, n_envs, n_workers, n_main_envs) in VECTOR_KINDS.items():
            speedup, workers, main, in_main = (
                statistics.median(v) for v in zip(*runs[kind], strict=True)
            )
            main_besides_envs = main - in_main
            capacity = n_envs * single / (main_besides_envs + max(in_main, workers / n_workers))
            rows.append(
                {
                    "id": env_id,
                    "kind": kind,
                    "speedup": speedup,
                    "single_cpu": single,
                    "yielding_cpu": yielding,
                    "worker_cpu": workers / (n_envs - n_main_envs),
                    "in_main_cpu": in_main / n_main_envs if n_main_envs else None,
                    "main_cpu": main_besides_envs,
                    "capacity": capacity,
                }
            )
            print(
                f"  {env_id} {kind}: ×{speedup:.2f} measured, ×{capacity:.2f} capacity",
                file=sys.stderr,
            )
    return rows


def microseconds(seconds: float | None) -> str:
    """Return a time in whole µs, or "—" when missing."""
    return "—" if seconds is None else f"{seconds * 1e6:.0f}"


def vector_section(results: dict[str, Any]) -> list[str]:
    """Return the vector-env section of the page: how it was measured, the table, the goal."""
    before, after = results["vector_load"]
    lines = [
        "## Vector envs: 2 processes vs 1 env",
        "",
        f"Measured by `{results['vector_command']}` at {results['vector_time']} UTC (the other "
        f"sections may come from another run). Goal: ≥ {GOAL_SPEEDUP}× on the heavy robots. "
        "*measured* is the wall-clock ratio of env steps/s against one env in the same process "
        "(a vector step counts `n_envs`), median of interleaved repeats. On shared cores a "
        "worker only gets the CPU left over, so this number says as much about the load as "
        f"about the envs: load average (1 min) {before:.1f} before this section and "
        f"{after:.1f} after. *capacity* = n_envs × single / (main + max(envs in main × in-main "
        "env, envs per worker × worker)) is the speed-up that the measured CPU times of the "
        "parts allow on 2 free cores, where the workers and the main process's own envs step in "
        "parallel and the rest of the main thread's work does not (worker: CPU of the worker "
        "processes per env step they run, from `/proc`, pipes, pickling and autoresets "
        "included; in-main env: CPU of an env step, autoreset included, that the main process "
        "runs itself; main: the main thread's CPU per vector step besides those). It is "
        "pessimistic too: a worker sleeps between steps, other jobs then evict its caches, and "
        "its physics gets slower; *yielding* shows that effect alone, a single env sleeping "
        "0.5 ms between steps. `SharedMemoryVectorEnv` (`rlrobot.vec.shared_memory`, "
        '`make_vec_env(..., vec_env="shm")`) keeps step data in shared memory and wakes '
        "workers with a semaphore; *step infos* sends every step's info dict as Gymnasium "
        'does, otherwise infos travel only where an episode ends (what `vec_env="shm"` uses); '
        "*in main*: `n_main_envs`, envs the main process steps itself between waking the "
        "workers and waiting for them.",
        "",
    ]
    lines += markdown_table(
        [
            *("env", "vector env", "single µs/step", "yielding µs/step", "worker µs/env step"),
            *("in-main env µs/env step", "main µs/vector step", "measured", "capacity"),
        ],
        [
            [f"`{row['id']}`", row["kind"]]
            + [microseconds(row[key]) for key in ("single_cpu", "yielding_cpu", "worker_cpu")]
            + [microseconds(row["in_main_cpu"]), microseconds(row["main_cpu"])]
            + [f"{row['speedup']:.2f}×"]
            + ["—" if row["capacity"] is None else f"{row['capacity']:.2f}×"]
            for row in results["vector"]
        ],
    )
    return [*lines, "", *verdict(results["vector"], before, after)]


def verdict(rows: list[dict[str, Any]], load_before: float, load_after: float) -> list[str]:
    """Return which vector envs reach the goal on the heavy robots, overall and per vector env."""
    per_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["id"] in HEAVY_ENV_IDS and row["kind"] != CEILING_KIND:
            per_kind.setdefault(row["kind"], []).append(row)

    def listed(selected: list[dict[str, Any]], key: str) -> str:
        return ", ".join(f"{row['id'].split('/')[-1]} {row[key]:.2f}×" for row in selected)

    def met_by(key: str) -> str:
        kinds = [k for k, heavy in per_kind.items() if all(r[key] >= GOAL_SPEEDUP for r in heavy)]
        return ", ".join(kinds) or "none"

    ceiling = [row for row in rows if row["id"] in HEAVY_ENV_IDS and row["kind"] == CEILING_KIND]
    lines = [
        f"**Goal (≥ {GOAL_SPEEDUP}× on Push and Quadruped), at load average {load_before:.1f}–"
        f"{load_after:.1f}: wall-clock met by {met_by('speedup')}; CPU-time capacity met by "
        f"{met_by('capacity')}.** Two independent single-env processes, the most any 2-process "
        f"vector env could get here: {listed(ceiling, 'speedup')}.",
        "",
    ]
    for kind, heavy in per_kind.items():
        lines.append(
            f"- {kind}: measured {listed(heavy, 'speedup')}; capacity {listed(heavy, 'capacity')}."
        )
    return lines
