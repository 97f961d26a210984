"""A named session's turn whose caller can no longer get its answer is dropped, however its end and the
caller's leaving interleave (``serve --http``: a client that hangs up as its turn ends).

In-process engine and real Codex, read as the HTTP endpoint reads a stream (``EventPump``, in a task of
its own, stopped by the handler's cleanup once its client has gone): the session must go on as if the
request had never been sent, in Codex's thread and in the session's record alike."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from chat_messages import user

from claif_cod import CodexClient
from claif_cod.engine.config import CodexConfig
from claif_cod.engine.engine import Engine
from claif_cod.engine.events import TurnUsage
from claif_cod.engine.turns import Turn
from claif_cod.openai_compat import chat_run
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.testing import ModelServer
from claif_cod.transport.backend import StreamReply
from claif_cod.transport.in_process import InProcessBackend
from claif_codd.http.event_pump import EventPump

pytestmark = pytest.mark.codex


def backend_of(client: CodexClient) -> InProcessBackend:
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    return client.backend.local


def session_turns(engine: Engine) -> list[int]:
    return [record.turns for record in engine.named.book.store.all() if record.session_id == "s"]


def body(text: str, **params: Any) -> bytes:
    return json.dumps({"model": "o4-mini", "messages": [user(text)], "stream": True, **params}).encode()


async def read_to_the_end(pump: EventPump) -> None:
    while await pump.next() is not None:
        pass


def the_session_goes_on_without_it(client: CodexClient, server: ModelServer) -> None:
    third = client.chat.completions.create(messages=[user("three")]).choices[0].message.content
    assert server.requests[-1].user_texts() == ["one", "three"]
    assert third == "[turn 2] Echo: three"
    assert session_turns(backend_of(client).engine) == [2]


def test_a_stopped_turn_whose_client_hung_up_while_it_ended_is_dropped(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop sequence cut the answer; the turn was being stopped (its usage awaited, then an interrupt)
    when the client hung up. The turn was taken as an answer before that wait: it stayed in Codex's
    thread (the model saw its prompt in every later turn), though the session's record never had it
    and the caller got no answer. (Every such hang-up, over HTTP: a wait of up to 1 s.)"""
    usage_after_stop = chat_run._usage_after_stop
    stopping = asyncio.Event()

    async def stops(turn: Turn, events: Any) -> TurnUsage:
        stopping.set()
        return await usage_after_stop(turn, events)

    monkeypatch.setattr(chat_run, "_usage_after_stop", stops)
    with CodexClient(daemon="off", model="o4-mini", session_id="s", timeout=30) as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        backend = backend_of(client)

        async def hang_up() -> None:
            # [[stall-mid]]: two words, then the model says nothing more (the turn ends when stopped)
            sent = body("[[reply:alpha STOP beta]] [[stall-mid]] two", stop=["STOP"], session_id="s")
            reply = await backend.chat(sent, RequestOptions(config=CodexConfig(working_dir=str(workdir))))
            assert isinstance(reply, StreamReply)
            pump = EventPump(reply.events, 1 << 20, lambda pending: False)
            await stopping.wait()
            await pump.stop()  # the HTTP handler's cleanup, its client gone

        client._core.loop.run(hang_up())
        the_session_goes_on_without_it(client, codex_model_server)


def test_a_turn_that_ends_once_its_client_hung_up_is_dropped(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client hung up, and its turn ended before the handler's cancellation stopped the task reading
    the stream: that task took the end as an answer, and the turn stayed in the session, thread and
    record, though the caller got no answer (about 1 in 40 hang-ups as the answer went out)."""
    start_turn = Engine.start_turn
    started = asyncio.Event()

    async def starts(self: Engine, *args: Any, **kw: Any) -> Turn:
        turn = await start_turn(self, *args, **kw)
        started.set()
        return turn

    monkeypatch.setattr(Engine, "start_turn", starts)
    with CodexClient(daemon="off", model="o4-mini", session_id="s", timeout=30) as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        backend = backend_of(client)
        config = CodexConfig(working_dir=str(workdir))
        gone = asyncio.Event()

        async def hang_up() -> None:
            started.clear()
            # [[barrier:2]]: the model answers once the other request below has reached it too
            options = RequestOptions(config=config, caller_gone=gone.is_set)
            begun = asyncio.ensure_future(backend.chat(body("[[barrier:2]] two", session_id="s"), options))
            await started.wait()
            gone.set()  # its connection closes as the turn runs; its handler is yet to be cancelled
            await backend.chat(
                body("[[barrier:2]] other", stream=False), RequestOptions(config=config)
            )  # its turn ends now
            reply = await begun
            assert isinstance(reply, StreamReply)
            pump = EventPump(reply.events, 1 << 20, lambda pending: False)
            with pytest.raises(APIFailure, match="hung up"):
                await read_to_the_end(pump)  # as the pump's task does, whether or not anyone writes them
            await pump.stop()

        client._core.loop.run(hang_up())
        the_session_goes_on_without_it(client, codex_model_server)


@pytest.mark.parametrize("stream", [False, True])
def test_a_stopped_turn_whose_caller_took_its_answer_stays(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """The other way round: a stop-cut answer its caller got is the session's turn, also when the turn
    ends only once stopped (the model said nothing more: the usage was waited for, then the turn
    interrupted, and it ended before its caller said it took the answer)."""
    monkeypatch.setattr(chat_run, "STOP_USAGE_WAIT_S", 0.05)
    with CodexClient(daemon="off", model="o4-mini", session_id="s", timeout=30) as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        ask = {"messages": [user("[[reply:alpha STOP beta]] [[stall-mid]] two")], "stop": ["STOP"]}
        if stream:
            chunks = list(client.chat.completions.create(**ask, stream=True))  # type: ignore[call-overload]
            said = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            said = client.chat.completions.create(**ask).choices[0].message.content  # type: ignore[call-overload]
        assert said.strip() == "alpha"
        third = client.chat.completions.create(messages=[user("three")]).choices[0].message.content
        assert codex_model_server.requests[-1].user_texts() == ["one", ask["messages"][0]["content"], "three"]
        assert third == "[turn 3] Echo: three"
        assert session_turns(backend_of(client).engine) == [3]
