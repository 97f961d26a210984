"""Through the daemon too, create() hands the turn over before openai builds its HTTP request,
and a request nobody waits for any more (openai failed to send it, or its caller was cancelled)
is stopped in the daemon.  (A plain create() sends no HTTP request at all: these go through
openai's pipeline as raw responses do.)"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import httpx2
import pytest
from chat_messages import user
from daemon_process import DaemonProcess
from refusals import Refused, refused
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_the_daemon_has_the_turn_early_and_takes_back_one_never_sent(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    def wait_for_the_model(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(1, timeout=20)  # only a turn started earlier gets there

    def refuse(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(2, timeout=20)
        raise Refused("refused before the transport")

    with CodexClient(daemon="require", model="o4-mini") as client:
        client._client.event_hooks["request"] = [wait_for_the_model]
        first = client.chat.completions.with_raw_response.create(messages=[user("one")]).parse()
        assert first.choices[0].message.content == "Echo: one"
        history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
        client._client.event_hooks["request"] = [refuse]
        with refused():
            client.chat.completions.with_raw_response.create(messages=[*history, user("[[stall]] two")], stream=True)
        wait_until(
            lambda: sum(p.turns_in_flight for p in daemon.status().processes) == 0,
            "the daemon to interrupt the turn openai never sent",
        )
        client._client.event_hooks["request"] = []
        again = client.chat.completions.create(messages=[*history, user("two")])
        assert again.choices[0].message.content == "[turn 2] Echo: two"
        assert client.backend is not None and client.backend.local is None
    assert codex_model_server.requests[-1].user_texts() == ["one", "two"]


def test_the_daemon_starts_a_response_early_and_takes_back_one_never_sent(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    def wait_for_the_model(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(1, timeout=20)

    def refuse(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(2, timeout=20)
        raise Refused("refused before the transport")

    with CodexClient(daemon="require", model="o4-mini") as client:
        client._client.event_hooks["request"] = [wait_for_the_model]
        first = client.responses.with_raw_response.create(input=[user("one")], store=False).parse()
        assert first.output_text == "Echo: one"
        transcript = [user("one"), *(item.model_dump(exclude_none=True) for item in first.output)]
        client._client.event_hooks["request"] = [refuse]
        with refused():
            client.responses.with_raw_response.create(input=[*transcript, user("[[stall]] two")], store=False)
        wait_until(
            lambda: sum(p.turns_in_flight for p in daemon.status().processes) == 0,
            "the daemon to interrupt the turn openai never sent",
        )
        client._client.event_hooks["request"] = []
        again = client.responses.create(input=[*transcript, user("two")], store=False)
        assert again.output_text == "[turn 2] Echo: two"
    assert codex_model_server.requests[-1].user_texts() == ["one", "two"]


def response_ids(daemon: DaemonProcess) -> list[str]:
    """Every response the registry of a stopped daemon holds that can still be fetched (a running
    daemon holds the file exclusively)."""
    with contextlib.closing(sqlite3.connect(daemon.state_dir / "responses.db")) as db:
        return [row[0] for row in db.execute("SELECT response_id FROM responses WHERE stored = 1 ORDER BY seq")]


def test_the_daemon_keeps_no_stored_response_it_took_back(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    def refuse(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(2, timeout=20)
        raise Refused("refused before the transport")

    with CodexClient(daemon="require", model="o4-mini") as client:
        first = client.responses.create(input="one")
        client._client.event_hooks["request"] = [refuse]
        with refused():
            client.responses.with_raw_response.create(input="[[stall]] two", previous_response_id=first.id)
        wait_until(
            lambda: sum(p.turns_in_flight for p in daemon.status().processes) == 0,
            "the daemon to interrupt the turn openai never sent",
        )
        daemon.stop()
        assert response_ids(daemon) == [first.id]  # the abandoned response was dropped
        daemon.start()
        client._client.event_hooks["request"] = []
        again = client.responses.create(input="two", previous_response_id=first.id)
        assert again.output_text == "[turn 2] Echo: two"  # forked past the abandoned turn
    assert codex_model_server.requests[-1].user_texts() == ["one", "two"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_cancelled_before_its_first_chunk_stops_in_the_daemon(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer, stream: bool
) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        waiting = asyncio.create_task(client.chat.completions.create(messages=[user("[[stall]] x")], stream=stream))
        await asyncio.to_thread(codex_model_server.wait_for_requests, 1, 20)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.to_thread(
            wait_until,
            lambda: sum(p.turns_in_flight for p in daemon.status().processes) == 0,
            "the daemon to interrupt the cancelled request's turn",
        )
        after = await client.chat.completions.create(messages=[user("y")])
        assert after.choices[0].message.content == "Echo: y"
