"""Small agents and run commands shared by the reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rlrobot.agents import ALGORITHMS, BaseAgent

# Every algorithm runs on this env: a Box action (SAC and TD3 need one) and fast physics.
ALGORITHM_ENV = "rlrobot/CartPoleContinuous-v0"
# Budgets that update every network at least once within a few hundred env steps.
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    "reinforce": {"n_steps": 32},
    "a2c": {"n_steps": 8},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "sac": {"learning_starts": 32, "batch_size": 16, "net_arch": [32, 32]},
    "td3": {"learning_starts": 32, "batch_size": 16, "net_arch": [32, 32]},
}
# The robot's own body in each env (what a forced divergence teleports).
ROBOT_BODIES = {
    "rlrobot/CartPole-v0": "cartpole",
    "rlrobot/CartPoleContinuous-v0": "cartpole",
    "rlrobot/Reach-v0": "panda",
    "rlrobot/Push-v0": "panda",
    "rlrobot/Navigate-v0": "racecar",
    "rlrobot/Quadruped-v0": "ant",
}
REPOSITORY = Path(__file__).resolve().parents[2]


def make_small_agent(algo: str, env: Any = ALGORITHM_ENV, **kwargs: Any) -> BaseAgent:
    """An agent of ``algo`` with the small test budget, on the CPU."""
    return ALGORITHMS[algo](env, device="cpu", **{**SMALL_CONFIGS[algo], **kwargs})


def cli_environment() -> dict[str, str]:
    """Environment of ``rlrobot`` subprocesses: one torch thread, no progress bar, this repo."""
    python_path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1", "PYTHONPATH": python_path}


def start_cli(*arguments: Any, cwd: Path) -> subprocess.Popen:
    """Start ``python -m rlrobot.cli ARGUMENTS`` in ``cwd``; output goes to ``cwd/cli.log``."""
    log = (cwd / "cli.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "rlrobot.cli", *map(str, arguments)],
        cwd=cwd,
        env=cli_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
