"""Envs study: the speed of the robot envs → ``envs.md`` and ``envs.json``.

For every env: steps/s with random actions, and the physics time inside those steps (the
``stepSimulation`` calls of each step, timed on the same client as they run). Their ratio is
the env's overhead: 1.0 would be pure physics. Comparable third-party PyBullet envs
(pybullet-envs-gymnasium, panda-gym) are measured the same way when importable, e.g. after
``pip install --no-deps --target /tmp/thirdparty pybullet-envs-gymnasium panda-gym scipy`` and
with ``PYTHONPATH=/tmp/thirdparty``. Single-env times are thread CPU times (robust on a shared
machine); vector-env speed-ups (``vector_speed``) are wall-clock, as parallelism needs, next to
the speed-up that the CPU times of workers and main process allow.

Parts (``rlrobot bench --study envs --only …``; each merges into the saved ``envs.json``):
``overhead``, ``third_party``, ``pixels``, ``vector`` and ``profile`` (cProfile of one env).
``--seeds N`` sets the repeats (fresh envs, seeds 0 … N-1; medians are reported) and
``--budget-scale`` the steps per measurement.
"""

from __future__ import annotations

import cProfile
import importlib.metadata
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import rlrobot
from rlrobot.benchmark.report import markdown_table, merge_results, write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.studies.vector_speed import (
    HEAVY_ENV_IDS,
    VECTOR_ENV_IDS,
    bench_vector,
    microseconds,
    vector_section,
)
from rlrobot.envs import RobotTaskEnv

PARTS = ("overhead", "third_party", "pixels", "vector", "profile")
STEPS = 3000  # env steps per measurement (a pixel measurement takes a tenth)
QUICK_STEPS = 300
PROFILE_ENV_ID = "rlrobot/Push-v0"
# Third-party counterparts: (our id, their id, the package that registers it).
THIRD_PARTY = [
    ("rlrobot/CartPoleContinuous-v0", "InvertedPendulumBulletEnv-v0", "pybullet_envs_gymnasium"),
    ("rlrobot/Reach-v0", "PandaReach-v3", "panda_gym"),
    ("rlrobot/Push-v0", "PandaPush-v3", "panda_gym"),
    ("rlrobot/Quadruped-v0", "AntBulletEnv-v0", "pybullet_envs_gymnasium"),
]


