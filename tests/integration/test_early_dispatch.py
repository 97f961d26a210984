"""create() hands the turn to Codex before openai builds its HTTP request, and takes it back
whole when openai fails before reaching the transport.

A plain ``create()`` sends no HTTP request at all (see test_fast_create_client.py), so these tests
go through openai's pipeline the way that still uses it: raw responses, streamed or not."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import openai
import pytest
from chat_messages import user
from refusals import Refused, refused
from test_responses_stored import recorded_ids
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer
from claif_cod.transport import early

pytestmark = pytest.mark.codex


def test_codex_has_the_turn_while_openai_still_builds_the_request(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    def request_hook(_request: httpx2.Request) -> None:
        # httpx runs this just before the transport: only a turn started earlier reaches the model.
        codex_model_server.wait_for_requests(1, timeout=20)

    client._client.event_hooks["request"].append(request_hook)
    raw = client.chat.completions.with_raw_response.create(messages=[user("early bird")])
    assert raw.parse().choices[0].message.content == "Echo: early bird"


async def test_the_async_client_starts_the_turn_early_too(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    async def request_hook(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(1, timeout=20)  # blocking on purpose: nothing else may run

    aclient._client.event_hooks["request"].append(request_hook)
    raw = await aclient.chat.completions.with_raw_response.create(messages=[user("early worm")], stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices]) == "Echo: early worm"


def interrupted(client: CodexClient | AsyncCodexClient) -> None:
    """The abandoned turn ends: Codex confirms the interrupt (it is not left running at the model)."""
    assert client.backend is not None and client.backend.local is not None
    engine = client.backend.local.engine
    wait_until(lambda: engine.turns_in_flight == 0, "the abandoned turn to be interrupted")


def refuse_once_the_model_has_it(server: ModelServer, requests: int) -> Any:
    def refuse(_request: httpx2.Request) -> None:
        server.wait_for_requests(requests, timeout=20)  # the early turn is at the model, stalled there
        raise Refused("refused before the transport")

    return refuse


def test_a_request_openai_fails_before_the_transport_did_not_happen(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.chat.completions.create(messages=[user("one")])
    history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
    refuse = refuse_once_the_model_has_it(codex_model_server, 2)
    client._client.event_hooks["request"].append(refuse)
    with refused():
        client.chat.completions.with_raw_response.create(messages=[*history, user("[[stall]] two")])
    interrupted(client)
    client._client.event_hooks["request"].remove(refuse)
    again = client.chat.completions.create(messages=[*history, user("two")])
    assert again.choices[0].message.content == "[turn 2] Echo: two"  # the failed turn is not in the thread
    assert codex_model_server.requests[-1].user_texts() == ["one", "two"]


async def test_the_async_client_takes_back_a_turn_openai_failed_to_send(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    refuse = refuse_once_the_model_has_it(codex_model_server, 2)

    async def refuse_async(request: httpx2.Request) -> None:
        refuse(request)

    first = await aclient.chat.completions.create(messages=[user("uno")])
    history = [user("uno"), {"role": "assistant", "content": first.choices[0].message.content}]
    aclient._client.event_hooks["request"].append(refuse_async)
    with refused():
        await aclient.chat.completions.with_raw_response.create(messages=[*history, user("[[stall]] dos")], stream=True)
    interrupted(aclient)
    aclient._client.event_hooks["request"].remove(refuse_async)
    again = await aclient.chat.completions.create(messages=[*history, user("dos")])
    assert again.choices[0].message.content == "[turn 2] Echo: dos"
    assert codex_model_server.requests[-1].user_texts() == ["uno", "dos"]


def test_a_stream_that_began_before_openai_failed_is_interrupted(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    def refuse_once_streaming(_request: httpx2.Request) -> None:
        started = early._current.get()
        assert started is not None
        wait_until(started.task.done, "the stream's first chunk")  # the model sent two words, then stalls
        raise Refused("refused before the transport")

    client._client.event_hooks["request"].append(refuse_once_streaming)
    with refused():
        client.chat.completions.with_raw_response.create(messages=[user("[[stall-mid]] three four five")], stream=True)
    interrupted(client)


# --- responses.create: the same early dispatch ----------------------------------------------------


def test_a_response_starts_while_openai_still_builds_the_request(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    def request_hook(_request: httpx2.Request) -> None:
        codex_model_server.wait_for_requests(1, timeout=20)  # only a turn started earlier reaches the model

    client._client.event_hooks["request"].append(request_hook)
    assert (
        client.responses.with_raw_response.create(input="early response").parse().output_text == "Echo: early response"
    )
    with client.responses.with_raw_response.create(input="early stream", stream=True).parse() as stream:
        assert [e.response.output_text for e in stream if e.type == "response.completed"] == ["Echo: early stream"]


def test_each_retry_of_a_response_is_a_new_dispatch(
    codex_home: object, workdir: object, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", model="o4-mini", max_retries=2) as client, pytest.raises(openai.RateLimitError):
        client.responses.create(input="[[status:429]] again")
    assert len(codex_model_server.requests) == 3  # openai's two retries each reached the model


def create_response(client: CodexClient, stream: bool, **params: Any) -> object:
    """Through openai's pipeline: a raw response."""
    return client.responses.with_raw_response.create(**params, stream=stream)


