"""The one YAML reader of rlrobot: PyYAML's safe loader, refusing duplicate mapping keys.

PyYAML keeps the last of two equal keys without a word, so a config file that sets
``learning_rate`` twice would silently lose one of them. Every YAML that rlrobot reads (config
files, ``--set`` values, a run's ``config.yaml``) goes through ``load_yaml``.

PyYAML follows YAML 1.1, where ``1e-3`` and ``1e5`` (no dot) are text; the loader reads them
as numbers, as YAML 1.2 and every Python user do, so ``--set learning_rate=1e-3`` is a float.

A document is refused (``yaml.YAMLError``) before any value is built when its aliases would
expand to more than ``MAX_EXPANDED_NODES`` nodes ("billion laughs": nine nested levels of
aliases make 10**9 strings from a few hundred bytes) or nest deeper than ``MAX_DEPTH``; and
PyYAML's own ``RecursionError`` and Python's 4300-digit limit on ints become the same error.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# A config's documents have hundreds of nodes; these bounds are far above any real one.
MAX_EXPANDED_NODES = 10**6
MAX_DEPTH = 100


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


def _check_size(root: yaml.Node) -> None:
    """Raise ``yaml.YAMLError`` if ``root`` expands (aliases followed) to too many nodes or
    nests too deeply; iterative, with each shared node's size counted once (memoised)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, children_done = stack.pop()
        if id(node) in sizes and not children_done:
            continue
        if depth > MAX_DEPTH:
            raise yaml.YAMLError(f"the document nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            sizes[id(node)] = 1
            continue
        if children_done:
            on_path.discard(id(node))
            size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_EXPANDED_NODES:
                raise yaml.YAMLError(
                    f"the document expands to more than {MAX_EXPANDED_NODES:,} values through "
                    "its aliases (&anchor / *alias); write the values out"
                )
            sizes[id(node)] = size
            continue
        if id(node) in on_path:  # a node that holds itself (PyYAML allows it): unbounded
            raise yaml.YAMLError("the document holds a value that contains itself (an alias)")
        on_path.add(id(node))
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document like ``yaml.safe_load``; a duplicate key, a document too large
    once its aliases are expanded, too deep, or with an over-long number is a ``yaml.YAMLError``."""
    # What ``yaml.load(text, Loader=_StrictLoader)`` does; the loader is a ``SafeLoader``, so it
    # builds plain values only, never objects.
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError(f"the document nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # int("1" * 5000): Python's limit on the digits of an int
        # The rest of Python's message is advice for programmers (sys.set_int_max_str_digits).
        raise yaml.YAMLError(f"a value cannot be read: {str(error).split(';')[0]}") from None
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
