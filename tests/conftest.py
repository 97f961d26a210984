"""Shared test setup: each test gets its own model server, CODEX_HOME and working directory.

``CLAIF_COD_TEST_CODEX=/path/to/codex`` runs the tests against that Codex binary instead of the
one bundled with ``openai-codex-cli-bin`` (see docs/testing.md); CI uses it for the newest npm release.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV_TEST_CODEX = "CLAIF_COD_TEST_CODEX"


def _chosen_codex() -> str | None:
    chosen = os.environ.get(ENV_TEST_CODEX)
    if not chosen:
        return None
    if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise pytest.UsageError(f"${ENV_TEST_CODEX}={chosen} is not an executable file")
    return chosen


def pytest_configure(config: pytest.Config) -> None:
    _chosen_codex()  # a bad value stops the run here: the header, which says it too, is not shown with -q


def pytest_report_header(config: pytest.Config) -> str:
    chosen = _chosen_codex()
    return f"codex: {chosen} (${ENV_TEST_CODEX})" if chosen else "codex: the bundled openai-codex-cli-bin binary"


WORKER_MEMORY = 1 << 30
"""What one pytest-xdist worker may take at its peak: its Codex processes, model servers and
daemons (two workers here peaked at ~1.4 GiB together)."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per CPU this process may run on, but no more than the memory available
    holds, so that a machine with many CPUs and little memory runs the suite slower, not out of memory."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    available = _available_memory()
    return cpus if available is None else max(1, min(cpus, available // WORKER_MEMORY))


def _available_memory() -> int | None:
    """Bytes the system says it can give without swapping (Linux: ``MemAvailable``, within the
    cgroup's own limit when it has one); None where that is not known."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in meminfo.splitlines() if ":" in line)
    if "MemAvailable" not in fields:
        return None
    available = int(fields["MemAvailable"].split()[0]) * 1024
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return available
    return available if limit == "max" else min(available, int(limit) - used)


def _bundled_codex() -> str:
    import codex_cli_bin  # a test dependency: the suite drives this binary unless told otherwise

    return str(codex_cli_bin.bundled_codex_path())


@pytest.fixture(scope="session")
def codex_binary() -> Path:
    """The Codex the tests drive: ``$CLAIF_COD_TEST_CODEX``, else the bundled one (overrides the kit's fixture)."""
    return Path(_chosen_codex() or _bundled_codex())


@pytest.fixture(scope="session")
def _probe_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One private cache home for the session: the user's own probe cache is neither read nor written."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private working directory (Codex's cwd), also made the process cwd for the test."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture(autouse=True)
def _no_daemon(monkeypatch: pytest.MonkeyPatch, _probe_cache_home: Path, tmp_path: Path) -> None:
    """Tests never reach a daemon the developer may have running, unless they start their own;
    they use the chosen Codex (or the bundled one), never one from the developer's environment.

    Each test has its own empty ``HOME`` and state directory: nothing is written to the user's, and
    the ``bash -lc`` that Codex runs commands with does not read the user's shell profile (which can
    take seconds and leave processes behind)."""
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("CLAIF_COD_SOCKET", "/nonexistent/claif-cod-test.sock")
    monkeypatch.setenv("XDG_CACHE_HOME", str(_probe_cache_home))
    monkeypatch.delenv("CLAIF_COD_DAEMON", raising=False)
    # Named, so that a `codex` on the developer's PATH (found before the bundled one) is not used.
    monkeypatch.setenv("CLAIF_COD_CODEX_PATH", _chosen_codex() or _bundled_codex())
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):  # the tests' servers are on loopback
        monkeypatch.delenv(proxy, raising=False)
        monkeypatch.delenv(proxy.lower(), raising=False)


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's temporary files, and those of the processes it starts, go to a folder of its own,
    which must hold none of ours once the test (and every client and daemon it closed) is done: a
    turn's image files, a probe's schema folder."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))  # and the daemons and scripts the test starts
    yield private
    left = sorted(entry.name for entry in private.iterdir() if entry.name.startswith("claif-cod-"))
    assert not left, f"left in the temporary folder: {left}"
