"""The layer contract: rlrobot's imports point one way, with no cycle and no ``importlib`` detour.

Data flows sim → envs → common → vec → agents → perception → run → benchmark → cli (with
``errors`` and ``lazy``, which import nothing of rlrobot, below everything). A module may import
its own layer and the layers below it. The graph is grimp's (imports inside functions count),
plus every string in the source that names an rlrobot module (``"rlrobot.x.y"`` or
``"rlrobot.x.y:name"``), which is what ``importlib.import_module`` and entry points are given.
Imports under ``if TYPE_CHECKING:`` must point downward too, but make no cycle: they never run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

import rlrobot

LAYERS: list[set[str]] = [
    {"errors", "lazy"},
    {"sim"},
    {"envs"},
    {"common"},
    {"vec"},
    {"agents"},
    {"perception"},
    {"run"},
    {"benchmark"},
    {"cli"},
]
MODULE_NAME = re.compile(r"^(rlrobot(?:\.[a-z_][a-z0-9_]*)+)(?::[A-Za-z_][A-Za-z0-9_]*)?$")
PACKAGE_DIR = Path(rlrobot.__file__).parent


def layer_of(module: str) -> int | None:
    """Return the index in ``LAYERS`` of ``module``'s layer; None for the root package."""
    parts = module.split(".")
    if len(parts) == 1:
        return None  # ``rlrobot/__init__.py`` registers the envs: it sits above nothing
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its group to LAYERS")


def upward_imports(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """Return ``"importer -> imported"`` for every import of a higher layer."""
    found = []
    for importer, imported in sorted((a, b) for a, targets in edges.items() for b in targets):
        low, high = layer_of(importer), layer_of(imported)
        if low is not None and high is not None and high > low:
            found.append(f"{importer} -> {imported}")
    return found


def import_cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def module_of(path: Path) -> str:
    """Return the dotted module name of a source file under ``PACKAGE_DIR``."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def named_modules(source: str) -> set[str]:
    """Return the rlrobot modules that string constants in ``source`` name."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = MODULE_NAME.match(node.value)
            if match:
                names.add(match.group(1))
    return names


def build_import_graph(exclude_type_checking_imports: bool) -> dict[str, set[str]]:
    """rlrobot's module graph: grimp's imports plus modules named in strings."""
    graph = grimp.build_graph(
        "rlrobot", exclude_type_checking_imports=exclude_type_checking_imports
    )
    edges = {
        module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules
    }
    for path in PACKAGE_DIR.rglob("*.py"):
        importer = module_of(path)
        edges.setdefault(importer, set()).update(
            name for name in named_modules(path.read_text()) if name != importer
        )
    return edges


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    """Every import, ``if TYPE_CHECKING:`` ones included: they too must point downward."""
    return build_import_graph(exclude_type_checking_imports=False)


@pytest.fixture(scope="module")
def runtime_import_graph() -> dict[str, set[str]]:
    """The imports that run: a type-only import of a module that imports back is no cycle."""
    return build_import_graph(exclude_type_checking_imports=True)


def test_the_graph_holds_the_whole_package(import_graph):
    assert len(import_graph) == len(list(PACKAGE_DIR.rglob("*.py")))
    assert "rlrobot.sim" in import_graph["rlrobot.envs.core"]
    assert "rlrobot.agents.ppo" in import_graph["rlrobot.agents"]


def test_no_module_imports_a_higher_layer(import_graph):
    assert upward_imports(import_graph) == []


def test_there_is_no_import_cycle(runtime_import_graph):
    assert import_cycles(runtime_import_graph) == []


def test_only_sim_imports_pybullet():
    importers = sorted(
        module_of(path)
        for path in PACKAGE_DIR.rglob("*.py")
        if re.search(r"^\s*(import|from) pybullet", path.read_text(), re.MULTILINE)
    )
    assert importers and all(name.startswith("rlrobot.sim") for name in importers), importers


def test_the_checks_catch_an_upward_import_a_cycle_and_an_importlib_detour():
    planted = {
        "rlrobot.common.networks": {"rlrobot.perception.models"},
        "rlrobot.agents.base": {"rlrobot.agents"},
        "rlrobot.agents": {"rlrobot.agents.base"},
    }
    assert upward_imports(planted) == ["rlrobot.common.networks -> rlrobot.perception.models"]
    assert import_cycles(planted) == [["rlrobot.agents", "rlrobot.agents.base"]]
    source = 'importlib.import_module("rlrobot.perception.models")\nB = "rlrobot.envs.core:Env"'
    assert named_modules(source) == {"rlrobot.perception.models", "rlrobot.envs.core"}
