"""The soak's ``kills`` part: ``rlrobot train`` killed with SIGKILL and resumed until done.

Every run folder is checked for half-written files after every kill, and the final checkpoint
is compared with that of the same run never killed. Its own module because it alone drives
the CLI in subprocesses.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import rlrobot
from rlrobot.common.checkpoint import load_checkpoint
from rlrobot.errors import CheckpointError, ConfigError
from rlrobot.run.config import resolve_config
from rlrobot.run.folder import check_run_folder
from rlrobot.run.lock import LOCK_FILE
from rlrobot.run.training import train

# The folder that holds the rlrobot package: the killed `rlrobot train` runs import it too.
PACKAGE_ROOT = Path(rlrobot.__file__).resolve().parents[1]
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


def rlrobot_command() -> str:
    """Return this environment's ``rlrobot`` command (``ConfigError`` if it is not installed).

    The kills run the program as users do: a study, a layer below the CLI, never names its module.
    """
    command = shutil.which("rlrobot", path=str(Path(sys.executable).parent))
    if command is None:
        raise ConfigError(f"the soak's kills run `rlrobot`, not found next to {sys.executable}")
    return command


def start_cli(arguments: Sequence[Any], cwd: Path) -> subprocess.Popen:
    """Start ``rlrobot ARGUMENTS`` with one torch thread, output appended to cli.log."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])
    )
    log = (cwd / "cli.log").open("ab")
    command = [rlrobot_command(), *map(str, arguments)]
    return subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT)


def latest_step(run: Path) -> int:
    """Return ``num_timesteps`` of the run's latest checkpoint (0 if none yet)."""
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
        process = start_cli([*arguments, "--out", run.name, "--no-progress"], work)
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
        # Every SIGKILL leaves its run.lock (stale, taken over by the resume): not a write cut.
        temporaries += [
            f"kill {kill + 1}: {name}" for name in temporary if not name.startswith(LOCK_FILE)
        ]
        if kill_steps[-1] >= steps:
            # Killed after its final checkpoint (plotting, exiting): trained, and a resume
            # would be refused as already at its budget, so no process runs at the end.
            exit_code = None
            break
    final_damaged, final_temporaries = check_run_folder(run)
    resolved = resolve_config(
        algo, env_id, seed, overrides=[*overrides, *RUN_SETTINGS], explicit={"n_timesteps": steps}
    )
    reference = train(resolved, work / f"{algo}-uninterrupted", progress_bar=False)
    expected, _ = load_checkpoint(reference.latest_path)
    try:
        actual, _ = load_checkpoint(run / "latest")
    except CheckpointError:  # the resumed run failed: its exit code is in the row
        actual = {}
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
