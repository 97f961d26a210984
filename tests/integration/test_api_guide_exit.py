"""Every API guide example, run as a script that never closes its clients, exits quietly.

Each example runs in a fresh interpreter (``guide_exit.py``) with Codex in-process; its stderr
must be empty (no "Task was destroyed", no "Event loop is closed", no warning) and no Codex
process may outlive it. ``tests/daemon/test_api_guide_exit_via_daemon.py`` does the same through
a running claif-codd.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_guide import EXAMPLE_CODEX_HOME, EXAMPLE_FOLDERS, Example, load_examples, unsupported_here
from guide_exit import can_reap, run_fresh
from test_api_guide import NEEDS_DAEMON, NO_GUIDE

from claif_cod.testing import ModelServer, write_codex_home

pytestmark = [pytest.mark.codex, pytest.mark.timeout(150)]

GUIDE, EXAMPLES = load_examples()
_NEEDS_DAEMON = pytest.mark.skip(reason="needs a daemon: see tests/daemon/test_api_guide_exit_via_daemon.py")
_PARAMS = [pytest.param(e, id=e.id, marks=[_NEEDS_DAEMON] if e.id in NEEDS_DAEMON else []) for e in EXAMPLES] or [
    pytest.param(None, id="no-guide", marks=pytest.mark.skip(reason=NO_GUIDE))
]


def script_env(tmp_path: Path, server: ModelServer) -> tuple[Path, dict[str, str]]:
    """A working directory like the guide test's and the environment of a user's script.

    ``HOME`` is private: Codex runs the user's login shell, and what a real ``~/.bashrc`` starts
    in the background is not the script's doing.
    """
    workdir = tmp_path / "work"
    for folder in EXAMPLE_FOLDERS:
        (workdir / folder).mkdir(parents=True)
    write_codex_home(workdir / EXAMPLE_CODEX_HOME, server.url)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "CODEX_HOME": str(write_codex_home(tmp_path / "codex-home", server.url))}
    return workdir, env


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.mark.skipif(not can_reap(), reason="finding leftover processes needs Linux's child subreaper")
@pytest.mark.parametrize("example", _PARAMS)
def test_example_exits_quietly_in_process(example: Example, server: ModelServer, tmp_path: Path) -> None:
    assert GUIDE is not None
    if (reason := unsupported_here(example.id)) is not None:
        pytest.skip(reason)
    workdir, env = script_env(tmp_path, server)
    env["CLAIF_COD_DAEMON"] = "off"
    result = run_fresh(GUIDE, example.id, cwd=workdir, env=env, report=tmp_path / "report.json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.left_running == []
