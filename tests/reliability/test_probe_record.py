"""Findings of the hostile-input probe on `record`, `eval`, `envs` and env options (issue #20).

Each refusal is one `rlrobot COMMAND: error:` line with exit code 2, given before a checkpoint
is loaded or a frame rendered (so a run folder that does not exist is enough here), or a
one-line ValueError/EnvMakeError naming the option and the value.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import pytest

import rlrobot  # noqa: F401 - registers the envs
from rlrobot.cli import main
from rlrobot.common.env_util import make_env
from rlrobot.envs.checks import MAX_IMAGE_SIDE
from rlrobot.envs.perturbations import DomainRandomization
from rlrobot.errors import EnvMakeError
from rlrobot.run.cli import MAX_EVAL_EPISODES, eval_episodes, path_text
from rlrobot.run.recording import MAX_GRID_EPISODES, check_fps, check_grid

from .test_cli_errors import _assert_one_error_line

REFUSAL_LIMIT_S = 2.0


def _refusal(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the CLI on `argv`, check it exits 2 at once with one error line, return the line."""
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    assert code == 2, argv
    assert time.perf_counter() - start < REFUSAL_LIMIT_S, argv
    return _assert_one_error_line(argv[0], capsys.readouterr().err)


# -- record: the grid and the frame rate (S7, H3, S8) ----------------------------------------
@pytest.mark.parametrize(
    ("episodes", "size", "message"),
    [
        (
            16,
            2048,
            "--episodes 16 × --size 2048 make 8198 px frames, over the 2048 px cap: use "
            "--size 510 or less",
        ),
        (100, 240, "--episodes must be at most 64 (one grid cell each), got 100"),
        (1_000_000, 240, "--episodes must be at most 64 (one grid cell each)"),
        (2, 1024, "--episodes 2 × --size 1024 make 2050 px frames"),
    ],
)
def test_record_refuses_grids_over_the_frame_cap(tmp_path, capsys, episodes, size, message):
    argv = ["record", str(tmp_path / "absent"), "--episodes", str(episodes), "--size", str(size)]
    line = _refusal(capsys, [*argv, "--max-steps", "2"])
    assert message in line, line


@pytest.mark.parametrize(
    ("episodes", "size"), [(1, MAX_IMAGE_SIDE), (4, 1023), (MAX_GRID_EPISODES, 254), (5, 681)]
)
def test_grids_up_to_the_cap_are_allowed(episodes, size):
    check_grid(episodes, size)  # the largest cell size that fits each grid


@pytest.mark.parametrize(("episodes", "size"), [(4, 1024), (MAX_GRID_EPISODES, 255), (65, 1)])
def test_grids_just_over_the_cap_are_refused(episodes, size):
    with pytest.raises(ValueError, match="n_episodes"):
        check_grid(episodes, size)


@pytest.mark.parametrize(
    ("fps", "out", "allowed"),
    [
        ("1e9", "v.gif", "[0.01, 50] fps (a GIF frame lasts at least 20 ms)"),
        ("51", "v.gif", "[0.01, 50] fps"),
        ("0.001", "v.gif", "[0.01, 50] fps"),
        ("241", "v.mp4", "[0.01, 240] fps"),
        ("1e9", None, "--fps for a .gif"),  # the default video is a GIF
    ],
)
def test_record_refuses_frame_rates_the_format_cannot_play(tmp_path, capsys, fps, out, allowed):
    argv = ["record", str(tmp_path / "absent"), "--fps", fps]
    if out is not None:
        argv += ["--out", str(tmp_path / out)]
    line = _refusal(capsys, argv)
    assert allowed in line and "--fps" in line, line
    assert not (tmp_path / "absent").exists()


def test_frame_rates_at_the_bounds_are_allowed():
    assert check_fps(50, ".gif") == 50.0
    assert check_fps(240, ".mp4") == 240.0
    assert check_fps(0.01, ".gif") == 0.01