class PhysicsTimer:
    """Accumulates the thread CPU time spent in `stepSimulation` on one client.

    Args:
        calls_per_call: `stepSimulation` calls made by one call of the wrapped function.
    """

    def __init__(self, calls_per_call: int = 1) -> None:
        self.calls_per_call = calls_per_call
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, step: Callable[..., Any]) -> Callable[..., Any]:
        """A timed version of `step` (a bound `stepSimulation`-like callable)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            result = step(*args, **kwargs)
            self.seconds += time.thread_time() - start
            self.calls += self.calls_per_call
            return result

        return timed


def instrument(env: gym.Env) -> PhysicsTimer:
    """Time the physics of an rlrobot or third-party env by wrapping its stepSimulation."""
    unwrapped = env.unwrapped
    if isinstance(unwrapped, RobotTaskEnv):  # n_substeps calls per sim.step()
        timer = PhysicsTimer(unwrapped.sim.n_substeps)
        unwrapped.sim.step = timer.wrap(unwrapped.sim.step)
        return timer
    timer = PhysicsTimer()
    if hasattr(unwrapped, "sim"):  # panda-gym: a BulletClient in sim.physics_client
        bullet = unwrapped.sim.physics_client
    else:  # pybullet-envs-gymnasium: a BulletClient in _p, created at the first reset
        env.reset(seed=0)
        bullet = unwrapped._p
    bullet.stepSimulation = timer.wrap(bullet.stepSimulation)
    return timer


def time_rollout(env: gym.Env, n_steps: int, seed: int = 0) -> tuple[float, float, float]:
    """(CPU s per step, physics CPU s per step, stepSimulation calls per step) of a rollout."""
    timer = instrument(env)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(n_steps + 100)]
    for action in actions[:100]:  # warm-up
        if any(env.step(action)[2:4]):
            env.reset()
    timer.seconds, timer.calls = 0.0, 0
    start = time.thread_time()
    for action in actions[100:]:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    total = time.thread_time() - start
    return total / n_steps, timer.seconds / n_steps, timer.calls / n_steps


def median_rollout(make: Callable[[], gym.Env], n_steps: int, repeats: int) -> dict[str, float]:
    """Median over `repeats` fresh envs of the per-step times of `time_rollout`."""
    runs = []
    for repeat in range(repeats):
        env = make()
        runs.append(time_rollout(env, n_steps, seed=repeat))
        env.close()
    step, physics, calls = (statistics.median(values) for values in zip(*runs, strict=True))
    return {"step_s": step, "physics_s": physics, "calls": calls}


def bench_overhead(env_ids: list[str], n_steps: int, repeats: int) -> list[dict[str, Any]]:
    """Steps/s, physics and overhead ratio of every env (state observations)."""
    rows = []
    for env_id in env_ids:
        result = median_rollout(lambda env_id=env_id: gym.make(env_id), n_steps, repeats)
        rows.append({"id": env_id, **result})
        print(f"  {env_id}: {1 / result['step_s']:.0f} steps/s", file=sys.stderr)
    return rows


def bench_third_party(n_steps: int, repeats: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Ours and the comparable third-party env, alternated within each repeat (so both see
    the same machine load), medians of each; also the packages that are missing."""
    rows, missing = [], []
    for ours, theirs, package in THIRD_PARTY:
        try:
            __import__(package)
        except ImportError:
            missing.append(package)
            continue
        pair = [
            (
                median_rollout(lambda ours=ours: gym.make(ours), n_steps, 1),
                median_rollout(lambda theirs=theirs: gym.make(theirs), n_steps, 1),
            )
            for _ in range(repeats)
        ]
        mine, their = (
            {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            for runs in zip(*pair, strict=True)
        )
        rows.append({"ours": ours, "id": theirs, "package": package, "mine": mine, **their})
        print(
            f"  {ours} {1 / mine['step_s']:.0f} vs {theirs} {1 / their['step_s']:.0f}",
            file=sys.stderr,
        )
    return rows, sorted(set(missing))


def bench_pixels(env_ids: list[str], n_steps: int, repeats: int) -> list[dict[str, Any]]:
    """Frames/s of `obs_mode="pixels"` at 84×84 (fixed camera), and the render share."""
    rows = []
    for env_id in env_ids:
        renders: list[float] = []

        def make(env_id: str = env_id, renders: list[float] = renders) -> gym.Env:
            env = gym.make(env_id, obs_mode="pixels")
            get_pixels = env.unwrapped.get_pixels

            def timed() -> np.ndarray:
                start = time.thread_time()
                frame = get_pixels()
                renders.append(time.thread_time() - start)
                return frame

            env.unwrapped.get_pixels = timed
            return env

        result = median_rollout(make, n_steps, repeats)
        rows.append({"id": env_id, **result, "render_s": statistics.median(renders)})
        print(f"  {env_id} pixels: {1 / result['step_s']:.0f} frames/s", file=sys.stderr)
    return rows


def profile_step(env_id: str, n_steps: int) -> str:
    """cProfile of `n_steps` random steps: the functions with the most own time."""
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(n_steps)]
    profiler = cProfile.Profile()
    profiler.enable()
    for action in actions:
        if any(env.step(action)[2:4]):
            env.reset()
    profiler.disable()
    env.close()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:8]
    lines = ["| function | calls/step | own µs/step | share |", "|---|---|---|---|"]
    for (file_name, line, name), (_, calls, own, _, _) in rows:
        where = name if file_name == "~" else f"{Path(file_name).name}:{line} {name}"
        lines.append(
            f"| `{where}` | {calls / n_steps:.1f} | {own / n_steps * 1e6:.1f} | {own / total:.0%} |"
        )
    return "\n".join(lines)


