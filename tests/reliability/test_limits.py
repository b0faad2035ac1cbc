"""Sizes and counts that would hang an env (or a command) are refused at once, naming the cap.

The size options are found from the signatures of every registered env (its own and those of
`RobotTaskEnv`): every integer-valued `gym.make` keyword. A new one without a cap fails here,
because 10**6 of it is accepted or takes longer than the limit below.
"""

from __future__ import annotations

import inspect
import re
import time

import gymnasium as gym
import pytest

import rlrobot
from rlrobot.cli import main
from rlrobot.common.env_util import make_env
from rlrobot.envs.checks import MAX_IMAGE_SIDE, Interval, check_number
from rlrobot.envs.core import RobotTaskEnv
from rlrobot.errors import DatasetError, EnvMakeError
from rlrobot.perception.collect import collect_images

# A refusal must come before any frame or body is made; building a small env takes ~0.1 s.
REFUSAL_LIMIT_S = 2.0
HUGE = 10**6


def _integer_options(env_id: str) -> list[str]:
    """The `gym.make` keywords of `env_id` whose default is an integer (not a bool)."""
    env_class = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
    options = []
    for function in (env_class.__init__, RobotTaskEnv.__init__):
        for name, parameter in inspect.signature(function).parameters.items():
            default = parameter.default
            if isinstance(default, int) and not isinstance(default, bool):
                options.append(name)
    return [name for name in options if name not in ("n_substeps",)]


SIZE_CASES = [(env_id, option) for env_id in rlrobot.ENV_IDS for option in _integer_options(env_id)]


def test_the_sweep_finds_every_known_size_option():
    found = {option for _, option in SIZE_CASES}
    assert {"pixels_width", "pixels_height", "render_width", "render_height"} <= found
    assert {"n_obstacles", "n_rays"} <= found
    assert len(SIZE_CASES) == 4 * len(rlrobot.ENV_IDS) + 2


def _refusal(env_id: str, kwargs: dict) -> tuple[str, float]:
    """The message of `make_env(env_id, kwargs)`'s EnvMakeError, and how long it took."""
    start = time.perf_counter()
    with pytest.raises(EnvMakeError) as caught:
        make_env(env_id, kwargs)
    return str(caught.value), time.perf_counter() - start


@pytest.mark.parametrize(("env_id", "option"), SIZE_CASES)
def test_size_above_its_cap_is_refused_fast(env_id, option):
    message, elapsed = _refusal(env_id, {option: HUGE})
    assert elapsed < REFUSAL_LIMIT_S
    bounds = re.search(rf"{option} must be an integer in \[(\d+), (\d+)\]", message)
    assert bounds, message
    assert str(HUGE) in message
    cap = int(bounds.group(2))
    assert cap < HUGE
    # The cap itself is the boundary: one more is refused too.
    message, elapsed = _refusal(env_id, {option: cap + 1})
    assert f"got {cap + 1}" in message and elapsed < REFUSAL_LIMIT_S
    # gym.make says the same (a ValueError) without make_env's wrapping.
    with pytest.raises(ValueError, match=re.escape(option)):
        gym.make(env_id, **{option: HUGE})


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_huge_pixel_observations_are_refused_fast(env_id):
    """The issue's case: obs_mode="pixels" at 20000×20000 ran on for minutes."""
    kwargs = {"obs_mode": "pixels", "pixels_width": 20000, "pixels_height": 20000}
    message, elapsed = _refusal(env_id, kwargs)
    assert elapsed < REFUSAL_LIMIT_S
    assert f"pixels_width must be an integer in [1, {MAX_IMAGE_SIDE}]" in message


@pytest.mark.parametrize("value", [84.5, float("nan"), float("inf"), "84", True, None])
def test_a_size_must_be_an_integer(value):
    with pytest.raises(
        ValueError, match=f"pixels_width must be an integer.*got {re.escape(repr(value))}"
    ):
        check_number("pixels_width", value, int, Interval(1, MAX_IMAGE_SIDE))


def test_counts_at_their_caps_build_and_step_fast():
    from rlrobot.envs.robots.racecar import MAX_RAYS
    from rlrobot.envs.tasks.navigate import MAX_OBSTACLES

    start = time.perf_counter()
    env = gym.make("rlrobot/Navigate-v0", n_obstacles=MAX_OBSTACLES, n_rays=MAX_RAYS)
    try:
        observation, _ = env.reset(seed=0)
        env.step(env.action_space.sample())
    finally:
        env.close()
    assert observation["observation"].shape == (8 + MAX_RAYS,)
    assert time.perf_counter() - start < 10.0  # measured: about 0.5 s


def test_pixels_at_the_cap_render():
    env = gym.make(
        "rlrobot/CartPole-v0",
        obs_mode="pixels",
        pixels_width=MAX_IMAGE_SIDE,
        pixels_height=MAX_IMAGE_SIDE,
    )
    try:
        observation, _ = env.reset(seed=0)
    finally:
        env.close()
    assert observation.shape == (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE, 3)


def test_record_size_above_the_cap_is_a_usage_error(tmp_path, capsys):
    start = time.perf_counter()
    with pytest.raises(SystemExit) as caught:
        main(["record", str(tmp_path), "--size", "20000"])
    assert caught.value.code == 2
    assert time.perf_counter() - start < REFUSAL_LIMIT_S
    assert f"must be at most {MAX_IMAGE_SIDE} px, got 20000" in capsys.readouterr().err


def test_gallery_size_above_the_cap_is_refused(tmp_path, capsys):
    assert main(["envs", "--gallery", str(tmp_path), "--width", "20000"]) == 2
    assert f"--width and --height must be in [1, {MAX_IMAGE_SIDE}] px" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_dataset_image_size_above_the_cap_is_refused():
    start = time.perf_counter()
    with pytest.raises(DatasetError, match=f"image_size in \\[1, {MAX_IMAGE_SIDE}\\] px"):
        collect_images("rlrobot/Reach-v0", n_episodes=1, image_size=20000)
    assert time.perf_counter() - start < REFUSAL_LIMIT_S