# -- eval: the episode count (H4) ---------------------------------------------------------------
def test_eval_episodes_are_capped(tmp_path, capsys):
    line = _refusal(capsys, ["eval", str(tmp_path), "--episodes", "1000000000"])
    assert "--episodes: must be at most 10,000 (each episode is kept in eval.json)" in line
    assert eval_episodes(str(MAX_EVAL_EPISODES)) == MAX_EVAL_EPISODES
    with pytest.raises(argparse.ArgumentTypeError):
        eval_episodes(str(MAX_EVAL_EPISODES + 1))


# -- empty paths (S9) -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", ""], "argument RUN_DIR: must name a path, got ''"),
        (["eval", "RUN", "--out", ""], "argument --out: must name a path, got ''"),
        (["record", ""], "argument RUN_DIR: must name a path, got ''"),
        (["record", "RUN", "--out", ""], "argument --out: must name a path, got ''"),
        (["record", "RUN", "--out", "a\0b.gif"], "argument --out: must name a path"),
        (["record", "RUN", "--out", ".gif"], "--out must end in .gif or .mp4 (a file name"),
        (["envs", "--gallery", ""], "--gallery must name a folder, got ''"),
        (["plot", ""], "argument RUN_DIR: must name a path, got ''"),
        (["plot", "RUN", "--out", ""], "argument --out: must name a path, got ''"),
    ],
)
def test_empty_paths_are_refused(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)  # '' would be this folder
    line = _refusal(capsys, argv)
    assert message in line, line
    assert not list(tmp_path.iterdir())


def test_path_text_keeps_real_paths():
    assert path_text("runs/a b") == "runs/a b"


# -- env options: types and bounds (U5, S6) ---------------------------------------------------
@pytest.mark.parametrize(
    ("randomization", "message"),
    [
        ({"mass_scale": None}, "mass_scale must be a sequence of values, got None"),
        ({"friction_scale": {1, 2}}, "friction_scale must be a sequence of values, got {1, 2}"),
        ({"mass_scale": [0.0, 1.0]}, "mass_scale[0] must be a finite number in (0, 100] (a 0 kg"),
        ({"friction_scale": [1e30, 1e31]}, "friction_scale[0] must be a finite number in [0, 100]"),
        ({"actuator_scale": [1.0, 101.0]}, "actuator_scale[1] must be a finite number in [0, 100]"),
    ],
)
def test_randomization_fields_are_checked(randomization, message):
    with pytest.raises(ValueError) as caught:
        DomainRandomization.from_option(randomization)
    assert str(caught.value) == message or str(caught.value).startswith(message), caught.value
    with pytest.raises(EnvMakeError, match="cannot make rlrobot/CartPole-v0 with"):
        make_env("rlrobot/CartPole-v0", {"randomization": randomization})


def test_scale_bounds_build():
    settings = DomainRandomization(mass_scale=(1e-3, 100.0), friction_scale=(0.0, 100.0))
    assert settings.mass_scale == (1e-3, 100.0) and settings.friction_scale == (0.0, 100.0)


@pytest.mark.parametrize("mode", [0, b"human", ["rgb_array"]])
def test_render_mode_of_the_wrong_type_is_refused_before_gym_make(mode):
    with pytest.raises(EnvMakeError) as caught:
        make_env("rlrobot/CartPole-v0", {"render_mode": mode})
    assert str(caught.value) == (
        "rlrobot/CartPole-v0: render_mode must be None or a mode name such as 'rgb_array', "
        f"got {mode!r}"
    )


def test_gym_make_itself_reads_render_mode_first():
    """Gymnasium's own make reads render_mode before our constructor: its error, not ours."""
    with pytest.raises(AttributeError, match="endswith"):
        gym.make("rlrobot/CartPole-v0", render_mode=0)


class _CountingBar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n


def test_eval_progress_counts_whole_episodes():
    from rlrobot.common.evaluation import evaluate_policy
    from rlrobot.run.evaluation import EpisodeProgress

    bar = _CountingBar()
    env = gym.make("rlrobot/CartPole-v0", max_episode_steps=7)
    try:
        result = evaluate_policy(lambda obs, deterministic: (0, None), EpisodeProgress(env, bar), 3)
    finally:
        env.close()
    assert bar.n == 3 and len(result.returns) == 3
