"""The checks robots, tasks and envs run on their options, with one message format.

Each returns the value it checked, so a constructor checks and stores an option in one line.
"""

from __future__ import annotations

import numbers
from typing import Any, TypeVar

T = TypeVar("T")

# Side (px) of rendered frames and pixel observations. TinyRenderer's time grows with the
# pixel count: at 2048×2048 the slowest env (Quadruped) takes 1.4 s per frame on 2 shared
# cores, at 4096 5.6 s, and a 20000×20000 frame (1.2 GB) runs on for minutes.
MAX_IMAGE_SIDE = 2048


def check_choice(name: str, value: T, choices: tuple) -> T:
    """Return `value`; raise ValueError unless it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_positive(name: str, value: Any, unit: str = "", allow_zero: bool = False) -> Any:
    """Return `value`; raise ValueError unless it is > 0 (>= 0 with `allow_zero`; never NaN)."""
    if not (value >= 0 if allow_zero else value > 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}{' ' + unit if unit else ''}, got {value}")
    return value


def check_count(name: str, value: Any, low: int, high: int, reason: str = "") -> int:
    """Return `value`; raise ValueError unless it is an integer in [low, high].

    For sizes and counts whose cost grows with the value: `high` is a documented cap that
    keeps building and stepping the env fast, and `reason` says what it protects.
    """
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or not low <= value <= high:
        because = f" ({reason})" if reason else ""
        raise ValueError(f"{name} must be an integer in [{low}, {high}]{because}, got {value!r}")
    return int(value)
