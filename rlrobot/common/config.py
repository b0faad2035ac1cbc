"""Config dataclasses with strict validation: unknown keys, wrong types and bad ranges are errors.

Each algorithm declares ``@dataclass class PPOConfig(BaseConfig)`` with fields made by
``option(default, "help text", interval=...)``. ``from_dict`` rejects unknown keys (suggesting
close matches), values of the wrong type, and numbers that are not finite or lie outside the
field's declared ``Interval`` (each number a field holds: the float of a float-or-schedule, each
size of a layer list), all through ``rlrobot.envs.checks.check_number``, with messages naming
the key, the value and the allowed range. ``validate`` is left with the rules that tie fields
together.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import numbers
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

from rlrobot.envs.checks import ANY_NUMBER, Interval, check_number, short_repr
from rlrobot.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="BaseConfig")

# The range of counts and sizes (steps, epochs, batch sizes): integers >= 1.
COUNT = Interval(1)
# Seeds: integers >= 0 up to what torch.manual_seed takes.
SEED = Interval(0, 2**64 - 1, reason="torch.manual_seed's range")
# torch CPU threads. A fixed bound, not os.cpu_count(): a run's config.yaml stays valid on
# another machine.
TORCH_THREADS = Interval(1, 1024, reason="torch.set_num_threads crashes the process at 100000")


def option(default: Any, help: str, interval: Interval | None = None) -> Any:
    """Declare a config field with a default, a help string (shown by the CLI) and, for a field
    that holds numbers, the ``Interval`` each of them must lie in."""
    metadata = {"help": help} if interval is None else {"help": help, "interval": interval}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (Python's or NumPy's), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _convert(label: str, value: Any, annotation: Any, interval: Interval | None = None) -> Any:
    """Return ``value`` checked (and losslessly converted) against a type annotation.

    Args:
        label: How messages name the value (``"config key 'gamma'"``).
        value: The value given.
        annotation: The field's type hint.
        interval: Where each number the value holds must lie (None: any finite number).
    """
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = {}
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(label, value, arg, interval)
            except ConfigError as error:
                errors[arg] = error
        raise _union_error(label, value, annotation, errors)
    if origin is collections.abc.Callable:
        # Only Python callers pass these (SB3's schedules); YAML files cannot hold one.
        if callable(value):
            return value
        raise ConfigError(f"{label}: expected a number or a callable, got {short_repr(value)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{label}: expected one of {list(args)}, got {short_repr(value)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label}: expected a list, got {short_repr(value)}")
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:
            # A fixed-length tuple such as (frequency, unit): one type per position.
            if len(value) != len(args):
                raise ConfigError(
                    f"{label}: expected {len(args)} items, got {short_repr(list(value))}"
                )
            pairs = zip(value, args, strict=True)
            return tuple(_convert(label, item, arg, interval) for item, arg in pairs)
        item_type = args[0] if args else Any
        items = [_convert(label, item, item_type, interval) for item in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: expected a mapping, got {short_repr(value)}")
        return dict(value)
    if annotation in (int, float) and _is_real(value):
        try:
            return check_number(f"{label}:", value, annotation, interval or ANY_NUMBER)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        except OverflowError:  # an int beyond a float's range (check_number compares floats)
            raise ConfigError(
                f"{label}: {short_repr(value)} is beyond any allowed value (over 1.8e308)"
            ) from None
    is_other_class = isinstance(annotation, type) and annotation not in (int, float)
    if is_other_class and isinstance(value, annotation):  # bool, str, a protocol
        return value
    raise ConfigError(
        f"{label}: expected {_type_name(annotation)}, got {type(value).__name__} "
        f"{short_repr(value)}"
    )


def _is_python_only(annotation: Any) -> bool:
    """Whether only Python code can give a value of this type (a callable, a protocol object)."""
    return get_origin(annotation) is collections.abc.Callable or getattr(
        annotation, "_is_protocol", False
    )


def _union_error(label: str, value: Any, annotation: Any, errors: dict[Any, ConfigError]) -> Any:
    """Return the error for a value that fits no member of a union.

    The error is that of the form the value was meant for, which the user can act on: a
    number's (its range) for a number, a list's for a list; where the union mixes plain and
    Python-only forms (a number or a callable), the first plain form's otherwise.
    """
    members = list(errors)
    if _is_real(value):
        for arg in members:
            if arg in (int, float):
                return errors[arg]
    is_sequence = isinstance(value, (list, tuple))
    if any(_is_python_only(arg) or get_origin(arg) in (tuple, list) for arg in members):
        for arg in members:
            if (get_origin(arg) in (tuple, list)) == is_sequence and not _is_python_only(arg):
                return errors[arg]
    return ConfigError(f"{label}: expected {_type_name(annotation)}, got {short_repr(value)}")


def check_argument(
    name: str, value: Any, kind: type = float, interval: Interval = ANY_NUMBER
) -> Any:
    """Return ``value`` as ``kind`` (``check_number``'s rules); raise ``ConfigError`` naming
    ``name``, the value and the range unless it is a finite number in ``interval``."""
    try:
        return check_number(name, value, kind, interval)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def did_you_mean(name: str, known: list[str]) -> str:
    """Return ``"; did you mean 'a' or 'b'?"`` for up to three close ``known`` names, or ``""``."""
    close = difflib.get_close_matches(name, known, n=3)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def unknown_key_error(key: str, known: list[str], owner: str) -> ConfigError:
    """Return the error for an unknown ``key``, suggesting up to three close ``known`` keys."""
    suggestion = did_you_mean(key, known)
    return ConfigError(f"unknown config key {short_repr(key)} for {owner}{suggestion}")


@functools.cache
def _fields(config_class: type) -> dict[str, dataclasses.Field]:
    """Return a config class's fields by name (cached: read once per class)."""
    return {field.name: field for field in dataclasses.fields(config_class)}


@functools.cache
def _field_interval(config_class: type, key: str) -> Interval | None:
    """Return the interval of ``key`` declared by ``config_class`` or its nearest base."""
    for base in config_class.__mro__:
        if dataclasses.is_dataclass(base) and key in _fields(base):
            interval = _fields(base)[key].metadata.get("interval")
            if interval is not None:
                return interval
    return None


@functools.cache
def _type_hints(config_class: type) -> dict[str, Any]:
    """Return a config class's resolved field hints (cached: resolving them is slow)."""
    return get_type_hints(config_class)


@dataclasses.dataclass
class BaseConfig:
    """Base of every algorithm config: strict ``from_dict``, ``to_dict`` and ``validate``."""

    @classmethod
    def field_names(cls) -> list[str]:
        """Return the names of all fields."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Return ``{field: help text}``."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def field_interval(cls, key: str) -> Interval | None:
        """Return the ``Interval`` declared for each number the field ``key`` holds, or None.

        A subclass that redeclares a field for another default or help keeps the range of
        the class that declared it, unless it declares its own.
        """
        return _field_interval(cls, key)

    @classmethod
    def check_field(cls, key: str, value: Any, label: str | None = None) -> Any:
        """Return ``value`` checked and converted for the field ``key``: type, finiteness and
        the declared range of each number it holds.

        Args:
            key: The field.
            value: The value given.
            label: How the message names the value (default ``"config key 'KEY'"``; an SB3
                argument that becomes this field names itself, ``"policy_kwargs['n_critics']"``).

        Raises:
            ConfigError: A wrong type, or a number that is not finite or outside the range.
        """
        hint = _type_hints(cls)[key]
        return _convert(label or f"config key {key!r}", value, hint, cls.field_interval(key))

    @classmethod
    def from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        """Build a config from a dict, checking keys, types and ranges.

        Raises:
            ConfigError: For an unknown key (with close matches), a wrong type or a bad value.
        """
        names = cls.field_names()
        converted = {}
        for key, value in values.items():
            if key not in names:
                raise unknown_key_error(key, names, cls.__name__)
            converted[key] = cls.check_field(key, value)
        config = cls(**converted)
        config.validate()
        return config

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        """Return a validated copy with some fields changed."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON/YAML-friendly dict (tuples become lists)."""
        result = {}
        for name in self.field_names():
            value = getattr(self, name)
            result[name] = list(value) if isinstance(value, tuple) else value
        return result

    def validate(self) -> None:
        """Check the rules that tie fields together; subclasses extend it and raise
        ``ConfigError`` (each field's own type and range are checked by ``check_field``)."""

    def _require(self, condition: bool, key: str, message: str) -> None:
        if not condition:
            value = short_repr(getattr(self, key))
            raise ConfigError(f"config key {key!r}: {message}, got {value}")
