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
from rlrobot.errors import RunFolderError
from rlrobot.run.config import read_run_config
from rlrobot.run.training import train

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


def test_help_and_import_load_neither_torch_nor_pybullet():
    code = (
        "import sys, rlrobot, rlrobot.cli; rlrobot.cli.build_parser(); "
        "print(sorted({'torch', 'pybullet'} & set(sys.modules)))"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert process.stdout.strip() == "[]"
    assert "pybullet build time" not in process.stdout + process.stderr
    # The lazy names still import on first use.
    from rlrobot.envs import DelayedReward
    from rlrobot.perception import Dataset

    assert DelayedReward.__module__ == "rlrobot.envs.wrappers"
    assert Dataset.__module__ == "rlrobot.perception.dataset"


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("train", "eval", "record", "plot", "demo", "export"):
        assert f"    {command} " in text
    assert "rlrobot train --env rlrobot/CartPole-v0 --algo ppo" in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = capsys.readouterr().out
    assert "--set KEY=VALUE" in train_help and "--resume" in train_help
    assert "rlrobot/configs/<algo>.yaml" in train_help
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    plot_help = capsys.readouterr().out
    assert "mean and 95% confidence band" in plot_help and "%%" not in plot_help


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
    assert config["gamma"] == 0.98  # tuned value from rlrobot/configs/ppo.yaml's CartPole entry

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
    # What success means, from the env's own definition.
    success = "success: the pole is within success_angle = 0.05 of upright, at the last step"
    assert success in stdout and result["success"].startswith(success)


def test_eval_keeps_earlier_evaluations_unless_out_names_the_file(trained, capsys):
    work, _ = trained
    run = work / "runs/seed1"
    for name in ("eval.json", "eval-2.json", "eval-3.json"):
        assert in_process("eval", "runs/seed1", "--episodes", 1, "--no-progress", cwd=work) == 0
        assert capsys.readouterr().out.endswith(f"written to runs/seed1/{name}\n")
    first = (run / "eval.json").read_text()
    arguments = ["--episodes", 2, "--no-progress", "--out", "runs/seed1/eval.json"]
    assert in_process("eval", "runs/seed1", *arguments, cwd=work) == 0
    assert capsys.readouterr().out.endswith("written to runs/seed1/eval.json (replaced)\n")
    assert json.loads((run / "eval.json").read_text())["n_episodes"] == 2
    assert json.loads(first)["n_episodes"] == 1
    assert not (run / "eval-4.json").exists()


def test_record_mp4_grid_has_the_right_frames_and_size(trained):
    work, _ = trained
    args = ["record", "runs/seed0", "--episodes", 3, "--size", 48, "--max-steps", 6]
    stdout = check(rlrobot(*args, "--deterministic", "--out", "runs/seed0/grid.mp4", cwd=work))
    video = iio.imread(work / "runs/seed0/grid.mp4", plugin="FFMPEG")
    # 3 episodes → 2×2 grid of 48-pixel cells with 2-pixel gaps (98×98), padded to 112×112
    # for H.264; the reset frame plus 6 steps = 7 frames unless an episode ends earlier.
    assert video.shape[1:] == (112, 112, 3)
    assert 2 <= video.shape[0] <= 7
    # What is announced is what the file holds.
    assert f": {video.shape[0]} frames of 112×112 at " in stdout
    assert "padded from 98×98 to sides divisible by 16" in stdout
    assert video[:, 98:, :].max() < 30  # padding stays black (up to codec noise)


def test_record_gif_plays_in_real_time(trained, capsys):
    work, _ = trained
    assert in_process("record", "runs/seed1", "--size", 40, "--max-steps", 8, cwd=work) == 0
    path = work / "runs/seed1/rollout.gif"
    frames = iio.imread(path, index=None)
    assert frames.shape[1:3] == (40, 40)
    assert f": {frames.shape[0]} frames of 40×40 at " in capsys.readouterr().out
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


def test_resume_refuses_a_budget_the_run_has_reached(tmp_path, capsys):
    assert in_process("train", *TINY_RUN, "--out", "run", cwd=tmp_path) == 0
    run = tmp_path / "run"
    config_text = (run / "config.yaml").read_text()
    capsys.readouterr()
    for steps in (["--steps", 256], ["--steps", 100], []):
        assert in_process("train", "--out", "run", "--resume", *steps, cwd=tmp_path) == 2
        printed = capsys.readouterr()
        assert "run is already at 256 steps; pass --steps above that to continue" in printed.err
        assert printed.out == ""
    assert (run / "config.yaml").read_text() == config_text
    # Scripts calling ``train`` directly are refused the same way.
    resolved = read_run_config(run / "config.yaml")
    resolved.run = resolved.run.replace(n_timesteps=200)
    with pytest.raises(RunFolderError, match="already at 256 steps"):
        train(resolved, run, resume=True, progress_bar=False)
    assert (run / "config.yaml").read_text() == config_text


def test_on_policy_budget_rounding_is_announced(tmp_path, capsys):
    # 100 steps in rollouts of 32 steps × 2 envs: the run ends at 128.
    arguments = [*TINY_RUN, "--steps", 100, "--set", "eval_freq=0", "--out", "run"]
    assert in_process("train", *arguments, "--no-progress", cwd=tmp_path) == 0
    notice = (
        "note: training runs whole iterations of 64 env steps (on-policy: n_steps × n_envs; "
        "off-policy: n_envs), so this run ends at step 128, not 100"
    )
    assert capsys.readouterr().err.count(notice) == 1
    state = json.loads((tmp_path / "run/latest/run_state.json").read_text())
    assert state["num_timesteps"] == 128
    # A budget of whole rollouts needs no notice.
    resumed = ["train", "--out", "run", "--resume", "--steps", 192, "--no-progress"]
    assert in_process(*resumed, cwd=tmp_path) == 0
    assert "note:" not in capsys.readouterr().err


def test_off_policy_budget_rounding_to_whole_vector_steps_is_announced(tmp_path, capsys):
    arguments = ["--env", "Pendulum-v1", "--algo", "sac", "--n-envs", 3, "--steps", 100]
    settings = ["--set", "learning_starts=200", "--set", "eval_freq=0", "--no-progress"]
    assert in_process("train", *arguments, *settings, "--out", "run", cwd=tmp_path) == 0
    notice = (
        "note: training runs whole iterations of 3 env steps (on-policy: n_steps × n_envs; "
        "off-policy: n_envs), so this run ends at step 102, not 100"
    )
    captured = capsys.readouterr()
    assert captured.err.count(notice) == 1
    state = json.loads((tmp_path / "run/latest/run_state.json").read_text())
    assert state["num_timesteps"] == 102
    # Pendulum's episodes last 200 steps: none ended, so there is no curve to draw.
    assert "no episode ended during the run, so there is no learning curve" in captured.err
    assert not (tmp_path / "run/learning_curve.png").exists()
    assert "done: run/ (latest/ checkpoint, progress.csv)" in captured.out


def test_commands_explain_missing_runs_and_checkpoints(trained, tmp_path, capsys):
    work, _ = trained
    assert in_process("eval", tmp_path, cwd=work) == 2
    assert "is not a run folder (no config.yaml)" in capsys.readouterr().err
    assert in_process("record", "runs/seed0", "--checkpoint", 999, cwd=work) == 2
    error = capsys.readouterr().err
    assert "no checkpoint '999'" in error and "['latest', 'best', '128', '256']" in error
    assert in_process("record", "runs/seed0", "--out", "video.avi", cwd=work) == 2
    assert "--out must end in .gif or .mp4" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("checkpoint", "hint"),
    [
        ("latest", "pass its run folder instead: runs/seed0\n"),
        ("best", "pass its run folder instead: runs/seed0 with --checkpoint best"),
        ("checkpoints/step_0000000128", "instead: runs/seed0 with --checkpoint 128"),
    ],
)
def test_eval_of_a_checkpoint_folder_names_its_run_folder(trained, capsys, checkpoint, hint):
    work, _ = trained
    assert in_process("eval", f"runs/seed0/{checkpoint}", cwd=work) == 2
    error = capsys.readouterr().err
    assert f"runs/seed0/{checkpoint} is a checkpoint folder, not a run folder" in error
    assert hint in error and "rlrobot train" not in error


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fps", "0", "must be a number > 0, got 0"),
        ("--fps", "-5", "must be a number > 0, got -5"),
        ("--fps", "nan", "must be a number > 0, got nan"),
        ("--max-steps", "0", "must be >= 1, got 0"),
        ("--max-steps", "-3", "must be >= 1, got -3"),
        ("--episodes", "0", "must be >= 1, got 0"),
    ],
)
def test_record_refuses_non_positive_numbers(capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["record", "runs/any", f"{option}={value}"])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line == f"rlrobot record: error: argument {option}: {message}"


