"""The checks robots, tasks and envs run on their options, with one message format."""

from __future__ import annotations

from typing import Any


def check_choice(name: str, value: Any, choices: tuple) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_positive(name: str, value: float, unit: str = "", allow_zero: bool = False) -> None:
    """Raise ValueError unless `value` > 0 (>= 0 with `allow_zero`; NaN never passes)."""
    if not (value >= 0 if allow_zero else value > 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}{' ' + unit if unit else ''}, got {value}")
