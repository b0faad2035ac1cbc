"""Soak study: the long versions of the reliability suite → ``soak.json`` and ``soak.md``.

Parts (``rlrobot bench --study soak --only …``; each merges into the saved ``soak.json``):

- ``cycles``: make/step/close cycles over every env id; resident memory, open file
  descriptors and the lowest free PyBullet client id before and after.
- ``rollout``: a 1M-step random rollout of ``LONG_ROLLOUT_ENV_ID`` and a shorter one of one
  env id per other env class; memory and client id sampled along the way.
- ``fuzz``: extreme domain randomisation and extreme actions in every env; counts of steps,
  episodes, non-finite observations or rewards, and diverged (``sim_error``) episodes.
- ``kills`` (``soak_kills``): ``rlrobot train`` subprocesses killed with SIGKILL at random
  moments and resumed until done; every run folder is checked for half-written files after
  every kill, and the final checkpoint is compared with a run that was never killed.
- ``threads``: every algorithm trained with 1 and 2 torch threads, twice each; are returns and
  checkpoint bytes identical within and across thread counts?

``docs/reliability.md`` is the page that reads these numbers; ``soak.md`` holds their tables.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlrobot
from rlrobot.agents import ALGORITHMS
from rlrobot.benchmark.report import markdown_table, merge_results, write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.studies.soak_kills import KILLED_RUNS, soak_kills
from rlrobot.common.checkpoint import load_checkpoint
from rlrobot.envs.stress import EXTREME_RANDOMIZATION, extreme_actions
from rlrobot.sim import Simulation

# The cheapest env (a 1M-step rollout takes minutes): the long rollout runs on it.
LONG_ROLLOUT_ENV_ID = "rlrobot/CartPole-v0"
COUNTS = {
    "full": {
        "cycles": 1_000,
        "rollout_steps": 1_000_000,
        "short_rollout_steps": 50_000,
        "fuzz_steps": 5_000,
        "kills": 10,
    },
    "quick": {
        "cycles": 60,
        "rollout_steps": 20_000,
        "short_rollout_steps": 2_000,
        "fuzz_steps": 300,
        "kills": 2,
    },
}
SMALL_CONFIGS = {
    "reinforce": {"n_steps": 32},
    "a2c": {"n_steps": 8},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "sac": {"learning_starts": 32, "batch_size": 16, "net_arch": [32, 32]},
    "td3": {"learning_starts": 32, "batch_size": 16, "net_arch": [32, 32]},
}
PARTS = ("cycles", "rollout", "fuzz", "kills", "threads")


def resources() -> dict[str, float]:
    """Return resident memory (MiB), open file descriptors and the lowest free physics client
    id (PyBullet hands out the lowest: a leaked client raises it), after a collection."""
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    probe = Simulation()
    probe.close()
    return {
        "rss_mb": round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1),
        "fds": len(os.listdir("/proc/self/fd")),
        "client": probe.client_id,
    }


def short_rollout_env_ids() -> list[str]:
    """Return one env id per env class (entry point) other than the long rollout's env's.

    Ids of one class share their code (``CartPoleContinuous`` is ``CartPole`` with another
    action space), so one of them is enough for a memory soak.
    """
    by_class: dict[str, str] = {}
    for env_id in sorted(rlrobot.ENV_IDS):
        by_class.setdefault(gym.spec(env_id).entry_point, env_id)
    long_class = gym.spec(LONG_ROLLOUT_ENV_ID).entry_point
    return [env_id for entry_point, env_id in sorted(by_class.items()) if entry_point != long_class]


def soak_cycles(n_cycles: int) -> dict[str, Any]:
    """Make, reset, step 3 times and close every env id in turn, ``n_cycles`` times."""
    ids = rlrobot.ENV_IDS

    def cycle(index: int) -> None:
        env = gym.make(ids[index % len(ids)])
        env.reset(seed=index)
        for _ in range(3):
            env.step(env.action_space.sample())
        env.close()

    for index in range(3 * len(ids)):  # warm-up
        cycle(index)
    samples = [{"cycle": 0, **resources()}]
    start = time.perf_counter()
    for index in range(n_cycles):
        cycle(index)
        if (index + 1) % max(1, n_cycles // 10) == 0:
            samples.append({"cycle": index + 1, **resources()})
    return {
        "cycles": n_cycles,
        "seconds": round(time.perf_counter() - start, 1),
        "rss_growth_mb": round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 1),
        "fds_growth": samples[-1]["fds"] - samples[0]["fds"],
        "client_growth": samples[-1]["client"] - samples[0]["client"],
        "samples": samples,
    }


def soak_rollout(env_id: str, n_steps: int) -> dict[str, Any]:
    """Run a random-action rollout of ``n_steps``; resources sampled ten times after warm-up."""
    env = gym.make(env_id)
    env.reset(seed=0)
    warm_up = min(5_000, n_steps // 10)
    samples, episodes = [], 0
    start = time.perf_counter()
    for step in range(n_steps):
        if step == warm_up or (step > warm_up and step % max(1, n_steps // 10) == 0):
            samples.append({"step": step, **resources()})
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            episodes += 1
    samples.append({"step": n_steps, **resources()})
    env.close()
    return {
        "env_id": env_id,
        "steps": n_steps,
        "episodes": episodes,
        "seconds": round(time.perf_counter() - start, 1),
        "rss_growth_mb": round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 1),
        "client_growth": samples[-1]["client"] - samples[0]["client"],
        "samples": samples,
    }


def soak_fuzz(env_id: str, n_steps: int, seed: int = 0) -> dict[str, Any]:
    """Drive an env with extreme randomisation and actions for ``n_steps``; count failures."""
    env = gym.make(env_id, randomization=EXTREME_RANDOMIZATION)
    actions = extreme_actions(env.action_space, np.random.default_rng(seed))
    env.reset(seed=seed)
    counts = {"steps": 0, "episodes": 0, "non_finite": 0, "sim_errors": 0}

    def finite(observation: Any) -> bool:
        values = observation.values() if isinstance(observation, dict) else [observation]
        return all(np.isfinite(value).all() for value in values)

    for _ in range(n_steps):
        observation, reward, terminated, truncated, info = env.step(next(actions))
        counts["steps"] += 1
        counts["non_finite"] += not (finite(observation) and np.isfinite(reward))
        counts["sim_errors"] += "sim_error" in info
        if terminated or truncated:
            observation, _ = env.reset()
            counts["non_finite"] += not finite(observation)
            counts["episodes"] += 1
    env.close()
    return {"env_id": env_id, **counts}


def train_small(
    algo: str, seed: int, threads: int, path: Path
) -> tuple[list[float], str, dict[str, torch.Tensor]]:
    """Train the small test agent with ``threads`` torch threads; return returns, sha, tensors."""
    agent = ALGORITHMS[algo](
        "rlrobot/CartPoleContinuous-v0",
        n_envs=2,
        seed=seed,
        device="cpu",
        torch_threads=threads,
        normalize_observations=True,
        **SMALL_CONFIGS[algo],
    )
    agent.learn(512)
    agent.save(path)
    agent.env.close()
    tensors, metadata = load_checkpoint(path)
    return list(agent.episode_tracker.recent_returns), metadata["tensors_sha256"], tensors


def soak_threads(work: Path) -> list[dict[str, Any]]:
    """Train every algorithm twice with 1 and twice with 2 torch threads; compare them."""
    rows = []
    for algo in sorted(ALGORITHMS):
        runs = {
            (threads, repeat): train_small(algo, 7, threads, work / f"{algo}-{threads}-{repeat}")
            for threads in (1, 2)
            for repeat in range(2)
        }
        one, two = runs[(1, 0)], runs[(2, 0)]
        weights = [key for key in one[2] if not key.startswith("state/")]
        rows.append(
            {
                "algo": algo,
                "1_thread_repeatable": runs[(1, 0)][1] == runs[(1, 1)][1],
                "2_threads_repeatable": runs[(2, 0)][1] == runs[(2, 1)][1],
                "1_vs_2_threads_identical": one[1] == two[1],
                "1_vs_2_threads_same_returns": one[0] == two[0],
                "1_vs_2_max_weight_difference": max(
                    float((one[2][key].float() - two[2][key].float()).abs().max())
                    for key in weights
                ),
            }
        )
    return rows


def run_part(part: str, counts: dict[str, int], work: Path) -> Any:
    """Run one part of the study with these counts; return its results."""
    if part == "cycles":
        return soak_cycles(counts["cycles"])
    if part == "rollout":
        return [soak_rollout(LONG_ROLLOUT_ENV_ID, counts["rollout_steps"])] + [
            soak_rollout(env_id, counts["short_rollout_steps"])
            for env_id in short_rollout_env_ids()
        ]
    if part == "fuzz":
        return [soak_fuzz(env_id, counts["fuzz_steps"]) for env_id in rlrobot.ENV_IDS]
    if part == "kills":
        return [
            soak_kills(algo, env_id, overrides, steps, counts["kills"], seed, work)
            for seed, (algo, env_id, overrides, steps) in enumerate(KILLED_RUNS)
        ]
    return soak_threads(work)


def main(options: StudyOptions) -> Path:
    """Run the chosen parts, merge them into ``soak.json`` and write ``soak.md`` in ``out_dir``.

    ``budget_scale`` scales every count (cycles, steps, kills); seeds, execution and
    ``trials_dir`` are not used: the parts run in this process, their run folders in a
    temporary folder.
    """
    counts = {
        key: max(1, round(value * options.budget_scale))
        for key, value in COUNTS["quick" if options.quick else "full"].items()
    }
    torch.set_num_threads(1)
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "command": options.command,
    }
    with tempfile.TemporaryDirectory(prefix="rlrobot-soak-") as temporary:
        for part in options.only or PARTS:
            results[part] = run_part(part, counts, Path(temporary))
            print(part, "done", flush=True)
    merge_results(options.out_dir / "soak.json", results)
    return rewrite_report(options.out_dir)


def _or_dash(value: Any) -> Any:
    return "—" if value is None else value


def _yes_no(key: str) -> Any:
    return lambda row: "yes" if row[key] else "no"


# Per part: its heading and its table's columns, (header, cell of a result row).
TABLES: dict[str, tuple[str, list[tuple[str, Any]]]] = {
    "cycles": (
        "Make/step/close cycles over every env id",
        [
            ("cycles", lambda row: f"{row['cycles']:,}"),
            ("seconds", lambda row: row["seconds"]),
            ("memory growth MiB", lambda row: row["rss_growth_mb"]),
            ("file descriptors", lambda row: f"{row['fds_growth']:+d}"),
            ("physics client ids", lambda row: f"{row['client_growth']:+d}"),
        ],
    ),
    "rollout": (
        "Random-action rollouts",
        [
            ("env", lambda row: f"`{row['env_id']}`"),
            ("steps", lambda row: f"{row['steps']:,}"),
            ("episodes", lambda row: f"{row['episodes']:,}"),
            ("seconds", lambda row: row["seconds"]),
            ("memory growth MiB", lambda row: row["rss_growth_mb"]),
            ("physics client ids", lambda row: f"{row['client_growth']:+d}"),
        ],
    ),
    "fuzz": (
        "Extreme randomisation and actions",
        [
            ("env", lambda row: f"`{row['env_id']}`"),
            ("steps", lambda row: f"{row['steps']:,}"),
            ("episodes", lambda row: row["episodes"]),
            ("non-finite observations or rewards", lambda row: row["non_finite"]),
            ("`sim_error` episodes", lambda row: row["sim_errors"]),
        ],
    ),
    "kills": (
        "SIGKILL and `rlrobot train --resume`",
        [
            ("run", lambda row: f"{row['algo']} `{row['env_id']}`"),
            ("steps", lambda row: f"{row['steps']:,}"),
            ("kills", lambda row: row["kills"]),
            ("checkpoint step at each kill", lambda row: str(row["checkpoint_step_at_kill"])),
            (
                "exit code (—: killed after the last checkpoint), final step",
                lambda row: f"{_or_dash(row['final_exit_code'])}, {row['final_step']}",
            ),
            (
                "half-written files",
                lambda row: len(row["damaged_files_after_kills"] + row["damaged_files_at_end"]),
            ),
            ("temporaries seen", lambda row: len(row["temporaries_seen_after_kills"])),
            ("same weights as unkilled", _yes_no("final_checkpoint_equals_uninterrupted_run")),
        ],
    ),
    "threads": (
        "1 vs 2 torch threads",
        [
            ("algorithm", lambda row: row["algo"]),
            ("1 thread repeatable", _yes_no("1_thread_repeatable")),
            ("2 threads repeatable", _yes_no("2_threads_repeatable")),
            ("1 = 2 bit for bit", _yes_no("1_vs_2_threads_identical")),
            ("same returns", _yes_no("1_vs_2_threads_same_returns")),
            ("largest weight difference", lambda row: f"{row['1_vs_2_max_weight_difference']:.2g}"),
        ],
    ),
}


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of ``soak.md``: one table per part in ``results``."""
    machine = results["machine"]
    lines = [
        "# Soak: the long reliability runs",
        "",
        f"Written by `rlrobot bench --study soak`; last run `{results['command']}` (parts not "
        "rerun keep their earlier results); every number is in `soak.json`. Machine: "
        f"{machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}, torch "
        f"{machine['torch']}. What the suite and the soak try, and why, is in "
        "[../reliability.md](../reliability.md).",
        "",
    ]
    for part, (heading, columns) in TABLES.items():
        if part in results:
            rows = results[part] if isinstance(results[part], list) else [results[part]]
            cells = [[cell(row) for _, cell in columns] for row in rows]
            lines += [f"## {heading}", "", *markdown_table([h for h, _ in columns], cells), ""]
    return "\n".join(lines)


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/soak.md`` from ``out_dir/soak.json``; return its path."""
    results = json.loads((out_dir / "soak.json").read_text())
    return write_keeping_findings(out_dir / "soak.md", render_markdown(results))
