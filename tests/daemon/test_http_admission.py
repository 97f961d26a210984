"""Which connections the HTTP endpoint keeps open: a flood of idle connections, another local user's
or the daemon's own user's past ``--max-connections``, costs the daemon no more than a few file
descriptors, and its own clients are still served."""

from __future__ import annotations

import os
import resource
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chat_messages import user
from test_fd_limit import open_fds
from test_http_endpoint import HttpDaemon, start_http_daemon
from test_security import NOBODY, Child

from claif_cod._descriptors import FEW
from claif_codd.http.admission import FOREIGN_CONNECTIONS, IDLE_TIMEOUT_S
from claif_codd.http.parse_errors import JsonErrorRunner


def closed_at_once(sock: socket.socket) -> bool:
    """Whether the daemon closed ``sock`` without a word (it reads EOF, not a timeout)."""
    sock.settimeout(5)
    return sock.recv(1) == b""


def status_line(sock: socket.socket, host: str) -> bytes:
    sock.settimeout(10)
    sock.sendall(f"GET /v1/models HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock.recv(4096).split(b"\r\n", 1)[0]


@pytest.fixture
def small(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path, "--max-connections", "4")
    yield HttpDaemon(process, workdir)
    process.stop()


@pytest.fixture
def endpoint(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path)
    yield HttpDaemon(process, workdir)
    process.stop()


def test_past_max_connections_a_connection_is_closed_as_it_is_accepted(small: HttpDaemon) -> None:
    host, port = small.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(4)]
    try:
        status_line(idle[0], host)  # the four are admitted (this one is answered)
        extra = socket.create_connection((host, int(port)))
        with extra:
            assert closed_at_once(extra)
    finally:
        for sock in idle:
            sock.close()
    reply = small.client().chat.completions.create(model="o4-mini", messages=[user("after the flood")])
    assert reply.choices[0].message.content == "Echo: after the flood"
    log = small.process.log.read_text()
    assert log.count("http.connections_refused") == 1 and "max_connections" in log


def flood(host: str, port: int, connections: int) -> Callable[[], bytes]:
    """In a child of another uid: open ``connections``, say how many past the first
    FOREIGN_CONNECTIONS were closed at once, and what the first one is answered."""

    def run() -> bytes:
        socks = [socket.create_connection((host, port)) for _ in range(connections)]
        closed = sum(closed_at_once(sock) for sock in socks[FOREIGN_CONNECTIONS:])
        return f"{closed} ".encode() + status_line(socks[0], host)

    return run


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another local user")
def test_another_users_idle_connections_cost_the_daemon_a_few_descriptors(endpoint: HttpDaemon) -> None:
    """Without a token another local user may not use the endpoint; it may hold a few connections
    (each is answered 403, so that its user can read why), not the daemon's file descriptors."""
    host, port = endpoint.url.removeprefix("http://").split(":")
    connections = FOREIGN_CONNECTIONS + 16
    closed, status = Child(NOBODY, flood(host, int(port), connections)).result(60).split(b" ", 1)
    assert int(closed) == connections - FOREIGN_CONNECTIONS, status
    assert status == b"HTTP/1.1 403 Forbidden"
    reply = endpoint.client().chat.completions.create(model="o4-mini", messages=[user("still served")])
    assert reply.choices[0].message.content == "Echo: still served"
    assert endpoint.process.log.read_text().count("http.connections_refused") == 1  # a flood is one line a minute


def test_a_connection_that_sends_no_request_is_closed_after_a_while() -> None:
    """aiohttp keeps a connection that never sends a request for an hour; the endpoint, half a minute."""
    from aiohttp import web

    from claif_codd.http.admission import Admission

    runner = JsonErrorRunner(web.Application(), Admission(own_uid_only=False, max_connections=1))
    assert runner._kwargs["keepalive_timeout"] == IDLE_TIMEOUT_S == 30.0


def answer_or_close(sock: socket.socket, host: str) -> bytes:
    """The status line ``sock`` is answered with, or b"" when the daemon closed it instead."""
    try:
        return status_line(sock, host)
    except ConnectionResetError:  # closed as accepted, with our request unread: a reset
        return b""


@pytest.mark.skipif(sys.platform != "linux", reason="another process's limit is lowered with Linux's prlimit")
def test_at_its_descriptor_limit_a_connection_is_closed_as_it_is_accepted_not_refused_as_a_strangers(
    endpoint: HttpDaemon,
) -> None:
    """Before, once the daemon had no descriptor left to look up who owned a connection with, every
    request of its own user was answered 403 ("its owner could not be traced"), and the descriptors
    its socket clients and Codex processes need went to HTTP connections."""
    host, port = endpoint.url.removeprefix("http://").split(":")
    assert endpoint.process.proc is not None
    pid = endpoint.process.proc.pid
    reply = endpoint.client().chat.completions.create(model="o4-mini", messages=[user("warm")])
    assert reply.choices[0].message.content == "Echo: warm"  # its Codex process is up
    limit = open_fds(pid) + FEW + 4
    _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    held: list[socket.socket] = []
    try:
        answers = []
        for _ in range(2 * FEW + 8):
            held.append(socket.create_connection((host, int(port))))
            answers.append(answer_or_close(held[-1], host))
            if not answers[-1]:
                break
        assert answers[-1] == b"", answers  # closed as it was accepted
        assert set(answers[:-1]) == {b"HTTP/1.1 200 OK"}, answers  # never a 403
        assert open_fds(pid) < limit  # its last descriptors are left to what it serves
    finally:
        for sock in held:
            sock.close()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))
    reply = endpoint.client().chat.completions.create(model="o4-mini", messages=[user("after")])
    assert reply.choices[0].message.content == "Echo: after"
    [refused] = [line for line in endpoint.process.log.read_text().splitlines() if "http.connections_refused" in line]
    assert "file_descriptors" in refused and str(limit) in refused, refused  # once: a flood is a line a minute
