"""The one YAML reader of rlrobot: PyYAML's safe loader, refusing duplicate mapping keys.

PyYAML keeps the last of two equal keys without a word, so a config file that sets
``learning_rate`` twice would silently lose one of them. Every YAML that rlrobot reads (config
files, ``--set`` values, a run's ``config.yaml``) goes through ``load_yaml``.

PyYAML follows YAML 1.1, where ``1e-3`` and ``1e5`` (no dot) are text; the loader reads them
as numbers, as YAML 1.2 and every Python user do, so ``--set learning_rate=1e-3`` is a float.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises on a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build the mapping after checking that no key appears twice."""
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *defaults``: its keys may be overridden, that is its purpose
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first {seen[key]}); keep one",
                    key_node.start_mark,
                )
            seen[key] = f"on line {key_node.start_mark.line + 1}"
        return super().construct_mapping(node, deep=deep)


# YAML 1.2's exponent floats that YAML 1.1's pattern misses (it needs a dot: 1.0e-3).
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document like ``yaml.safe_load``; a duplicate key is a ``yaml.YAMLError``."""
    # What ``yaml.load(text, Loader=_StrictLoader)`` does; the loader is a ``SafeLoader``, so it
    # builds plain values only, never objects.
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """Return a ``yaml.YAMLError`` as one line: the problem and where it is (line, column)."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem is None:
        return " ".join(str(error).split())
    if mark is None:
        return problem
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
