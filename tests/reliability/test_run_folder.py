"""One writer per run folder, and kills at the edges of a run (issue #20, classes 4 and 5).

A second ``rlrobot train`` (new or ``--resume``) into a folder that a run is writing is
refused at once, naming the holder; a lock left by a killed run is taken over. A kill before
the first checkpoint, or inside any atomic write, leaves only names that match
``TEMPORARY_PATTERN``: ``check_run_folder`` reports them and ``--resume`` removes them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rlrobot.cli import main
from rlrobot.common.files import TEMPORARY_PATTERN, atomic_output, temporary_path
from rlrobot.run.folder import RunFolder, check_run_folder
from rlrobot.run.lock import LOCK_FILE, lock_state

from .small_runs import ALGORITHM_ENV, cli_environment, start_cli

SETTINGS = ["--set", "n_steps=32", "--set", "batch_size=32", "--set", "n_epochs=2"]
TRAIN = ["train", "--env", ALGORITHM_ENV, "--algo", "ppo", "--seed", "0", *SETTINGS]
# The files a run folder holds besides its checkpoints; each is written with atomic_output.
RUN_FILES = ["config.yaml", "evaluations.csv", "learning_curve.png", "eval.json", "rollout.gif"]


def _wait_for(condition, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, "the run ended first"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _killed_run(tmp_path: Path, steps: int, checkpoint_freq: int, until: str) -> tuple[Path, int]:
    """Start ``rlrobot train`` into ``tmp_path/run``, SIGKILL it once ``until`` exists there."""
    process = start_cli(
        *TRAIN, "--steps", steps, "--set", "eval_freq=0", "--set",
        f"checkpoint_freq={checkpoint_freq}", "--out", "run", "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "run"
    _wait_for(lambda: (run / until).exists(), process)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return run, process.pid


def _assert_clean(run: Path) -> None:
    """No damaged file and no temporary (a cut last TensorBoard record is harmless)."""
    damaged, temporaries = check_run_folder(run)
    assert damaged == [] and [t for t in temporaries if "tfevents" not in t] == []


def _csv_steps(path: Path) -> list[float]:
    lines = path.read_text().splitlines()
    index = lines[0].split(",").index("step")
    return [float(line.split(",")[index]) for line in lines[1:]]


def _one_error_line(error: str, command: str = "train") -> str:
    lines = error.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rlrobot {command}: error:"), error
    return lines[0]


# -- class 4: one writer ----------------------------------------------------------------------
def test_a_second_train_into_a_folder_being_written_is_refused_and_the_first_unharmed(tmp_path):
    first = start_cli(
        *TRAIN, "--steps", "16384", "--set", "eval_freq=4096", "--set", "checkpoint_freq=4096",
        "--out", "run", "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "run"
    _wait_for(lambda: lock_state(run) is not None and (run / LOCK_FILE).stat().st_size, first)
    assert lock_state(run)[0] == "held"
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "rlrobot.cli", *TRAIN, "--steps", "512", "--out", "run"],
        cwd=tmp_path, env=cli_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    refused_after_s = time.monotonic() - started
    assert first.poll() is None, "the first run ended before the second was refused"
    assert second.returncode == 2, second.stderr
    line = _one_error_line(second.stderr)
    assert f"being written by another run (PID {first.pid} on " in line, line
    assert refused_after_s < 60

    assert first.wait(timeout=600) == 0, (tmp_path / "cli.log").read_text()[-3000:]
    assert check_run_folder(run) == ([], [])
    assert not (run / LOCK_FILE).exists()
    # One writer's logs: steps in order (a second writer would restart them), one event file.
    steps = _csv_steps(run / "progress.csv")
    assert steps == sorted(steps) and steps[-1] == 16384.0
    assert _csv_steps(run / "evaluations.csv") == [4096.0, 8192.0, 12288.0, 16384.0]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1


@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resume"])
def test_train_is_refused_while_another_process_holds_the_lock(resume, tmp_path, capsys):
    run = tmp_path / "run"
    if resume:
        assert main([*TRAIN, "--steps", "64", "--out", str(run), "--no-progress"]) == 0
        arguments = ["train", "--out", str(run), "--resume", "--steps", "4096", "--no-progress"]
    else:
        arguments = [*TRAIN, "--steps", "64", "--out", str(run), "--no-progress"]
    before = sorted(path.name for path in run.rglob("*")) if run.exists() else []
    capsys.readouterr()
    with RunFolder(run).writer_lock():
        holder = json.loads((run / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["since"]
        assert main(arguments) == 2
        damaged, _ = check_run_folder(run)
        assert damaged == [f"{LOCK_FILE}: held by PID {os.getpid()} on {holder['host']}, since "
                           f"{holder['since']}; a run is writing this folder"]  # fmt: skip
    line = _one_error_line(capsys.readouterr().err)
    assert f"PID {os.getpid()} on {holder['host']}, since {holder['since']}" in line
    after = sorted(path.name for path in run.rglob("*")) if run.exists() else []
    assert after == before  # refused before it read, cleaned or wrote anything
    if not resume:
        assert not run.exists()  # the lock made the folder; it goes with the lock


def test_a_stale_lock_after_sigkill_is_reported_and_taken_over_by_resume(tmp_path, capsys):
    run, pid = _killed_run(tmp_path, 4096, 256, until="latest")
    state, holder = lock_state(run)
    assert state == "stale" and holder.startswith(f"PID {pid} on ")
    _, temporaries = check_run_folder(run)
    assert f"{LOCK_FILE} (stale: {holder}, which is no longer running)" in temporaries

    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert f"took over {run / LOCK_FILE} from {holder}" in capsys.readouterr().err
    _assert_clean(run)
    assert not (run / LOCK_FILE).exists()
    assert json.loads((run / "latest" / "run_state.json").read_text())["num_timesteps"] == 4096


# -- class 5: kills at the edges --------------------------------------------------------------
def test_a_kill_before_the_first_checkpoint_is_restarted_from_step_0(tmp_path, capsys):
    """Killed after ``config.yaml`` and before any checkpoint: ``--resume`` trains from 0."""
    run, _ = _killed_run(tmp_path, 100_000, 0, until="progress.csv")  # 0: only at the end
    assert not (run / "latest").exists() and not (run / "checkpoints").exists()
    # What a kill inside the first checkpoint write leaves (the kill above may have missed it).
    staged = temporary_path(RunFolder(run).step_checkpoint_path(512))
    staged.mkdir(parents=True)
    (staged / "model.safetensors").write_bytes(b"half")
    _, temporaries = check_run_folder(run)
    assert f"checkpoints/{staged.name}" in temporaries

    arguments = ["train", "--out", str(run), "--resume", "--steps", "512", "--no-progress"]
    assert main(arguments) == 0
    assert "has no checkpoint yet: training it from step 0 again" in capsys.readouterr().out
    assert not staged.exists()
    _assert_clean(run)
    assert json.loads((run / "latest" / "run_state.json").read_text())["num_timesteps"] == 512


KILLED_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from rlrobot.common.files import atomic_output
    with atomic_output(sys.argv[1]) as temporary:
        temporary.write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_kill_inside_any_atomic_write_leaves_a_name_clean_up_knows(name, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    process = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(run / name)], env=cli_environment(), timeout=60
    )
    assert process.returncode == -signal.SIGKILL
    (left,) = list(run.iterdir())
    assert TEMPORARY_PATTERN.match(left.name), left.name
    assert left.name.startswith(f".{name}.") and left.suffix == Path(name).suffix
    assert check_run_folder(run) == ([], [left.name])
    assert RunFolder(run).remove_temporaries() == [left]
    assert list(run.iterdir()) == []


def test_every_temporary_name_matches_the_one_pattern(tmp_path):
    for name in [*RUN_FILES, "latest", "best", "step_0000000512"]:
        for kind in ("tmp", "old"):
            assert TEMPORARY_PATTERN.match(temporary_path(tmp_path / name, kind).name)
        with atomic_output(tmp_path / name) as temporary:
            assert TEMPORARY_PATTERN.match(temporary.name), temporary.name
            temporary.write_bytes(b"")
        assert not TEMPORARY_PATTERN.match(name)
