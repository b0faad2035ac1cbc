"""The one option-check helper (`rlrobot.envs.checks`) and the spec of an env id's keywords."""

from __future__ import annotations

import math
from typing import Annotated, Any

import pytest

import rlrobot  # noqa: F401 - registers the env ids
from rlrobot.envs.checks import (
    Interval,
    NonNegative,
    Positive,
    check_arguments,
    check_value,
    checked_hints,
)
from rlrobot.envs.core import ImageSide
from rlrobot.envs.registration import DELAYED_ENV_ID, get_options
from rlrobot.envs.reward_delay import ReleasePeriod
from rlrobot.envs.robots.racecar import RayCount

Angle = Annotated[float, Interval(0, math.pi, low_open=True, unit="rad", reason="one turn")]


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (Interval(), "(-inf, inf)"),
        (Interval(0, low_open=True, unit="m"), "(0, inf) m"),
        (Interval(1, 2048, unit="px"), "[1, 2048] px"),
        (Interval(0, 1, high_open=True), "[0, 1)"),
    ],
)
def test_an_interval_reads_as_its_range(interval, text):
    assert str(interval) == text


@pytest.mark.parametrize(
    ("hint", "value", "checked"),
    [
        (Positive, 3, 3.0),
        (NonNegative, 0, 0.0),
        (Angle, math.pi, math.pi),
        (Annotated[int, Interval(1)], 2.0, 2),  # YAML's !!float 2 and SB3 users' 2.0
        (bool, False, False),
        (ReleasePeriod, None, None),
        (tuple[float, float], [1, 2], [1.0, 2.0]),
        (str, "anything", "anything"),  # not a number: its owner checks it
    ],
)
def test_an_allowed_value_is_returned_converted(hint, value, checked):
    result = check_value("option", value, hint)
    assert result == checked and type(result) is type(checked)


@pytest.mark.parametrize(
    ("hint", "value", "message"),
    [
        (Positive, 0.0, "option must be a finite number in (0, inf), got 0.0"),
        (Positive, math.nan, "option must be a finite number in (0, inf), got nan"),
        (NonNegative, True, "option must be a finite number in [0, inf), got True"),
        (NonNegative, "1", "option must be a finite number in [0, inf), got '1'"),
        (NonNegative, 1j, "option must be a finite number in [0, inf), got 1j"),
        (Angle, 4.0, "option must be a finite number in (0, 3.14159] rad (one turn), got 4.0"),
        (RayCount, 2.5, "option must be an integer in [1, 4096] (cast every step), got 2.5"),
        (ImageSide, math.inf, "option must be an integer in [1, 2048] px (larger frames"),
        (ReleasePeriod, 0, "option must be an integer in [1, inf) steps, got 0"),
        (bool, "yes", "option must be true or false, got 'yes'"),
        (bool, 1, "option must be true or false, got 1"),
        (tuple[float, float], (1.0, math.inf), "option[1] must be a finite number"),
        (tuple[float, float], (1.0, 2.0, 3.0), "option must hold 2 values, got (1.0, 2.0, 3.0)"),
        (tuple[float, float], "1, 2", "option must be a sequence of values, got '1, 2'"),
        (tuple[float, float], math.nan, "option must be a sequence of values, got nan"),
    ],
)
def test_a_bad_value_is_named_with_its_range(hint, value, message):
    with pytest.raises(ValueError) as caught:
        check_value("option", value, hint)
    assert str(caught.value).startswith(message)


@check_arguments
def _build(speed: Positive, count: RayCount = 16, *, flag: bool = False, **rest: Any) -> tuple:
    """A checked constructor: its hinted arguments are checked and converted before it runs."""
    return speed, count, flag, rest


def test_check_arguments_checks_positional_keyword_and_passes_the_rest():
    assert _build(1, 2.0, flag=True, other="x") == (1.0, 2, True, {"other": "x"})
    with pytest.raises(ValueError, match="speed must be a finite number in \\(0, inf\\), got -1"):
        _build(-1)
    with pytest.raises(ValueError, match="flag must be true or false, got 'no'"):
        _build(1, flag="no")
    # The hints are the function's own, read through the decorator.
    assert set(checked_hints(_build)) == {"speed", "count", "flag", "rest"}


def test_get_options_follows_the_keywords_to_the_robot_env():
    options = get_options("rlrobot/Navigate-v0")
    assert options["n_rays"].annotation == RayCount and options["n_rays"].default == 16
    assert options["pixels_width"].annotation == ImageSide  # a RobotTaskEnv option
    # What the subclass passes itself is no gym.make keyword.
    assert not {"build", "timestep", "n_substeps", "camera", "options"} & set(options)
    assert list(get_options(DELAYED_ENV_ID)) == ["period"]