@pytest.mark.parametrize(
    ("env", "settings", "message"),
    [
        ("rlrobot/CartPole-v0", [], "SAC needs a 1-D Box action space, got Discrete(2)"),
        ("Pendulum-v1", ["--set", "replay_buffer=her"], "HER needs a Dict observation space"),
    ],
)
def test_envs_an_agent_cannot_use_are_one_line_errors_that_leave_no_run(
    tmp_path, capsys, env, settings, message
):
    code = in_process(
        "train", "--env", env, "--algo", "sac", *settings, "--steps", 64, "--out", "run",
        cwd=tmp_path,
    )  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error
    assert error.startswith("rlrobot train: error:") and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """A tiny SAC run on Gymnasium's Pendulum-v1 (a classic-control env, drawn with pygame)."""
    work = tmp_path_factory.mktemp("pendulum")
    settings = ["learning_starts=16", "batch_size=16", "net_arch=[16]", "eval_freq=0"]
    arguments = ["train", "--env", "Pendulum-v1", "--algo", "sac", "--steps", 32, "--out", "run"]
    arguments += [part for setting in settings for part in ("--set", setting)]
    assert in_process(*arguments, "--no-progress", cwd=work) == 0
    return work


def test_record_renders_a_classic_control_env_headless(pendulum_run, capfd, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    arguments = ["record", "run", "--size", 32, "--max-steps", 3, "--out", "run/pendulum.gif"]
    assert in_process(*arguments, cwd=pendulum_run) == 0
    output = capfd.readouterr()  # SDL writes to the file descriptor, past sys.stderr
    frames = iio.imread(pendulum_run / "run/pendulum.gif", index=None)
    assert frames.shape[1:3] == (32, 32) and frames.max() > frames.min()  # a drawn pendulum
    assert f": {frames.shape[0]} frames of 32×32 at " in output.out
    assert "error" not in output.err  # SDL found no display to complain about


def test_record_without_pygame_names_the_extra(pendulum_run, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame raises ImportError
    assert in_process("record", "run", "--max-steps", 2, cwd=pendulum_run) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "rlrobot record: error: rendering Pendulum-v1 needs pygame (Gymnasium's classic-control "
        "envs draw with it): pip install 'rlrobot[classic-control]'"
    )
    assert not (pendulum_run / "run/rollout.gif").exists()


def test_train_eval_and_record_use_the_runs_torch_threads(trained, tmp_path, monkeypatch):
    import torch

    from rlrobot.agents import base

    counts = []
    original = base.torch_threads_set

    def recording(count):
        counts.append(count)
        return original(count)

    monkeypatch.setattr(base, "torch_threads_set", recording)
    arguments = [*TINY_RUN, "--steps", 64, "--set", "eval_freq=0", "--set", "torch_threads=2"]
    assert in_process("train", *arguments, "--no-progress", "--out", "run", cwd=tmp_path) == 0
    assert counts == [2]
    work, _ = trained
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert in_process("eval", "runs/seed0", "--episodes", 1, "--no-progress", cwd=work) == 0
        assert torch.get_num_threads() == 1  # the run's config: torch_threads 1
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--env", "rlrobot/CartPol-v0", "--algo", "ppo"], "unknown env id 'rlrobot/CartPol-v0'"),
        (
            ["--env", "rlrobot/Reach-v0", "--algo", "ppo", "--set", "env_kwargs.reward_mod=sparse"],
            "rlrobot/Reach-v0 takes no keyword 'reward_mod'; did you mean 'reward_mode'",
        ),
        (
            ["--env", "rlrobot/CartPole-v0", "--algo", "sac"],
            "SAC needs a 1-D Box action space, got Discrete(2)",
        ),
    ],
)
def test_dry_run_refuses_what_train_refuses_and_prints_no_config(capsys, arguments, message):
    assert main(["train", *arguments, "--dry-run"]) == 2
    output = capsys.readouterr()
    (line,) = output.err.strip().splitlines()
    assert line.startswith("rlrobot train: error: ") and message in line
    assert output.out == ""