def run_part(part: str, n_steps: int, repeats: int, command: str) -> dict[str, Any]:
    """Run one part of the study; return the results it adds to ``envs.json``."""
    print(part, file=sys.stderr)
    if part == "overhead":
        return {"overhead": bench_overhead(rlrobot.ENV_IDS, n_steps, repeats)}
    if part == "third_party":
        rows, missing = bench_third_party(n_steps, repeats)
        return {"third_party": rows, "missing": missing}
    if part == "pixels":
        return {"pixels": bench_pixels(rlrobot.ENV_IDS, max(100, n_steps // 10), repeats)}
    if part == "vector":
        before = os.getloadavg()[0]
        rows = bench_vector(list(VECTOR_ENV_IDS), n_steps, repeats)
        return {
            "vector": rows,
            "vector_load": (before, os.getloadavg()[0]),
            "vector_command": command,
            "vector_time": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        }
    return {
        "profile": profile_step(PROFILE_ENV_ID, min(n_steps, 2000)),
        "profile_id": PROFILE_ENV_ID,
    }


def main(options: StudyOptions) -> Path:
    """Run the chosen parts, merge them into ``envs.json`` and write ``envs.md`` in ``out_dir``.

    One repeat per seed (one with ``quick``); ``execution`` and ``trials_dir`` are not used:
    every measurement runs in this process (and the vector envs' own workers).
    """
    n_steps = max(1, round((QUICK_STEPS if options.quick else STEPS) * options.budget_scale))
    repeats = 1 if options.quick else len(options.seeds)
    results: dict[str, Any] = {
        "command": options.command,
        "settings": {"steps": n_steps, "repeats": repeats},
        "load": os.getloadavg()[0],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Its package version: only rlrobot.sim imports pybullet.
            "pybullet": importlib.metadata.version("pybullet"),
        },
    }
    for part in options.only or PARTS:
        results.update(run_part(part, n_steps, repeats, options.command))
    merge_results(options.out_dir / "envs.json", results)
    return rewrite_report(options.out_dir)


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of ``envs.md``: one section per part in ``results``."""
    machine, settings = results["machine"], results["settings"]
    lines = [
        "# Environment speed",
        "",
        f"Written by `rlrobot bench --study envs`; last run `{results['command']}` "
        f"({settings['steps']} steps per measurement, {settings['repeats']} repeat(s); parts not "
        "rerun keep their earlier results, and every number is in `envs.json`). Machine: "
        f"{machine['cpus']} CPU cores shared with other jobs (load average "
        f"{results['load']:.1f} at the start), Python {machine['python']}, PyBullet "
        f"{machine['pybullet']}. Single-env numbers are thread CPU time, the median of the "
        "repeats: steadier than wall-clock time, yet other jobs still move them through the "
        "shared caches (compare an env's rows in the first two tables, measured minutes "
        "apart). All ratios are measured in the same run.",
        "",
    ]
    if "overhead" in results:
        lines += [
            "## Env step vs raw physics (state observations, random actions)",
            "",
            "*physics* is the time inside the `stepSimulation` calls of each step, timed on the "
            "env's own client as they run (calls × their cost); *overhead* is everything else "
            "(action checks, control, observation, reward, wrappers; for Navigate also the "
            "lidar's ray casts, Bullet's own work). Goal: ratio ≤ 1.3 on the heavy robots "
            "(Push, Quadruped).",
            "",
            *markdown_table(
                [
                    "env",
                    "steps/s",
                    "µs/step",
                    "physics µs/step (calls)",
                    "overhead µs/step",
                    "ratio",
                ],
                [
                    [
                        f"`{row['id']}`" + (" (heavy)" if row["id"] in HEAVY_ENV_IDS else ""),
                        f"{1 / row['step_s']:.0f}",
                        microseconds(row["step_s"]),
                        f"{microseconds(row['physics_s'])} ({row['calls']:.0f})",
                        microseconds(row["step_s"] - row["physics_s"]),
                        f"{row['step_s'] / row['physics_s']:.2f}",
                    ]
                    for row in results["overhead"]
                ],
            ),
            "",
        ]
    if "third_party" in results:
        lines += third_party_section(results["third_party"], results["missing"])
    if "pixels" in results:
        lines += [
            '## Pixel observations (`obs_mode="pixels"`, 84×84, fixed camera)',
            "",
            *markdown_table(
                ["env", "frames/s", "µs/step", "render µs/frame"],
                [
                    [
                        f"`{row['id']}`",
                        f"{1 / row['step_s']:.0f}",
                        microseconds(row["step_s"]),
                        microseconds(row["render_s"]),
                    ]
                    for row in results["pixels"]
                ],
            ),
            "",
        ]
    if "vector" in results:
        lines += [*vector_section(results), ""]
    if "profile" in results:
        lines += [
            f"## Where a step's time goes (cProfile, `{results['profile_id']}`)",
            "",
            "Profiled time includes cProfile's own cost per Python call, so Python looks larger "
            "than it is; the physics share above is the unprofiled one.",
            "",
            results["profile"],
            "",
        ]
    return "\n".join(lines)


def third_party_section(rows: list[dict[str, Any]], missing: list[str]) -> list[str]:
    """Return the section that compares our envs with third-party PyBullet envs."""
    lines = ["## Against comparable third-party PyBullet envs", ""]
    if rows:
        lines += [
            "Ours and theirs alternate within each repeat, so both see the same machine load. "
            "Their physics settings differ from ours (panda-gym: 20 substeps of 1/500 s per "
            "step; pybullet-envs: 4 substeps of 1/240 s with self-collision), so total "
            "µs/step compares the whole envs and *overhead µs/step* compares the env code "
            "around the same kind of physics.",
            "",
            *markdown_table(
                ["ours", "µs/step", "overhead µs/step", "theirs", "µs/step", "overhead µs/step"],
                [
                    [
                        f"`{row['ours']}`",
                        microseconds(row["mine"]["step_s"]),
                        microseconds(row["mine"]["step_s"] - row["mine"]["physics_s"]),
                        f"`{row['id']}` ({row['package']})",
                        microseconds(row["step_s"]),
                        microseconds(row["step_s"] - row["physics_s"]),
                    ]
                    for row in rows
                ],
            ),
        ]
    if missing:
        lines += [""] * bool(rows) + [f"Not installed, so not measured: {', '.join(missing)}."]
    return [*lines, ""]


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/envs.md`` from ``out_dir/envs.json``; return its path."""
    results = json.loads((out_dir / "envs.json").read_text())
    return write_keeping_findings(out_dir / "envs.md", render_markdown(results))
