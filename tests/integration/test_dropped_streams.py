"""A stream its caller drops without reading it, nor closing it, interrupts its turn once the
garbage collector takes it, as a stream dropped half-read does: the turn used to run to its end
(an agent's whole turn, at the model, holding its thread), because no generator of the stream's
had ever run to stop it."""

from __future__ import annotations

import asyncio
import gc

import pytest
from chat_messages import user
from dropped_streams import STALLS, closed_from_another_task, closed_from_another_thread, cut_by_close
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient

pytestmark = pytest.mark.codex


def turns_end(client: CodexClient | AsyncCodexClient) -> None:
    assert client.backend is not None and client.backend.local is not None
    engine = client.backend.local.engine
    # (a stream is a cycle with its generator: it goes at a cyclic collection)
    wait_until(lambda: gc.collect() >= 0 and engine.turns_in_flight == 0, "the dropped stream's turn to end")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_sync_stream_dropped_unread_interrupts_its_turn(client: CodexClient, api: str) -> None:
    if api == "chat":
        stream: object = client.chat.completions.create(model="o4-mini", messages=[user(STALLS)], stream=True)
    else:
        stream = client.responses.create(model="o4-mini", input=STALLS, stream=True)
    del stream
    turns_end(client)


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_async_stream_dropped_unread_interrupts_its_turn(aclient: AsyncCodexClient, api: str) -> None:
    if api == "chat":
        stream: object = await aclient.chat.completions.create(model="o4-mini", messages=[user(STALLS)], stream=True)
    else:
        stream = await aclient.responses.create(model="o4-mini", input=STALLS, stream=True)
    del stream
    await asyncio.to_thread(turns_end, aclient)  # (the loop runs meanwhile: what it held of the stream goes)


async def test_a_stream_its_client_closes_is_told_so_not_of_a_crash(codex_home: object, workdir: object) -> None:
    """It was told "codex app-server (pid N) exited (code 0): closed", which reads as Codex crashing."""
    client = AsyncCodexClient(daemon="off", model="o4-mini")
    error = await cut_by_close(client)
    assert "stopped by claif_cod: its client was closed" in error.message


def test_a_sync_stream_closed_from_another_thread_ends_its_reader(client: CodexClient) -> None:
    """The reader waited for ever: the closed stream's pump handed over nothing more, not even an end."""
    seen = closed_from_another_thread(client, "_get")
    assert seen[-1] == "end"
    turns_end(client)


async def test_an_async_stream_closed_from_another_task_ends_its_reader(aclient: AsyncCodexClient) -> None:
    """The reader waited for ever: the closed stream's pump handed over nothing more, not even an end."""
    await aclient.chat.completions.create(model="o4-mini", messages=[user("warm")])
    seen = await closed_from_another_task(aclient)
    assert seen[-1] == "end"
    await asyncio.to_thread(turns_end, aclient)
