"""Through the daemon, as in-process (tests/integration/test_dropped_streams.py): a stream dropped
unread and unclosed stops its request once the garbage collector takes it, from a sync caller's
own connection and from an async caller's loop's own connection alike."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from chat_messages import user
from daemon_process import DaemonProcess
from dropped_streams import (
    STALLS,
    closed_from_another_task,
    closed_from_another_thread,
    cut_by_close,
    cut_by_sync_close,
)
from fresh_script import run_script
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient

pytestmark = pytest.mark.codex


def turns_end(daemon: DaemonProcess) -> None:
    # (a stream is a cycle with its generator: it goes at a cyclic collection)
    wait_until(lambda: gc.collect() >= 0 and daemon.status().turns_in_flight == 0, "the daemon to stop the turn")


def test_a_sync_stream_dropped_unread_stops_its_request(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("first: the caller's own connection from the next on")])
        stream = client.chat.completions.create(messages=[user(STALLS)], stream=True)
        del stream
        turns_end(daemon)


async def test_an_async_stream_dropped_unread_stops_its_request(daemon: DaemonProcess, workdir: Path) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        for n in range(2):  # the loop's own connection, from its second request on
            await client.chat.completions.create(messages=[user(f"warm {n}")])
        stream = await client.responses.create(input=STALLS, stream=True)
        del stream
        await asyncio.to_thread(turns_end, daemon)


def test_closing_an_async_client_after_streams_dropped_is_quiet(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    """Streams dropped half-read and one dropped unread, then the client closed at once: the request
    of a stream nobody waited for any more failed as its connection closed, and printed "Future
    exception was never retrieved ... connection to claif-codd lost: closed" at exit."""
    script = """
        import asyncio, gc
        from claif_cod import AsyncCodexClient

        async def main():
            client = AsyncCodexClient(daemon="require", model="o4-mini")
            for n in range(2):
                await client.chat.completions.create(messages=[{"role": "user", "content": f"warm {n}"}])
            for n in range(3):
                stream = await client.chat.completions.create(
                    messages=[{"role": "user", "content": f"[[stall-mid]] half {n}"}], stream=True
                )
                async for _ in stream:
                    break
            dropped = await client.responses.create(input="[[stall-mid]] unread", stream=True)
            del stream, dropped
            gc.collect()
            await client.close()
            print("closed")

        asyncio.run(main())
        """
    done = run_script(script, workdir, daemon_env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "closed\n", "")
    turns_end(daemon)


async def test_a_stream_its_client_closes_is_told_so_not_of_a_lost_daemon(daemon: DaemonProcess, workdir: Path) -> None:
    """It was told "connection to claif-codd lost: closed", which reads as the daemon failing."""
    client = AsyncCodexClient(daemon="require", model="o4-mini")
    for n in range(2):  # the loop's own connection, from its second request on
        await client.chat.completions.create(messages=[user(f"warm {n}")])
    error = await cut_by_close(client)
    assert error.message == "Connection error: the client was closed while the request ran."
    await asyncio.to_thread(turns_end, daemon)


def test_a_sync_stream_its_client_closes_is_told_so_not_of_a_lost_daemon(daemon: DaemonProcess, workdir: Path) -> None:
    """On the caller's own connection it was told "connection to claif-codd lost: claif-codd closed
    the connection": the client's ``close()`` shut the socket down, and the daemon was blamed."""
    client = CodexClient(daemon="require", model="o4-mini")
    client.chat.completions.create(messages=[user("first: the caller's own connection from the next on")])
    error = cut_by_sync_close(client)
    assert error.message == "Connection error: the client was closed while the request ran."
    turns_end(daemon)


def test_a_sync_stream_closed_from_another_thread_ends_its_reader(daemon: DaemonProcess, workdir: Path) -> None:
    """The closing thread read the connection for the daemon's confirmation while the reader's thread
    waited on it too: the reader waited for ever (and could have read the next request's answer)."""
    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("first: the caller's own connection from the next on")])
        seen = closed_from_another_thread(client, "receive")
        assert seen[-1] == "end"
        turns_end(daemon)
        reply = client.chat.completions.create(messages=[user("next")])
        assert reply.choices[0].message.content == "Echo: next"


async def test_an_async_stream_closed_from_another_task_ends_its_reader(daemon: DaemonProcess, workdir: Path) -> None:
    """On the loop's own connection, the close raised "aclose(): asynchronous generator is already
    running", and the reader got the daemon's "cancelled" as an error."""
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        for n in range(2):  # the loop's own connection, from its second request on
            await client.chat.completions.create(messages=[user(f"warm {n}")])
        seen = await closed_from_another_task(client)
        assert seen[-1] == "end"
        await asyncio.to_thread(turns_end, daemon)
        reply = await client.chat.completions.create(messages=[user("next")])
        assert reply.choices[0].message.content == "Echo: next"
