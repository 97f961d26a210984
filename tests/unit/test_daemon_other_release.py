"""claif_cod upgraded while its daemon runs on: the daemon speaks the same protocol, so it serves,
but it runs the release that was installed when it started. Its clients say so once per process
(a ``UserWarning``), ``claif-codd status`` says so, and so does ``claif-codd start``, which finds it
running and starts nothing. Before, only a log record nobody sees (``daemon.version_skew``) did."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from old_daemon import OldDaemon, old_daemon

from claif_cod._version import __version__
from claif_cod.protocol.capabilities import DAEMON_CAPABILITIES
from claif_cod.transport.select import SelectingBackend
from claif_codd.cli import main


@pytest.fixture
def older(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OldDaemon]:
    yield from old_daemon(tmp_path, monkeypatch, list(DAEMON_CAPABILITIES))


RESTART = "restart it (`claif-codd stop`, then `claif-codd start`, or `systemctl --user restart claif-codd`)"


def restart_said(text: str, older: OldDaemon) -> bool:
    return (
        f"claif-codd at {older.server_address} runs claif_cod 0.2.9, and claif_cod {__version__} is installed" in text
        and f"{RESTART} to run {__version__}" in text
    )


async def test_clients_are_told_once_per_process(older: OldDaemon) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two clients of one process
            backend = SelectingBackend("require")
            assert await backend.current() is backend.daemon
            await backend.aclose()
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(said) == 1 and restart_said(said[0], older)


def test_status_says_it(older: OldDaemon) -> None:
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("claif-codd 0.2.9 (protocol 1) pid 4242\n")
    assert restart_said(result.stderr, older)


def test_start_says_it_started_nothing(older: OldDaemon) -> None:
    result = CliRunner().invoke(main, ["start"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"claif-codd already running on {older.server_address}\n"
    assert restart_said(result.stderr, older)
