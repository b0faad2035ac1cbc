"""The one helper that checks option values, with one message format.

Robots, tasks, envs and agent configs declare what a numeric option may hold with
``Annotated[float, Interval(...)]`` (or a bool/int/float hint alone) and check it with
``check_value`` where it enters, or let ``check_arguments`` check every annotated argument of
a constructor. Each check returns the value it checked, so one line checks and stores it.
The message names the option, the value and what is allowed.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import reprlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import numpy as np

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Side (px) of rendered frames and pixel observations. TinyRenderer's time grows with the
# pixel count: at 2048×2048 the slowest env (Quadruped) takes 1.4 s per frame on 2 shared
# cores, at 4096 5.6 s, and a 20000×20000 frame (1.2 GB) runs on for minutes.
MAX_IMAGE_SIDE = 2048


@dataclass(frozen=True)
class Interval:
    """The range a numeric option may take; ``None`` is unbounded on that side.

    Attributes:
        low: Smallest allowed value (excluded with ``low_open``).
        high: Largest allowed value (excluded with ``high_open``).
        low_open: Whether ``low`` itself is refused.
        high_open: Whether ``high`` itself is refused.
        unit: Unit shown in messages (m, rad, N·m).
        reason: Why a cap exists, shown in messages (what a larger value would cost).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    unit: str = ""
    reason: str = ""

    def __contains__(self, value: float) -> bool:
        """Whether `value` lies in the interval."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        left = "(-inf" if self.low is None else f"{'(' if self.low_open else '['}{_bound(self.low)}"
        right = (
            "inf)" if self.high is None else f"{_bound(self.high)}{')' if self.high_open else ']'}"
        )
        unit = f" {self.unit}" if self.unit else ""
        return f"{left}, {right}{unit}"


def _bound(value: float) -> str:
    """A bound as written: integers exactly (a seed's 2**64 - 1), other numbers short (%g)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


ANY_NUMBER = Interval()
POSITIVE = Interval(0, low_open=True)
NON_NEGATIVE = Interval(0)
UNIT_INTERVAL = Interval(0, 1)

# Hints for option signatures: `force_magnitude: Positive` reads as what it allows.
Positive = Annotated[float, POSITIVE]
NonNegative = Annotated[float, NON_NEGATIVE]
Fraction = Annotated[float, UNIT_INTERVAL]


# Bounds on a value shown in a message: a YAML alias bomb ("billion laughs") is a few aliased
# lists that ``repr`` expands to 10**9 items, minutes of work and gigabytes of message.
_SHORT_REPR = reprlib.Repr()  # Python 3.11's takes no keywords
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 3, 60, 60
_SHORT_REPR.maxdict = _SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxset = 8
MAX_REPR_CHARS = 200


def shorten(text: str, limit: int = MAX_REPR_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters (ending in "...")."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: Any) -> str:
    """Return a ``repr`` of ``value`` of at most ``MAX_REPR_CHARS`` characters, however large,
    deep or aliased it is."""
    return shorten(_SHORT_REPR.repr(value))


def check_number(name: str, value: Any, kind: type = float, interval: Interval = ANY_NUMBER) -> Any:
    """Return `value` as `kind` (float or int); raise ValueError unless it is finite and allowed.

    A float must be a finite real number (not a bool, a string or complex); an int must be
    integral (2.0 is read as 2, as YAML's ``!!float 2`` and SB3 users write it).
    """
    allowed = f"in {interval}" + (f" ({interval.reason})" if interval.reason else "")
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind is int:
        integral = is_real and math.isfinite(value) and float(value).is_integer()
        if not integral or int(value) not in interval:
            raise ValueError(f"{name} must be an integer {allowed}, got {short_repr(value)}")
        return int(value)
    if not is_real or not math.isfinite(value) or value not in interval:
        raise ValueError(f"{name} must be a finite number {allowed}, got {short_repr(value)}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Return `value`; raise ValueError unless it is True or False (not "yes", not 1)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {short_repr(value)}")
    return bool(value)


def check_choice(name: str, value: T, choices: tuple) -> T:
    """Return `value`; raise ValueError unless it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {short_repr(value)}")
    return value


def check_value(name: str, value: Any, hint: Any) -> Any:
    """Return `value` checked against a type hint; raise ValueError if it does not fit.

    Checked hints: ``bool``, ``int``, ``float``, ``Annotated[int | float, Interval]``,
    ``X | None``, and fixed or variable tuples/lists of those (each item checked; anything
    but a tuple, a list or an array where a sequence belongs is refused). Any other
    hint (a class, a string choice) passes the value through: its owner checks it.
    """
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        base, *extras = args
        interval = next((extra for extra in extras if isinstance(extra, Interval)), ANY_NUMBER)
        if base in (int, float):
            return check_number(name, value, base, interval)
        return check_value(name, value, base)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        members = [arg for arg in args if arg is not type(None)]
        if len(members) == 1:
            return check_value(name, value, members[0])
        return value
    if origin in (tuple, list) and not isinstance(value, (tuple, list, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of values, got {short_repr(value)}")
    if origin in (tuple, list) and isinstance(value, (tuple, list)):
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            args = (args[0] if args else Any,) * len(value)
        elif len(args) != len(value):
            raise ValueError(f"{name} must hold {len(args)} values, got {short_repr(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return type(value)(check_value(f"{name}[{i}]", item, hint) for i, (item, hint) in pairs)
    if hint is bool:
        return check_bool(name, value)
    if hint in (int, float):
        return check_number(name, value, hint)
    return value


def checked_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Return the parameter hints of `function` that ``check_value`` acts on.

    Each string annotation is resolved alone in the function's module: one that names a
    type only imported for type checking (a ``Simulation``) is left out, not an error.
    """
    function = inspect.unwrap(function)  # a checked constructor's hints are its own
    namespace = {**vars(typing), **function.__globals__}
    hints = {}
    for parameter in inspect.signature(function).parameters.values():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # our own source's annotations
            except NameError:
                continue
        if annotation is not inspect.Parameter.empty:
            hints[parameter.name] = annotation
    return hints


def check_arguments(function: F) -> F:
    """Decorate a function (a constructor) so each call checks its hinted arguments first."""
    signature = inspect.signature(function)
    # Resolved at the first call: the module's names exist only once it has loaded.
    get_hints = functools.cache(lambda: checked_hints(function))

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        hints = get_hints()
        for name, value in bound.arguments.items():
            if name in hints:
                bound.arguments[name] = check_value(name, value, hints[name])
        return function(*bound.args, **bound.kwargs)

    return checked  # type: ignore[return-value]
