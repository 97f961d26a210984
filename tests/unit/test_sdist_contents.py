"""The sdist holds what a rebuild and the test suite need, whole: hatchling reads its ``include``
patterns gitignore-style, so an unanchored ``"daemon"`` also took ``tests/daemon/`` (without the
``tests/conftest.py`` those tests need) and ``"claif_cod"`` ``editors/nvim/lua/claif_cod/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib is 3.11+
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
WHOLE = {"claif_cod", "daemon", "systemd", "docs", "tests", "editors"}
"""The folders the sdist carries: the packages, the units the wheel bundles, and what the tests read."""


def _sdist_files() -> tuple[list[str], set[str]]:
    """The checkout's files, and those the sdist's patterns select, matched as hatchling matches them."""
    pathspec = pytest.importorskip("pathspec", reason="pathspec (hatchling's matcher) is not installed")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout (an unpacked sdist)")
    files = listed.stdout.splitlines()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    spec = pathspec.GitIgnoreSpec.from_lines(config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"])
    return files, {name for name in files if spec.match_file(name)}


def test_the_sdist_takes_whole_folders_and_nothing_else() -> None:
    files, selected = _sdist_files()
    for name in files:
        top = name.split("/", 1)[0]
        assert (name in selected) == (top in WHOLE or name == "README.md"), name
