"""Config dataclasses with strict validation: unknown keys, wrong types and bad ranges are errors.

Each algorithm declares ``@dataclass class PPOConfig(BaseConfig)`` with fields made by
``option(default, "help text")``. ``from_dict`` rejects unknown keys (suggesting close matches)
and values of the wrong type (naming the key); ``validate`` checks ranges.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from rlrobot.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="BaseConfig")


def option(default: Any, help: str) -> Any:
    """Declare a config field with a default and a help string (shown by the CLI)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help}
        )
    return dataclasses.field(default=default, metadata={"help": help})


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _convert(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` checked (and losslessly converted) against a type annotation."""
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
                return _convert(key, value, arg)
            except ConfigError as error:
                errors[arg] = error
        raise _union_error(key, value, annotation, errors)
    if origin is collections.abc.Callable:
        # Only Python callers pass these (SB3's schedules); YAML files cannot hold one.
        if callable(value):
            return value
        raise ConfigError(f"config key {key!r}: expected a number or a callable, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key {key!r}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:
            # A fixed-length tuple such as (frequency, unit): one type per position.
            if len(value) != len(args):
                raise ConfigError(
                    f"config key {key!r}: expected {len(args)} items, got {list(value)!r}"
                )
            return tuple(_convert(key, item, arg) for item, arg in zip(value, args, strict=True))
        item_type = args[0] if args else Any
        items = [_convert(key, item, item_type) for item in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "3e-4" as a string; accept numeric strings for float fields.
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise ConfigError(
        f"config key {key!r}: expected {_type_name(annotation)}, got {type(value).__name__} "
        f"{value!r}"
    )


def _is_python_only(annotation: Any) -> bool:
    """Whether only Python code can give a value of this type (a callable, a protocol object)."""
    return get_origin(annotation) is collections.abc.Callable or getattr(
        annotation, "_is_protocol", False
    )


def _union_error(key: str, value: Any, annotation: Any, errors: dict[Any, ConfigError]) -> Any:
    """Return the error for a value that fits no member of a union.

    Where the union mixes forms (a number or a callable; a number or a list), the error is
    that of the form the value was meant for, which a YAML user can act on: a list's for a
    list, the first plain form's otherwise.
    """
    members = list(errors)
    is_sequence = isinstance(value, (list, tuple))
    if any(_is_python_only(arg) or get_origin(arg) in (tuple, list) for arg in members):
        for arg in members:
            if (get_origin(arg) in (tuple, list)) == is_sequence and not _is_python_only(arg):
                return errors[arg]
    return ConfigError(f"config key {key!r}: expected {_type_name(annotation)}, got {value!r}")


def did_you_mean(name: str, known: list[str]) -> str:
    """Return ``"; did you mean 'a' or 'b'?"`` for up to three close ``known`` names, or ``""``."""
    close = difflib.get_close_matches(name, known, n=3)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def unknown_key_error(key: str, known: list[str], owner: str) -> ConfigError:
    """Return the error for an unknown ``key``, suggesting up to three close ``known`` keys."""
    return ConfigError(f"unknown config key {key!r} for {owner}{did_you_mean(key, known)}")


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
    def from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        """Build a config from a dict, checking keys, types and ranges.

        Raises:
            ConfigError: For an unknown key (with close matches), a wrong type or a bad value.
        """
        names = cls.field_names()
        hints = get_type_hints(cls)
        converted = {}
        for key, value in values.items():
            if key not in names:
                raise unknown_key_error(key, names, cls.__name__)
            converted[key] = _convert(key, value, hints[key])
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
        """Check value ranges; subclasses extend it and raise ``ConfigError``."""

    def _require(self, condition: bool, key: str, message: str) -> None:
        if not condition:
            raise ConfigError(f"config key {key!r}: {message}, got {getattr(self, key)!r}")
