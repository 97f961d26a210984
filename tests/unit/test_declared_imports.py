"""Every third-party module the packages import is a declared dependency of the wheel: an import
that only works because another dependency happens to pull its package in (``httpx2``, openai's
HTTP client, which the transport implements) breaks for a user the day that dependency's own
requirements change.  Read from the source with ``ast``, so no wheel is built."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib.metadata import distributions
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib is 3.11+
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (ROOT / "claif_cod", ROOT / "daemon" / "claif_codd")
FIRST_PARTY = {"claif_cod", "claif_codd"}
EXTRA_FOR = {"daemon/claif_codd/http/": "http"}
"""Modules only loaded with an extra installed (``serve --http`` checks for aiohttp before it imports them)."""
RUN_BY = {"claif_cod/testing/pytest_plugin.py": {"pytest"}}
"""Modules only ever imported by a program that is itself installed: pytest loads its plugin."""


def _name(requirement: str) -> str:
    """A requirement's project name, normalised as PEP 503 compares them."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _imports(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Top-level names of absolute imports, anywhere but under ``if TYPE_CHECKING:`` (not run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from (found for child in node.orelse for found in _imports(child))
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
        yield from _imports(node)


def _module_distributions() -> dict[str, list[str]]:
    """Top-level module → the installed distributions that provide it, read from their files, as
    Python 3.11's ``packages_distributions`` does (3.10's reads only ``top_level.txt``, which
    ``openai-codex-cli-bin`` has none of)."""
    found: dict[str, list[str]] = {}
    for dist in distributions():
        for file in dist.files or ():
            top = file.parts[0] if len(file.parts) > 1 else file.name.removesuffix(".py")
            if ".dist-info" not in top and ".egg-info" not in top and top.isidentifier():
                names = found.setdefault(top, [])
                if dist.metadata["Name"] not in names:
                    names.append(dist.metadata["Name"])
    return found


def test_every_third_party_import_is_declared() -> None:
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not a source checkout")
    project = tomllib.loads(pyproject.read_text())["project"]
    declared = {_name(requirement) for requirement in project["dependencies"]}
    extras = {extra: {_name(r) for r in reqs} for extra, reqs in project["optional-dependencies"].items()}
    provided_by = _module_distributions()
    undeclared = []
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            allowed = set(declared)
            allowed |= {n for prefix, extra in EXTRA_FOR.items() if relative.startswith(prefix) for n in extras[extra]}
            allowed |= RUN_BY.get(relative, set())
            for module, line in _imports(ast.parse(path.read_text(), relative)):
                if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
                    continue
                names = {_name(dist) for dist in provided_by.get(module, [module])}
                if not names & allowed:
                    undeclared.append(f"{relative}:{line}: {module} ({', '.join(sorted(names))})")
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)
