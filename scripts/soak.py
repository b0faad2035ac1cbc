"""Soak test: the long versions of the reliability suite → docs/benchmarks/soak.json.

Sections (each can be run alone with ``--only``):

- ``cycles``: 1,000 make/step/close cycles over every env id; current resident memory, open
  file descriptors and the lowest free PyBullet client id before and after.
- ``rollout``: a 1M-step random rollout of ``rlrobot/CartPole-v0`` and a shorter one of every
  robot env; memory and client id sampled along the way.
- ``fuzz``: extreme domain randomisation and extreme actions in every env; counts of steps,
  episodes, non-finite observations or rewards, and diverged (``sim_error``) episodes.
- ``kills``: ``rlrobot train`` subprocesses killed with SIGKILL at random moments and resumed
  until done; every run folder is checked for half-written files after every kill, and the
  final checkpoint is compared with a run that was never killed.
- ``threads``: every algorithm trained with 1 and 2 torch threads, twice each; are returns and
  checkpoint bytes identical within and across thread counts?

    python scripts/soak.py                    # everything (~30 min on 2 shared cores)
    python scripts/soak.py --quick            # small numbers, prints only
    python scripts/soak.py --only kills --kills 20
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlrobot
from rlrobot.agents import ALGORITHMS
from rlrobot.common.checkpoint import load_checkpoint
from rlrobot.envs.stress import EXTREME_RANDOMIZATION, extreme_actions
from rlrobot.run.config import resolve_config
from rlrobot.run.folder import check_run_folder
from rlrobot.run.training import train
from rlrobot.sim import Simulation

REPOSITORY = Path(__file__).resolve().parents[1]
OUT = REPOSITORY / "docs" / "benchmarks" / "soak.json"
# The training runs that are killed: (algo, env id, --set overrides, steps).
KILLED_RUNS = [
    (
        "ppo",
        "rlrobot/CartPole-v0",
        ["n_envs=2", "n_steps=32", "batch_size=64", "n_epochs=2", "normalize_observations=true"],
        4096,
    ),
    (
        "sac",
        "rlrobot/CartPoleContinuous-v0",
        ["n_envs=2", "net_arch=[32, 32]", "batch_size=32", "learning_starts=64"],
        1536,
    ),
]
CHECKPOINT_FREQ = 256
RUN_SETTINGS = [
    f"checkpoint_freq={CHECKPOINT_FREQ}",
    "eval_freq=512",
    "eval_episodes=2",
    "keep_checkpoints=2",
]
SMALL_CONFIGS = {
    "reinforce": {"n_steps": 32},
    "a2c": {"n_steps": 8},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "sac": {"learning_starts": 32, "batch_size": 16, "net_arch": [32, 32]},
    "td3": {"learning_starts": 32, "batch_size": 16, "net_arch": [32, 32]},
}


def resident_mb() -> float:
    """Current resident memory of this process (MiB)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_files() -> int:
    """Number of open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def lowest_free_client_id() -> int:
    """PyBullet hands out the lowest free client id: a leaked client pushes it up."""
    probe = Simulation()
    probe.close()
    return probe.client_id


def resources() -> dict[str, float]:
    """Memory, file descriptors and the lowest free physics client id, after a collection."""
    gc.collect()
    return {
        "rss_mb": round(resident_mb(), 1),
        "fds": open_files(),
        "client": lowest_free_client_id(),
    }


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
    """A random-action rollout of ``n_steps``; resources sampled ten times after a warm-up."""
    env = gym.make(env_id)
    env.reset(seed=0)
    warm_up = min(5_000, n_steps // 10)
    samples, episodes = [], 0
    start = time.perf_counter()
    for step in range(n_steps):
        if step == warm_up or (step > warm_up and step % (n_steps // 10) == 0):
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
    """Extreme randomisation and actions for ``n_steps``; count what went wrong."""
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


def cli(arguments: list[Any], cwd: Path) -> subprocess.Popen:
    """Start ``python -m rlrobot.cli`` with one torch thread, output appended to cli.log."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])
    )
    log = (cwd / "cli.log").open("ab")
    command = [sys.executable, "-m", "rlrobot.cli", *map(str, arguments)]
    return subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT)


def latest_step(run: Path) -> int:
    """``num_timesteps`` of the run's latest checkpoint (0 if none yet)."""
    try:
        return json.loads((run / "latest" / "run_state.json").read_text())["num_timesteps"]
    except (OSError, ValueError, KeyError):
        return 0


