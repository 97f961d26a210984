"""claif-codd under faults and hostile input: nothing that was acknowledged is lost, every request is answered.

Real daemon processes, real Codex, the offline model; the socket client is the protocol-only one of
``test_limits``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from test_limits import (
    WAIT_S,
    Client,
    chat_request,
    start_daemon,  # noqa: F401 (a fixture)
)

from claif_cod.protocol import CancelNotification, CancelParams, ErrorResponse

pytestmark = [pytest.mark.codex, pytest.mark.timeout(120)]


async def wait_for_status(client: Client, condition: Callable[..., bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition(status := await client.status()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}: {status}"
        await asyncio.sleep(0.05)


# --- 1. the process cap never kills a turn ---------------------------------------------------------------------


async def test_process_cap_is_exceeded_rather_than_evicting_a_running_turn(
    start_daemon: Callable[..., DaemonProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    """With --max-processes 1, a turn stalled on the model in directory A keeps its process while a request
    in directory B gets a second one; status shows the turn on A's process; A ends only when cancelled."""
    daemon = start_daemon("--max-processes", "1")
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    client = await Client.connect(daemon.socket)
    try:
        stalled = chat_request(client.next_id(), "[[stall]]", dir_a)
        reply_a = client.start(stalled)
        await wait_for_status(client, lambda s: s.turns_in_flight == 1, "the stalled turn")
        assert await client.chat("in b", dir_b) == "Echo: in b"
        status = await client.status()
        by_dir = {p.working_dir: p for p in status.processes}
        assert set(by_dir) == {str(dir_a), str(dir_b)}, status  # the cap of 1 was exceeded, not enforced
        assert by_dir[str(dir_a)].turns_in_flight == 1 and by_dir[str(dir_b)].turns_in_flight == 0, status
        assert not reply_a.done(), reply_a  # the stalled turn is still running, its process alive
        client.send(CancelNotification(params=CancelParams(id=stalled.id)))
        reply = await asyncio.wait_for(reply_a, WAIT_S)
        assert isinstance(reply, ErrorResponse) and "cancelled" in reply.error.message, reply
        # Now A is idle: the next new directory evicts the least recently used idle process.
        dir_c = tmp_path / "c"
        dir_c.mkdir()
        assert await client.chat("in c", dir_c) == "Echo: in c"
        await wait_for_status(client, lambda s: len(s.processes) == 1, "the evictions")
        assert str(dir_c) in {p.working_dir for p in (await client.status()).processes}
    finally:
        await client.close()
