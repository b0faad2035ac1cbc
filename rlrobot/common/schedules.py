"""Schedules: a value as a function of ``progress_remaining`` (1 at the start of training, 0 at
the end), SB3's ``Schedule``.

A config field such as ``learning_rate`` holds a float or a callable. A float goes with a kind
field (``lr_schedule: constant | linear``, the form a YAML file can hold); ``get_schedule``
turns both forms into one function. Checkpoints store JSON, so ``describe_schedule`` gives back
the float-and-kind form of the schedules that have one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rlrobot.errors import ConfigError

Schedule = Callable[[float], float]
ScheduleKind = Literal["constant", "linear"]


@dataclass(frozen=True)
class ConstantSchedule:
    """The same value at every progress."""

    value: float

    def __call__(self, progress_remaining: float) -> float:
        """Return ``value``."""
        return self.value


@dataclass(frozen=True)
class LinearSchedule:
    """``start`` at the beginning of training, falling linearly to 0 at its end."""

    start: float

    def __call__(self, progress_remaining: float) -> float:
        """Return ``start · progress_remaining``."""
        return self.start * progress_remaining


def get_schedule(value: float | Schedule, kind: ScheduleKind = "constant") -> Schedule:
    """Return the schedule of a float with its kind, or a callable unchanged."""
    if callable(value):
        return value
    return LinearSchedule(value) if kind == "linear" else ConstantSchedule(value)


def check_schedule(key: str, value: float | Schedule, kind: ScheduleKind, kind_key: str) -> None:
    """Check that a callable ``value`` gives finite values > 0 and has no ``kind``.

    A callable is checked at the start and at the end of training (progress 1 and 0); a
    float is checked by its config field's range.

    Raises:
        ConfigError: A callable that fails or returns no number, a value ≤ 0 or not finite,
            or a callable combined with a ``kind`` other than constant.
    """
    if not callable(value):
        return
    if kind != "constant":
        raise ConfigError(
            f"config key {kind_key!r}: {key} is already a schedule (a callable); leave "
            f"{kind_key} at 'constant', got {kind!r}"
        )
    start = _call_schedule(key, value, 1.0)
    if not 0 < start < math.inf:
        raise ConfigError(
            f"config key {key!r}: the schedule must give a finite value > 0 at the start "
            f"(progress_remaining=1), got {start!r}"
        )
    end = _call_schedule(key, value, 0.0)
    if not 0 <= end < math.inf:
        raise ConfigError(
            f"config key {key!r}: the schedule must give a finite value >= 0 at the end "
            f"(progress_remaining=0), got {end!r}"
        )


def _call_schedule(key: str, schedule: Schedule, progress_remaining: float) -> float:
    try:
        value = schedule(progress_remaining)
        return float(value)
    except Exception as error:
        raise ConfigError(
            f"config key {key!r}: the schedule {schedule!r} must map progress_remaining (a "
            f"float) to a number; calling it with {progress_remaining} raised "
            f"{type(error).__name__}: {error}"
        ) from None


# Where ``describe_schedule`` samples a callable to recognise a constant or linear one.
PROBES = (1.0, 0.75, 0.5, 0.25, 0.0)


def describe_schedule(schedule: Schedule) -> tuple[float, ScheduleKind] | None:
    """Return ``(value, kind)`` when ``schedule`` is constant or linear to 0, else None.

    Recognised by its values at ``PROBES``, so SB3's ``ConstantSchedule``, its
    ``LinearSchedule(start, 0.0, 1.0)`` and the ``lambda p: p * start`` of SB3's docs all
    have one.
    """
    try:
        values = [float(schedule(progress)) for progress in PROBES]
    except Exception:
        return None
    start = values[0]
    if all(math.isclose(value, start, rel_tol=1e-9) for value in values):
        return start, "constant"
    if all(
        math.isclose(value, start * progress, rel_tol=1e-9, abs_tol=1e-12 * abs(start))
        for value, progress in zip(values, PROBES, strict=True)
    ):
        return start, "linear"
    return None
