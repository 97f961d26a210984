"""A socket whose daemon takes no connection (stopped, its backlog full): both ways of connecting say
so at once, as a daemon to wake or kill, not one to start."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from claif_cod.transport.blocking_connection import BlockingConnection
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonHung


@pytest.fixture
def full_backlog(tmp_path: Path) -> Iterator[Path]:
    """A listening socket that never accepts, its backlog filled."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    path = run_dir / "codd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(0)
    held: list[socket.socket] = []
    try:
        while True:
            waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            waiting.setblocking(False)
            try:
                waiting.connect(str(path))
            except BlockingIOError:
                waiting.close()
                break
            held.append(waiting)
        yield path
    finally:
        for waiting in held:
            waiting.close()
        server.close()


SAYS = "takes no more connections (its backlog is full) (stopped or hung?): `kill -CONT` it, or kill it"


def test_the_blocking_connection_says_the_daemon_takes_no_connection(full_backlog: Path) -> None:
    with pytest.raises(DaemonHung, match=r"takes no more connections") as hung:
        BlockingConnection.open(full_backlog, "test")
    assert str(hung.value) == f"claif-codd at {full_backlog} {SAYS}"


async def test_the_async_connection_says_so_too_instead_of_a_lost_connection(full_backlog: Path) -> None:
    with pytest.raises(DaemonHung) as hung:
        await DaemonConnection.open(full_backlog)
    assert str(hung.value) == f"claif-codd at {full_backlog} {SAYS}"
