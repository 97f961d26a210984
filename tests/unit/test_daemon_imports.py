"""Imports flow one way, in the daemon package and in claif_cod: every import counts,
``TYPE_CHECKING`` and local ones too."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import claif_cod
import claif_codd

PACKAGES = {"claif_cod": Path(claif_cod.__file__).parent, "claif_codd": Path(claif_codd.__file__).parent}
COMPOSITION_ROOT = {"claif_codd.run", "claif_codd.cli"}
"""The only modules that may import the server: they build it."""


def _module_name(path: Path) -> str:
    root = next(root for root in PACKAGES.values() if path.is_relative_to(root))
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(*packages: str) -> dict[str, set[str]]:
    """Each module of ``packages`` → the modules of ``packages`` it imports anywhere in its source."""
    paths = {_module_name(path): path for package in packages for path in PACKAGES[package].rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in paths else base)
        graph[name] = {target for target in targets if target in paths and target != name}
    return graph


def test_the_import_graph_is_read() -> None:
    graph = _import_graph("claif_codd", "claif_cod")
    assert {"claif_codd.connection", "claif_codd.methods", "claif_codd.http.app"} <= graph["claif_codd.server"]
    assert "claif_codd.host" in graph["claif_codd.connection"]
    assert {"claif_cod.engine.wire", "claif_cod.engine.child_process"} <= graph["claif_cod.engine.appserver"]
    assert "claif_cod.engine.thread_handle" in graph["claif_cod.engine.idle"]  # under TYPE_CHECKING
    assert "claif_cod.protocol.params" in graph["claif_cod.protocol.messages"]  # a relative import
    assert "claif_cod.engine.wire_items" in graph["claif_codd.methods"]  # across the two packages


def test_only_the_composition_root_imports_the_server() -> None:
    importers = {name for name, targets in _import_graph("claif_codd").items() if "claif_codd.server" in targets}
    assert importers <= COMPOSITION_ROOT


@pytest.mark.parametrize("packages", [("claif_codd",), ("claif_cod",), ("claif_cod", "claif_codd")])
def test_no_import_cycle(packages: tuple[str, ...]) -> None:
    sorter = graphlib.TopologicalSorter(_import_graph(*packages))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle, each importing the next: {' -> '.join(reversed(exc.args[1]))}") from None