def soak_kills(
    algo: str,
    env_id: str,
    overrides: list[str],
    steps: int,
    n_kills: int,
    seed: int,
    work: Path,
) -> dict[str, Any]:
    """Kill a training run ``n_kills`` times at random moments, resuming after each kill.

    Kill ``i`` comes 0–1 s after the run's latest checkpoint reaches a step drawn at random
    from the ``i``-th of ``n_kills`` equal stretches of the run (so kills land all along it:
    in a rollout, an update, an evaluation, a checkpoint being written, the final plot), or,
    one time in five, 0–4 s after the process starts (imports, config, first rollout).
    """
    rng = random.Random(seed)
    run = work / f"{algo}-run"
    sets = [item for override in [*overrides, *RUN_SETTINGS] for item in ("--set", override)]
    first = ["train", "--env", env_id, "--algo", algo, "--seed", seed, "--steps", steps, *sets]
    kill_steps: list[int] = []
    damaged: list[str] = []
    temporaries: list[str] = []
    while True:
        arguments = first if not (run / "config.yaml").exists() else ["train", "--resume"]
        process = cli([*arguments, "--out", run.name, "--no-progress"], work)
        kill = len(kill_steps)
        if kill == n_kills:
            exit_code = process.wait()
            break
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 4.0))
        else:
            target = rng.uniform(kill * steps / n_kills, (kill + 1) * steps / n_kills)
            while latest_step(run) < target and process.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 1.0))
        if process.poll() is not None:
            exit_code = process.returncode
            break  # finished before the kill
        process.send_signal(signal.SIGKILL)
        process.wait()
        kill_steps.append(latest_step(run))
        found, temporary = check_run_folder(run) if run.exists() else ([], [])
        damaged += found
        temporaries += [f"kill {kill + 1}: {name}" for name in temporary]
    final_damaged, final_temporaries = check_run_folder(run)
    resolved = resolve_config(
        algo, env_id, seed, overrides=[*overrides, *RUN_SETTINGS], explicit={"n_timesteps": steps}
    )
    reference = train(resolved, work / f"{algo}-uninterrupted", progress_bar=False)
    expected, _ = load_checkpoint(reference.latest_path)
    actual, _ = load_checkpoint(run / "latest")
    same_weights = expected.keys() == actual.keys() and all(
        torch.equal(expected[key], actual[key]) for key in expected
    )
    return {
        "algo": algo,
        "env_id": env_id,
        "steps": steps,
        "kills": len(kill_steps),
        "checkpoint_step_at_kill": kill_steps,
        "final_exit_code": exit_code,
        "final_step": latest_step(run),
        "damaged_files_after_kills": damaged,
        "temporaries_seen_after_kills": temporaries,
        "damaged_files_at_end": final_damaged,
        "temporaries_at_end": final_temporaries,
        "final_checkpoint_equals_uninterrupted_run": same_weights,
    }


def train_small(
    algo: str, seed: int, threads: int, path: Path
) -> tuple[list[float], str, dict[str, torch.Tensor]]:
    """Train the small test agent with ``threads`` torch threads; returns, sha and tensors."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        agent = ALGORITHMS[algo](
            "rlrobot/CartPoleContinuous-v0",
            n_envs=2,
            seed=seed,
            device="cpu",
            normalize_observations=True,
            **SMALL_CONFIGS[algo],
        )
        agent.learn(512)
        agent.save(path)
        agent.env.close()
    finally:
        torch.set_num_threads(previous)
    tensors, metadata = load_checkpoint(path)
    return list(agent.episode_tracker.recent_returns), metadata["tensors_sha256"], tensors


def soak_threads(work: Path) -> list[dict[str, Any]]:
    """Train every algorithm twice with 1 and twice with 2 torch threads; compare."""
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


def main() -> None:
    """Run the chosen sections, print their results and write them as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", nargs="+", choices=("cycles", "rollout", "fuzz", "kills", "threads")
    )
    parser.add_argument("--cycles", type=int, default=1_000)
    parser.add_argument("--rollout-steps", type=int, default=1_000_000)
    parser.add_argument("--robot-rollout-steps", type=int, default=50_000)
    parser.add_argument("--fuzz-steps", type=int, default=5_000)
    parser.add_argument("--kills", type=int, default=10, help="kills per killed run")
    parser.add_argument("--quick", action="store_true", help="small numbers; print, write nothing")
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.rollout_steps, args.robot_rollout_steps = 60, 20_000, 2_000
        args.fuzz_steps, args.kills = 300, 2
    torch.set_num_threads(1)
    sections = args.only or ["cycles", "rollout", "fuzz", "kills", "threads"]
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "command": " ".join(sys.argv),
    }
    with tempfile.TemporaryDirectory(prefix="rlrobot-soak-") as temporary:
        work = Path(temporary)
        if "cycles" in sections:
            results["cycles"] = soak_cycles(args.cycles)
            print(
                "cycles", {k: v for k, v in results["cycles"].items() if k != "samples"}, flush=True
            )
        if "rollout" in sections:
            results["rollout"] = [soak_rollout("rlrobot/CartPole-v0", args.rollout_steps)] + [
                soak_rollout(env_id, args.robot_rollout_steps) for env_id in rlrobot.ENV_IDS[2:]
            ]
            for row in results["rollout"]:
                print("rollout", {k: v for k, v in row.items() if k != "samples"}, flush=True)
        if "fuzz" in sections:
            results["fuzz"] = [soak_fuzz(env_id, args.fuzz_steps) for env_id in rlrobot.ENV_IDS]
            for row in results["fuzz"]:
                print("fuzz", row, flush=True)
        if "kills" in sections:
            results["kills"] = [
                soak_kills(algo, env_id, overrides, steps, args.kills, seed, work)
                for seed, (algo, env_id, overrides, steps) in enumerate(KILLED_RUNS)
            ]
            for row in results["kills"]:
                print("kills", row, flush=True)
        if "threads" in sections:
            results["threads"] = soak_threads(work)
            for row in results["threads"]:
                print("threads", row, flush=True)
    if not args.quick:
        previous = json.loads(OUT.read_text()) if OUT.exists() else {}
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps({**previous, **results}, indent=1) + "\n")
        print(f"wrote {OUT.relative_to(REPOSITORY)}")


if __name__ == "__main__":
    main()
