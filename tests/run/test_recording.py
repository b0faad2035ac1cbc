"""``rlrobot record``'s annotated tiles, cameras and side-by-side runs, end to end on CartPole.

The runs are tiny (one PPO update; an untrained SB3 model): the tests check what is drawn and
where, not how well the policies balance.
"""

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

import rlrobot  # noqa: F401 - registers the envs
from rlrobot.run.recording import (
    FAILURE_COLOUR,
    SUCCESS_COLOUR,
    border_width,
    check_camera,
)

from .test_cli import in_process

SIZE = 64  # px per cell: 8 px text, a 28 px band of two lines
TINY_PPO = ["--env", "rlrobot/CartPole-v0", "--algo", "ppo", "--n-envs", 2, "--steps", 64]
TINY_PPO += ["--set", "n_steps=32", "--set", "batch_size=32", "--set", "n_epochs=1"]
TINY_PPO += ["--set", "eval_freq=0", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``work/runs/a`` (our PPO, one update), ``work/runs/sb3.zip`` (SB3's PPO, untrained) and
    SB3's PPO for Pendulum, ``work/runs/pendulum.zip``."""
    import stable_baselines3

    work = tmp_path_factory.mktemp("record")
    assert in_process("train", *TINY_PPO, "--out", "runs/a", cwd=work) == 0
    model = stable_baselines3.PPO("MlpPolicy", gym.make("rlrobot/CartPole-v0"), device="cpu")
    model.save(work / "runs/sb3.zip")
    pendulum = stable_baselines3.PPO("MlpPolicy", gym.make("Pendulum-v1"), device="cpu")
    pendulum.save(work / "runs/pendulum.zip")
    return work


def bare_first_frame(seed: int, camera: str = "fixed") -> np.ndarray:
    """CartPole's reset frame for ``seed`` as the env renders it, without annotations."""
    env = gym.make(
        "rlrobot/CartPole-v0", render_mode="rgb_array", render_width=SIZE, render_height=SIZE,
        render_camera=camera,
    )  # fmt: skip
    env.reset(seed=seed)
    frame = env.render()
    env.close()
    return frame


def cell(frame: np.ndarray, row: int, column: int) -> np.ndarray:
    """The grid cell at ``row``, ``column`` of a video frame (2 px gaps)."""
    top, left = row * (SIZE + 2), column * (SIZE + 2)
    return frame[top : top + SIZE, left : left + SIZE].astype(int)


def test_tiles_show_text_in_a_band_and_a_border_by_success(runs, capsys):
    arguments = ["record", "runs/a", "--episodes", 2, "--size", SIZE, "--seed", 5]
    assert in_process(*arguments, "--out", "runs/fall.gif", cwd=runs) == 0
    announced = capsys.readouterr().out
    video = iio.imread(runs / "runs/fall.gif", index=None)
    # 2 episodes: a 1×2 grid; what is announced is what the file holds.
    assert video.shape[1:] == (SIZE, 2 * SIZE + 2, 3)
    assert f": {video.shape[0]} frames of {2 * SIZE + 2}×{SIZE} at 50 fps" in announced
    first, bare = cell(video[0], 0, 0), bare_first_frame(5).astype(int)
    band, below = first[:20], first[32:]
    # Below the band the scene is as rendered; in it, white letters on a darkened band.
    assert np.abs(below - bare[32:]).max() <= 8
    assert np.abs(band - bare[:20]).mean() > 60
    brightness = band.mean(axis=-1)
    assert (brightness < 110).mean() > 0.5 and (brightness > 160).sum() >= 40
    # A fall (untrained pole) fails: a red border on the last frame, none on the first.
    assert "seed 5: return" in announced and "failed" in announced
    edge = border_width(SIZE)
    last = cell(video[-1], 0, 0)
    assert np.abs(last[-edge:].mean(axis=(0, 1)) - FAILURE_COLOUR).max() < 30
    assert np.abs(first[-edge:] - bare[-edge:]).max() <= 8

    # Cut at 3 steps with the pole still upright: CartPole's success, a green border.
    arguments += ["--max-steps", 3, "--info-key", "reward_alive"]
    assert in_process(*arguments, "--out", "runs/upright.gif", cwd=runs) == 0
    assert "return 3.00 in 3 steps, succeeded" in capsys.readouterr().out
    video = iio.imread(runs / "runs/upright.gif", index=None)
    for column in (0, 1):
        last = cell(video[-1], 0, column)
        assert np.abs(last[-edge:].mean(axis=(0, 1)) - SUCCESS_COLOUR).max() < 30
    # The third line (reward_alive) makes the band deeper.
    assert np.abs(cell(video[0], 0, 0)[30:38] - bare[30:38]).mean() > 60


def test_two_runs_play_the_same_seeds_from_the_same_first_frames(runs, capsys):
    arguments = ["record", "runs/a", "runs/sb3.zip", "--episodes", 2, "--size", SIZE]
    assert in_process(*arguments, "--max-steps", 4, cwd=runs) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("wrote runs/a/comparison.gif: ")
    video = iio.imread(runs / "runs/a/comparison.gif", index=None)
    # One row per run, one column per episode.
    assert video.shape[1:] == (2 * SIZE + 2, 2 * SIZE + 2, 3)
    assert "(2 runs × 2 episodes; " in printed
    assert "\n  a: seed 0: " in printed and "; seed 1: " in printed
    assert "\n  sb3.zip: seed 0: " in printed
    for column in (0, 1):
        ours, theirs = cell(video[0], 0, column), cell(video[0], 1, column)
        np.testing.assert_array_equal(ours[32:], theirs[32:])  # same seed, same start state
        assert np.abs(ours[32:] - bare_first_frame(column)[32:]).max() <= 8
        assert (ours[:12] != theirs[:12]).any()  # labelled with each run's name


def test_camera_choices_are_the_envs(runs, capsys):
    arguments = ["record", "runs/a", "--size", SIZE, "--max-steps", 2]
    assert in_process(*arguments, "--camera", "robot", "--out", "runs/robot.gif", cwd=runs) == 0
    first = cell(iio.imread(runs / "runs/robot.gif", index=None)[0], 0, 0)
    assert np.abs(first[32:] - bare_first_frame(0, "robot")[32:]).max() <= 8
    assert np.abs(first[32:] - bare_first_frame(0, "fixed")[32:]).max() > 30
    capsys.readouterr()
    assert in_process(*arguments, "--camera", "top", cwd=runs) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "rlrobot record: error: --camera 'top': rlrobot/CartPole-v0 offers fixed, robot"
    with pytest.raises(ValueError, match="Pendulum-v1 renders one view and offers no cameras"):
        check_camera("Pendulum-v1", "fixed")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["runs/a", "--info-key", "reward_tilt"],
            "info key 'reward_tilt' is not in the step info of rlrobot/CartPole-v0 (it holds "
            "is_success, reward_alive)",
        ),
        (
            ["runs/sb3.zip"],
            "a model .zip plays the env of a run folder given with it; add one, e.g. rlrobot "
            "record RUN_DIR runs/sb3.zip",
        ),
        (["runs/a", "runs/absent.zip"], "runs/absent.zip: "),
        (
            ["runs/a", "runs/pendulum.zip"],
            "pendulum.zip: observation has shape (4,), expected shape (3,)",
        ),
        (
            ["runs/a"] * 5 + ["--episodes", 13],
            "--episodes × 5 runs must be at most 64 (one grid cell each), got 13 × 5 runs",
        ),
    ],
)
def test_bad_record_arguments_are_one_line_errors(runs, capsys, arguments, message):
    assert in_process("record", *arguments, "--size", SIZE, "--max-steps", 2, cwd=runs) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rlrobot record: error: ") and message in line, line