@pytest.mark.parametrize("stream", [False, True])
def test_a_response_openai_fails_to_send_is_interrupted_and_not_continued(
    client: CodexClient, codex_model_server: ModelServer, stream: bool
) -> None:
    first = client.responses.create(input=[user("one")], store=False)
    transcript = [user("one"), *(item.model_dump(exclude_none=True) for item in first.output)]
    refuse = refuse_once_the_model_has_it(codex_model_server, 2)
    client._client.event_hooks["request"].append(refuse)
    with refused():
        create_response(client, stream, input=[*transcript, user("[[stall]] two")], store=False)
    interrupted(client)
    client._client.event_hooks["request"].remove(refuse)
    again = client.responses.create(input=[*transcript, user("two")], store=False)
    assert again.output_text == "[turn 2] Echo: two"  # the failed turn is in no thread it continues
    assert codex_model_server.requests[-1].user_texts() == ["one", "two"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_stored_response_openai_fails_to_send_leaves_no_response(
    client: CodexClient, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """Its id was never seen: it is not found, and continuing the response before it forks past
    the abandoned turn (its place in the thread's order is kept)."""
    ids = recorded_ids(client, monkeypatch)
    first = client.responses.create(input="one")
    refuse = refuse_once_the_model_has_it(codex_model_server, 2)
    client._client.event_hooks["request"].append(refuse)
    with refused():
        create_response(client, stream, input="[[stall]] two", previous_response_id=first.id)
    interrupted(client)
    client._client.event_hooks["request"].remove(refuse)
    (abandoned,) = (i for i in ids if i != first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(abandoned)
    again = client.responses.create(input="two", previous_response_id=first.id)
    assert again.output_text == "[turn 2] Echo: two"
    assert codex_model_server.requests[-1].user_texts() == ["one", "two"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_plain_create_cancelled_while_codex_works_interrupts_its_turn(
    aclient: AsyncCodexClient, codex_model_server: ModelServer, stream: bool
) -> None:
    """A plain create() waits for the dispatch itself (no HTTP request): cancelled there, its turn is
    interrupted, and the conversation goes on without it."""
    first = await aclient.chat.completions.create(messages=[user("one")])
    history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
    waiting = asyncio.create_task(
        aclient.chat.completions.create(messages=[*history, user("[[stall]] two")], stream=stream)
    )
    await asyncio.to_thread(codex_model_server.wait_for_requests, 2, 20)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    interrupted(aclient)
    again = await aclient.chat.completions.create(messages=[*history, user("two")])
    assert again.choices[0].message.content == "[turn 2] Echo: two"


def test_a_stream_made_in_the_instant_its_caller_was_interrupted_is_closed(
    client: CodexClient, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C lands after the engine loop made the stream, before create() had it: the
    stream is closed, which interrupts its turn (it is not left running to the model's end)."""
    loop = client._core.loop
    run_task = loop.run_task

    def interrupted_once_made(*args: Any, **kwargs: Any) -> Any:
        result = run_task(*args, **kwargs)
        if isinstance(result, openai.Stream):
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(loop, "run_task", interrupted_once_made)
    with pytest.raises(KeyboardInterrupt):
        client.chat.completions.create(messages=[user("[[stall-mid]] three four five")], stream=True)
    interrupted(client)


async def test_a_stream_made_in_the_instant_its_caller_was_cancelled_is_closed(
    aclient: AsyncCodexClient, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = aclient._core.loop
    run_task_async = loop.run_task_async

    async def cancelled_once_made(*args: Any, **kwargs: Any) -> Any:
        result = await run_task_async(*args, **kwargs)
        if isinstance(result, openai.AsyncStream):
            raise asyncio.CancelledError
        return result

    monkeypatch.setattr(loop, "run_task_async", cancelled_once_made)
    with pytest.raises(asyncio.CancelledError):
        await aclient.chat.completions.create(messages=[user("[[stall-mid]] three four five")], stream=True)
    interrupted(aclient)
