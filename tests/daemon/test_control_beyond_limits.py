"""claif-codd's own commands reach a daemon at its limits: ``status`` says what holds it, ``stop`` stops it.

Before, a daemon serving its ``--max-connections`` (the clients of a runaway script, say) refused
them as any other client: ``claif-codd status`` and ``stop`` failed with "claif-codd is serving its
maximum of N connections; start one with `claif-codd start`", and only ``kill`` stopped it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from test_limits import (
    Client,
    assert_overloaded,
    chat_request,
    hello_request,
    start_daemon,  # noqa: F401 (a fixture)
    wait_for_status,
)

from claif_cod.protocol import (
    PROTOCOL_VERSION,
    HelloParams,
    HelloRequest,
    Response,
    SessionsListRequest,
    SessionsListResult,
    decode_result,
)
from claif_codd.config import CONTROL_CLIENT
from claif_codd.server import CONTROL_CONNECTIONS

pytestmark = [pytest.mark.codex, pytest.mark.timeout(90)]


def control_hello() -> HelloRequest:
    params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version="test", client_name=CONTROL_CLIENT)
    return HelloRequest(id=1, params=params)


async def test_status_and_stop_reach_a_daemon_serving_its_maximum_of_connections(
    start_daemon: Callable[..., DaemonProcess],  # noqa: F811
    workdir: Path,
) -> None:
    daemon = start_daemon("--max-connections", "2")
    assert daemon.proc is not None
    first = await Client.connect(daemon.socket)
    clients = [first]
    others: list[Client] = []
    try:
        await wait_for_status(first, lambda s: s.connections == 1, "the start-up probe's connection to close")
        clients.append(await Client.connect(daemon.socket))
        stranger = await Client.connect(daemon.socket, hello=False)
        others.append(stranger)
        assert_overloaded(await stranger.call(hello_request(1)), says="maximum of 2 connections")

        status = await asyncio.to_thread(daemon.status_json)  # `claif-codd status --json`
        assert status["connections"] == 3 and status["pid"] == daemon.proc.pid, status
        sessions = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "claif_codd", "sessions", "--json", "--socket", str(daemon.socket)],
            capture_output=True,
            text=True,
            env=daemon.env,
            timeout=60,
        )
        assert sessions.returncode == 0, sessions.stderr

        # Let in for those commands only, and only a few at once.
        control = await Client.connect(daemon.socket, hello=False)
        others.append(control)
        assert isinstance(await control.call(control_hello()), Response)
        listing = await control.call(SessionsListRequest(id=2))
        assert isinstance(listing, Response) and decode_result(listing.result, SessionsListResult).sessions == []
        assert_overloaded(await control.call(chat_request(3, "hi", workdir)), says="takes no other request")
        for _ in range(CONTROL_CONNECTIONS - 1):
            more = await Client.connect(daemon.socket, hello=False)
            others.append(more)
            assert isinstance(await more.call(control_hello()), Response)
        beyond = await Client.connect(daemon.socket, hello=False)
        others.append(beyond)
        assert_overloaded(await beyond.call(control_hello()), says="maximum of 2 connections")
        for client in others:
            await client.close()
        others = []

        for client in clients:  # the served connections were not disturbed
            assert (await client.status()).connections >= 2
        stop = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "claif_codd", "stop", "--socket", str(daemon.socket)],
            capture_output=True,
            text=True,
            env=daemon.env,
            timeout=120,
        )
        assert stop.returncode == 0 and "claif-codd stopped" in stop.stdout, stop.stderr
        assert daemon.proc.poll() == 0
    finally:
        for client in clients + others:
            await client.close()
