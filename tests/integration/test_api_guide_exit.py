"""Every API guide example, run as a script that never closes its clients, exits quietly.

Each example runs in a fresh interpreter (``guide_exit.py``) with Codex in-process; its stderr
must be empty (no "Task was destroyed", no "Event loop is closed", no warning) and no Codex
process may outlive it. ``tests/daemon/test_api_guide_exit_via_daemon.py`` does the same through
a running claif-codd. The next test's example runs beside the current one's (``guide_lookahead``),
each in directories of its own with a model server of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from api_guide import EXAMPLE_CODEX_HOME, EXAMPLE_FOLDERS, Example, load_examples, unsupported_here
from guide_exit import Exit, can_reap, ours_in, run_fresh
from guide_lookahead import Lookahead, lookahead
from test_api_guide import NEEDS_DAEMON, NO_GUIDE

from claif_cod.testing import ModelServer, write_codex_home

pytestmark = [pytest.mark.codex, pytest.mark.timeout(150)]

GUIDE, EXAMPLES = load_examples()
_NEEDS_DAEMON = pytest.mark.skip(reason="needs a daemon: see tests/daemon/test_api_guide_exit_via_daemon.py")
_PARAMS = [pytest.param(e, id=e.id, marks=[_NEEDS_DAEMON] if e.id in NEEDS_DAEMON else []) for e in EXAMPLES] or [
    pytest.param(None, id="no-guide", marks=pytest.mark.skip(reason=NO_GUIDE))
]


def script_env(tmp_path: Path, server: ModelServer, base: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
    """A working directory like the guide test's and the environment of a user's script, from ``base``.

    ``HOME`` (and the state directory under it) is private: Codex runs the user's login shell, and
    what a real ``~/.bashrc`` starts in the background is not the script's doing. So is ``TMPDIR``
    (``tmp_path / "tmp"``): the next test's example runs beside this one (``guide_lookahead``), and
    what either leaves there is its own.
    """
    workdir = tmp_path / "work"
    for folder in EXAMPLE_FOLDERS:
        (workdir / folder).mkdir(parents=True)
    write_codex_home(workdir / EXAMPLE_CODEX_HOME, server.url)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "tmp").mkdir()
    env = {
        **base,
        "TMPDIR": str(tmp_path / "tmp"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "CODEX_HOME": str(write_codex_home(tmp_path / "codex-home", server.url)),
    }
    return workdir, env


def run_in_process(example: Example, tmp_path: Path, base: dict[str, str]) -> Exit:
    """The example as a script with Codex in-process, against a model server of its own."""
    assert GUIDE is not None
    tmp_path.mkdir()
    with ModelServer() as server:
        workdir, env = script_env(tmp_path, server, base)
        env["CLAIF_COD_DAEMON"] = "off"
        result = run_fresh(GUIDE, example.id, cwd=workdir, env=env, report=tmp_path / "report.json")
    return replace(result, left_in_tmp=ours_in(tmp_path / "tmp"))


def runs_here(example: Example) -> bool:
    return example.id not in NEEDS_DAEMON and unsupported_here(example.id) is None


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lookahead]:
    with lookahead(run_in_process, tmp_path_factory.mktemp("guide-exit"), runs_here) as ahead:
        yield ahead


@pytest.mark.skipif(not can_reap(), reason="finding leftover processes needs Linux's child subreaper")
@pytest.mark.parametrize("example", _PARAMS)
def test_example_exits_quietly_in_process(
    example: Example, examples: Lookahead, request: pytest.FixtureRequest
) -> None:
    if (reason := unsupported_here(example.id)) is not None:
        pytest.skip(reason)
    result = examples.exit_of(request)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.left_running == []
    assert result.left_in_tmp == []
