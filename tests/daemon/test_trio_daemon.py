"""``AsyncCodexClient`` under trio through the daemon: answered as under asyncio (on the engine loop's
connection: a caller's own connection is asyncio's), a cancelled request and a stream closed early
stopped in the daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_messages import user
from daemon_process import DaemonProcess
from test_loop_daemon import turns_stop

from claif_cod import AsyncCodexClient
from claif_cod.testing import ModelServer

trio = pytest.importorskip("trio", reason="trio is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.codex


def test_a_trio_caller_is_answered_and_its_abandoned_turns_stopped_in_the_daemon(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    async def main() -> None:
        async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
            reply = await client.chat.completions.create(messages=[user("one")])
            assert reply.choices[0].message.content == "Echo: one"
            events = [event.type async for event in await client.responses.create(input="two", stream=True)]
            assert events[0] == "response.created" and events[-1] == "response.completed"

            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: client.chat.completions.create(messages=[user("[[stall]] three")]))
                await trio.to_thread.run_sync(codex_model_server.wait_for_requests, 3, 20)
                nursery.cancel_scope.cancel()
            await trio.to_thread.run_sync(turns_stop, daemon)

            stream = await client.chat.completions.create(messages=[user("[[stall-mid]] a b c")], stream=True)
            await stream.__anext__()
            await stream.close()
            await trio.to_thread.run_sync(turns_stop, daemon)
            after = await client.chat.completions.create(messages=[user("after")])
            assert after.choices[0].message.content == "Echo: after"

    trio.run(main)
