"""A training run killed with SIGKILL at a random moment loses nothing.

``rlrobot train`` runs in a subprocess and is killed at a random moment after its first
checkpoint. The run folder must hold no half-written file; ``--resume`` must continue from the
last checkpoint and reach the same final step count, and the same final weights as a run that
was never interrupted. The run must write nothing outside its folder.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import signal
import time

import torch

from rlrobot.common.checkpoint import load_checkpoint
from rlrobot.run.config import resolve_config
from rlrobot.run.folder import RunFolder, check_run_folder, read_run_state
from rlrobot.run.training import train
from tests.reliability.small_runs import make_small_agent, start_cli

ENV_ID, ALGO, SEED = "rlrobot/CartPole-v0", "ppo", 4
STEPS, CHECKPOINT_FREQ = 1536, 256
OVERRIDES = [
    "n_envs=2",
    "n_steps=32",
    "batch_size=64",
    "n_epochs=2",
    f"checkpoint_freq={CHECKPOINT_FREQ}",
    "eval_freq=512",
    "eval_episodes=2",
]
KILL_SEED = 9  # which checkpoint the kill follows and how long after; printed on failure
TIMEOUT_S = 300


def _train_arguments() -> list:
    sets = [item for override in OVERRIDES for item in ("--set", override)]
    return ["train", "--env", ENV_ID, "--algo", ALGO, "--seed", SEED, "--steps", STEPS, *sets]


def _latest_step(run) -> int:
    try:
        return json.loads((run / "latest" / "run_state.json").read_text())["num_timesteps"]
    except (OSError, ValueError, KeyError):
        return 0


def _wait(process, timeout_s: float = TIMEOUT_S) -> int:
    try:
        return process.wait(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()


def _files_outside(root, allowed) -> list[str]:
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not any(path.is_relative_to(folder) for folder in allowed)
    )


def _csv_steps(path) -> list[float]:
    with path.open(newline="") as file:
        return [float(row["step"]) for row in csv.DictReader(file)]


def test_sigkill_at_a_random_moment_then_resume_loses_nothing(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    run = work / "run"
    rng = random.Random(KILL_SEED)
    # Kill after a checkpoint drawn at random, a random fraction of a checkpoint period later:
    # anywhere in a rollout, an update, an evaluation or the writing of a checkpoint. The
    # period is measured on this run, so the kill lands before the end on fast and slow
    # machines alike (at least two periods remain).
    kill_after_step = rng.randrange(
        2 * CHECKPOINT_FREQ, STEPS - 2 * CHECKPOINT_FREQ + 1, CHECKPOINT_FREQ
    )
    delay_fraction = rng.uniform(0.0, 1.0)
    process = start_cli(*_train_arguments(), "--out", "run", cwd=work)
    deadline = time.monotonic() + TIMEOUT_S
    first_seen: dict[int, float] = {}
    while (step := _latest_step(run)) < kill_after_step and process.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        if step:  # step 0 would count the start-up as part of a period
            first_seen.setdefault(step, time.monotonic())
        time.sleep(0.01)
    first_seen.setdefault(_latest_step(run), time.monotonic())
    (previous_step, previous_time), (last_step, last_time) = sorted(first_seen.items())[-2:]
    period_s = (last_time - previous_time) * CHECKPOINT_FREQ / (last_step - previous_step)
    delay_s = delay_fraction * period_s
    time.sleep(delay_s)
    assert process.poll() is None, f"the run ended before the kill ({kill_after_step}, {delay_s})"
    process.send_signal(signal.SIGKILL)
    assert _wait(process) == -signal.SIGKILL
    killed_at = _latest_step(run)
    assert CHECKPOINT_FREQ <= killed_at < STEPS

    damaged, _ = check_run_folder(run)
    assert damaged == [], f"half-written files after the kill: {damaged}"
    # What a kill inside a write leaves behind (whatever this kill hit) goes on resume.
    (run / ".progress.csv.k1ll3d.tmp").write_text("step,rollout/ep")
    (run / "checkpoints" / ".step_0000099999.tmp").mkdir()

    assert _wait(start_cli("train", "--out", "run", "--resume", cwd=work)) == 0, (
        work / "cli.log"
    ).read_text()[-3000:]
    damaged, temporaries = check_run_folder(run)
    assert damaged == [] and [t for t in temporaries if "tfevents" not in t] == []
    assert _latest_step(run) == STEPS
    assert _csv_steps(run / "evaluations.csv") == [512.0, 1024.0, 1536.0]
    assert _files_outside(tmp_path, [run, work / "cli.log"]) == []

    # The resumed run ends exactly where a run that was never killed ends, with the same logs.
    resolved = resolve_config(
        ALGO, ENV_ID, SEED, overrides=OVERRIDES, explicit={"n_timesteps": STEPS}
    )
    uninterrupted = train(resolved, tmp_path / "uninterrupted", progress_bar=False)
    expected, _ = load_checkpoint(uninterrupted.latest_path)
    actual, _ = load_checkpoint(run / "latest")
    assert expected.keys() == actual.keys()
    for key in expected:
        if key.startswith("policy/"):
            assert torch.equal(expected[key], actual[key]), key
    for name in ("progress.csv", "evaluations.csv"):
        assert _csv_steps(run / name) == _csv_steps(uninterrupted.path / name), name


def _run_state(step: int) -> dict:
    return {"num_timesteps": step, "episode_tracker": {}, "best_mean_reward": float(step)}


def test_resume_finishes_a_directory_swap_cut_between_its_renames(tmp_path):
    """A kill between ``best → .best.old`` and ``.best.tmp → best`` must not lose ``best``."""
    agent = make_small_agent(ALGO, env=ENV_ID)
    agent.env.close()
    folder = RunFolder(tmp_path / "run")
    for broken_new_copy, expected_step in ((False, 2), (True, 1)):
        shutil.rmtree(folder.path, ignore_errors=True)
        folder.save_best(agent, _run_state(1))
        folder.save_best(agent, _run_state(2))
        staged, displaced = folder.path / ".best.tmp", folder.path / ".best.old"
        shutil.copytree(folder.best_path, staged)  # the new copy, staged
        shutil.copytree(folder.best_path, displaced)  # the old copy, renamed away
        (displaced / "run_state.json").write_text(json.dumps(_run_state(1)))
        shutil.rmtree(folder.best_path)  # killed between the two renames
        if broken_new_copy:
            (staged / "metadata.json").unlink()  # killed while the new copy was written
        folder.remove_temporaries()
        assert read_run_state(folder.best_path)["num_timesteps"] == expected_step
        assert not staged.exists() and not displaced.exists()
        assert check_run_folder(folder.path) == ([], [])
