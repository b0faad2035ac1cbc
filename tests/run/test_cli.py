"""The ``rlrobot`` commands end to end with a tiny budget.

Each command runs once in a subprocess (``python -m rlrobot.cli …``); further variants call
``rlrobot.cli.main`` in this process to keep the tests fast.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import yaml

from rlrobot.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY_RUN = [
    "--env",
    "rlrobot/CartPole-v0",
    "--algo",
    "ppo",
    "--n-envs",
    "2",
    "--steps",
    "256",
    "--set",
    "n_steps=32",
    "--set",
    "batch_size=32",
    "--set",
    "n_epochs=2",
    "--set",
    "eval_freq=128",
    "--set",
    "eval_episodes=2",
    "--set",
    "checkpoint_freq=128",
]


def rlrobot(*args, cwd):
    """Run ``python -m rlrobot.cli ARGS`` in ``cwd``; return the completed process."""
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "rlrobot.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check(process):
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


def in_process(*args, cwd):
    """Run ``rlrobot ARGS`` through ``main`` in ``cwd``; return the exit code."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return main([str(arg) for arg in args])
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two seeds of a tiny PPO run in ``work/runs``; ``work`` is the current directory."""
    work = tmp_path_factory.mktemp("work")
    runs = work / "runs"
    check(rlrobot("train", *TINY_RUN, "--seed", 0, "--out", "runs/seed0", cwd=work))
    assert in_process("train", *TINY_RUN, "--seed", 1, "--out", "runs/seed1", cwd=work) == 0
    return work, runs


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("train", "eval", "record", "plot", "demo"):
        assert f"    {command} " in text
    assert "rlrobot train --env rlrobot/CartPole-v0 --algo ppo" in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = capsys.readouterr().out
    assert "--set KEY=VALUE" in train_help and "--resume" in train_help
    assert "configs/<algo>.yaml" in train_help


def test_train_writes_a_complete_run_folder_and_nothing_else(trained):
    work, runs = trained
    # Nothing is written outside the chosen run folders.
    assert sorted(p.name for p in work.iterdir()) == ["runs"]
    assert sorted(p.name for p in runs.iterdir()) == ["seed0", "seed1"]
    run = runs / "seed0"
    names = {p.name for p in run.iterdir()}
    expected = {"config.yaml", "progress.csv", "evaluations.csv", "checkpoints", "latest", "best"}
    assert expected | {"learning_curve.png"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    assert not any(name.startswith(".") for name in names), names  # no temporary leftovers

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algo"] == "ppo" and config["env"] == "rlrobot/CartPole-v0"
    assert config["seed"] == 0 and config["n_timesteps"] == 256 and config["n_envs"] == 2
    assert config["n_steps"] == 32 and config["eval_freq"] == 128
    assert config["gamma"] == 0.98  # tuned value from configs/ppo.yaml's CartPole entry

    with (run / "progress.csv").open() as file:
        rows = list(csv.DictReader(file))
    columns = set(rows[0])
    for key in ("rollout/ep_rew_mean", "train/policy_loss", "train/value_loss", "time/fps"):
        assert key in columns
    assert "eval/mean_reward" in columns
    assert max(float(row["time/total_timesteps"] or 0) for row in rows) == 256

    with (run / "evaluations.csv").open() as file:
        evaluations = list(csv.DictReader(file))
    assert [int(row["step"]) for row in evaluations] == [128, 256]
    assert all(int(row["n_episodes"]) == 2 for row in evaluations)

    steps = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert steps == ["step_0000000128", "step_0000000256"]
    for checkpoint in ("latest", "best"):
        metadata = json.loads((run / checkpoint / "metadata.json").read_text())
        assert metadata["algorithm"] == "ppo"
    assert json.loads((run / "latest" / "run_state.json").read_text())["num_timesteps"] == 256

    image = iio.imread(run / "learning_curve.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_eval_prints_and_writes_statistics(trained):
    work, _ = trained
    stdout = check(rlrobot("eval", "runs/seed0", "--episodes", 3, "--deterministic", cwd=work))
    assert "return" in stdout and "±" in stdout and "(3 episodes)" in stdout
    result = json.loads((work / "runs/seed0/eval.json").read_text())
    assert result["n_episodes"] == 3 and len(result["returns"]) == 3
    assert result["num_timesteps"] == 256 and result["deterministic"] is True
    assert result["mean_reward"] == pytest.approx(np.mean(result["returns"]))
    assert result["std_reward"] == pytest.approx(np.std(result["returns"]))
    # CartPole pays +1 per step: the return is the episode length.
    assert result["returns"] == [float(length) for length in result["lengths"]]
    assert result["mean_ep_length"] == pytest.approx(np.mean(result["lengths"]))
    assert result["success_rate"] == pytest.approx(np.mean(result["successes"]))


def test_record_mp4_grid_has_the_right_frames_and_size(trained):
    work, _ = trained
    args = ["record", "runs/seed0", "--episodes", 3, "--size", 48, "--max-steps", 6]
    check(rlrobot(*args, "--deterministic", "--out", "runs/seed0/grid.mp4", cwd=work))
    video = iio.imread(work / "runs/seed0/grid.mp4", plugin="FFMPEG")
    # 3 episodes → 2×2 grid of 48-pixel cells with 2-pixel gaps (98×98), padded to 112×112
    # for H.264; the reset frame plus 6 steps = 7 frames unless an episode ends earlier.
    assert video.shape[1:] == (112, 112, 3)
    assert 2 <= video.shape[0] <= 7
    assert video[:, 98:, :].max() < 30  # padding stays black (up to codec noise)


def test_record_gif_plays_in_real_time(trained):
    work, _ = trained
    assert in_process("record", "runs/seed1", "--size", 40, "--max-steps", 8, cwd=work) == 0
    path = work / "runs/seed1/rollout.gif"
    frames = iio.imread(path, index=None)
    assert frames.shape[1:3] == (40, 40)
    # Identical consecutive frames are merged by the GIF writer, their durations added.
    durations = [iio.immeta(path, index=i)["duration"] for i in range(frames.shape[0])]
    assert 2 <= frames.shape[0] <= 9
    assert sum(durations) <= 9 * 20 and all(d >= 20 for d in durations)


def test_plot_groups_seeds_into_mean_and_band(trained):
    work, _ = trained
    stdout = check(rlrobot("plot", "runs", "--out", "runs/curves.png", cwd=work))
    assert "runs/curves.png" in stdout
    image = iio.imread(work / "runs/curves.png")
    assert image.shape[2] in (3, 4) and image.shape[1] >= 600
    arguments = ["plot", "runs/seed0", "runs/seed1", "--source", "eval", "--out", "runs/e.png"]
    assert in_process(*arguments, cwd=work) == 0
    assert iio.imread(work / "runs/e.png").ndim == 3


def test_resume_continues_the_step_counter(tmp_path, capsys):
    assert in_process("train", *TINY_RUN, "--out", "run", cwd=tmp_path) == 0
    assert in_process("train", *TINY_RUN, "--out", "run", cwd=tmp_path) == 2
    assert "add --resume to continue it" in capsys.readouterr().err
    assert in_process("train", "--out", "run", "--resume", "--steps", 384, cwd=tmp_path) == 0
    run = tmp_path / "run"
    assert json.loads((run / "latest/run_state.json").read_text())["num_timesteps"] == 384
    assert yaml.safe_load((run / "config.yaml").read_text())["n_timesteps"] == 384
    with (run / "progress.csv").open() as file:
        steps = [float(row["step"]) for row in csv.DictReader(file)]
    assert steps == sorted(steps) and steps[-1] == 384
    assert in_process("train", "--out", "run", "--resume", "--set", "gamma=0.9", cwd=tmp_path) == 2
    assert "keeps its config.yaml" in capsys.readouterr().err


def test_commands_explain_missing_runs_and_checkpoints(trained, tmp_path, capsys):
    work, _ = trained
    assert in_process("eval", tmp_path, cwd=work) == 2
    assert "is not a run folder (no config.yaml)" in capsys.readouterr().err
    assert in_process("record", "runs/seed0", "--checkpoint", 999, cwd=work) == 2
    error = capsys.readouterr().err
    assert "no checkpoint '999'" in error and "['latest', 'best', '128', '256']" in error
    assert in_process("record", "runs/seed0", "--out", "video.avi", cwd=work) == 2
    assert "--out must end in .gif or .mp4" in capsys.readouterr().err
