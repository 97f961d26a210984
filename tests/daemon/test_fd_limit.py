"""claif-codd at its file descriptor limit: connections it cannot afford are refused saying why.

Past ``RLIMIT_NOFILE`` libuv accepts each waiting connection and closes it at once: before, a client
read only "claif-codd closed the connection" (``refused the handshake: connection to claif-codd lost``)
and the daemon logged nothing. The daemon's limit is lowered under it with ``prlimit``, as a
``ulimit -n`` (or systemd's ``LimitNOFILE=``) would have set it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from test_limits import (
    Client,
    assert_overloaded,
    async_wait_until,
    hello_request,
    json_lines,
    start_daemon,  # noqa: F401 (a fixture)
)

from claif_cod._descriptors import FEW
from claif_cod.protocol import ErrorResponse, Response
from claif_cod.transport.daemon_client import DaemonConnection, DaemonUnavailable

pytestmark = [
    pytest.mark.codex,
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform != "linux", reason="another process's limit is lowered with Linux's prlimit"),
]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def test_a_daemon_short_of_file_descriptors_refuses_connections_saying_so(
    start_daemon: Callable[..., DaemonProcess],  # noqa: F811
    workdir: Path,
) -> None:
    daemon = start_daemon("--log-format", "json")
    assert daemon.proc is not None
    pid = daemon.proc.pid
    served = await Client.connect(daemon.socket)
    accepted: list[Client] = []
    refused: list[Client] = []
    try:
        assert await served.chat("warm", workdir) == "Echo: warm"  # its Codex process is up
        limit = open_fds(pid) + FEW + 8  # room for a few more connections, and a Codex process
        _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))

        # A few more connections fit; then each is answered OVERLOADED, naming the limit, and closed.
        for _ in range(2 * FEW + 8):
            peer = await Client.connect(daemon.socket, hello=False)
            reply = await peer.call(hello_request(1), timeout=10)
            if isinstance(reply, ErrorResponse):
                refused.append(peer)
                break
            assert isinstance(reply, Response), reply
            accepted.append(peer)
        assert refused, "no connection was refused"
        assert accepted, "none fitted"
        assert_overloaded(reply, retry_after=1.0, says="claif-codd is out of file descriptors: ")
        assert f" open, the limit is {limit}: raise it (`ulimit -n`" in reply.error.message
        await asyncio.wait_for(refused[0].eof.wait(), 10)  # then closed

        # Peers that keep their socket once refused do not use up what is left: the daemon closes
        # each as soon as it has its answer, so every one of a run of them is told, none is reset.
        for _ in range(2 * FEW):
            peer = await Client.connect(daemon.socket, hello=False)
            refused.append(peer)
            assert_overloaded(await peer.call(hello_request(1), timeout=10), says="out of file descriptors")

        # What a claif_cod client sees: the handshake fails with the daemon's reason.
        with pytest.raises(DaemonUnavailable, match="out of file descriptors"):
            await asyncio.wait_for(DaemonConnection.open(daemon.socket), 10)

        # Its own commands are let in (see test_control_beyond_limits.py).
        assert (await asyncio.to_thread(daemon.status_json))["pid"] == pid

        # The connections it has are served, a Codex process for another directory included.
        assert await served.chat("still served", workdir) == "Echo: still served"
        elsewhere = workdir.parent / "elsewhere"
        elsewhere.mkdir()
        assert await served.chat("elsewhere", elsewhere) == "Echo: elsewhere"

        # Once its clients leave, a new connection is served.
        for peer in accepted + refused:
            await peer.close()
        accepted, refused = [], []
        await async_wait_until(lambda: open_fds(pid) < limit - FEW, what="the connections to close")
        again = await Client.connect(daemon.socket)
        accepted.append(again)
        assert await again.chat("again", workdir) == "Echo: again"
    finally:
        for client in [served, *accepted, *refused]:
            await client.close()

    [first, *_] = [
        line for line in json_lines(daemon, "daemon.connection_refused") if line["limit"] != "max_connections"
    ]
    assert first["level"] == "warning" and first["limit"] == "file_descriptors", first
    assert first["value"] == limit and limit - FEW < first["open"] <= limit, first
