"""The checks robots, tasks and envs run on their options, with one message format.

Each returns the value it checked, so a constructor checks and stores an option in one line.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


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
