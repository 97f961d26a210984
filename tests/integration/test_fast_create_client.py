"""CodexClient's create() fast paths (chat and Responses) are still openai all the way: objects,
errors, raw responses, options, retries.  A plain non-streamed create() builds openai's object from
the reply without sending openai's HTTP request; everything else still goes through it."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from chat_messages import user
from openai.resources.chat.completions import completions as openai_completions
from openai.resources.responses import responses as openai_responses
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.completion_usage import CompletionUsage
from openai.types.responses import Response, ResponseCompletedEvent, ResponseOutputMessage, ResponseUsage
from test_early_dispatch import interrupted
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient, fast_create
from claif_cod.engine.appserver import AppServer
from claif_cod.event_stream import AsyncEventStream, EventStream
from claif_cod.openai_compat.text import ChoiceText
from claif_cod.testing import ModelServer
from claif_cod.transport import loop_thread, stream_objects

pytestmark = pytest.mark.codex


@pytest.fixture
def no_transform(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves the fast path ran: openai's own create() would call maybe_transform."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("openai's transform ran: the fast path was not taken")

    for module in (openai_completions, openai_responses):
        monkeypatch.setattr(module, "maybe_transform", refuse)
        monkeypatch.setattr(module, "async_maybe_transform", refuse)


def test_objects_streams_and_raw_responses_are_openais(no_transform: None, client: CodexClient) -> None:
    assert isinstance(client, openai.OpenAI)
    completion = client.chat.completions.create(messages=[user("a b")])
    assert isinstance(completion, ChatCompletion) and completion.choices[0].message.content == "Echo: a b"
    stream = client.chat.completions.create(messages=[user("c d")], stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: c d"
    raw = client.chat.completions.with_raw_response.create(messages=[user("e")], temperature=0.2)
    assert raw.headers["x-claif-cod-ignored-params"] == "temperature"
    assert raw.parse().choices[0].message.content == "Echo: e"
    with client.chat.completions.with_streaming_response.create(messages=[user("f")], stream=True) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices) == "Echo: f"


def test_per_call_options_reach_the_request(no_transform: None, client: CodexClient) -> None:
    seen: list[httpx2.Request] = []
    client._client.event_hooks["request"].append(seen.append)
    raw = client.chat.completions.with_raw_response.create(
        messages=[user("g")],
        extra_headers={"X-Trace": "t1"},
        extra_query={"q": "1"},
        extra_body={"seed": 7},
        timeout=30.0,
    )
    assert raw.headers["x-claif-cod-ignored-params"] == "seed"  # extra_body was merged into the body
    (request,) = seen
    assert request.headers["x-trace"] == "t1" and request.url.params["q"] == "1"
    assert request.extensions["timeout"]["read"] == 30.0


def no_http_request(client: CodexClient | AsyncCodexClient) -> list[httpx2.Request]:
    """The requests openai's pipeline sends, from here on."""
    sent: list[httpx2.Request] = []

    def hook(request: httpx2.Request) -> None:
        sent.append(request)

    async def async_hook(request: httpx2.Request) -> None:
        sent.append(request)

    client._client.event_hooks["request"].append(async_hook if isinstance(client, AsyncCodexClient) else hook)
    return sent


def test_a_streams_request_names_the_clients_base_url_as_it_is_now(client: CodexClient) -> None:
    """The URL is made once per base URL, not once per client: a new ``base_url`` is the next one's."""
    original = client.base_url

    def url() -> str:
        with client.chat.completions.create(messages=[user("where")], stream=True) as stream:
            list(stream)
            return str(stream.response.request.url)

    first = url()
    client.base_url = "http://elsewhere.invalid/v9/"
    moved = [url(), url()]
    client.base_url = original
    assert first.endswith("/v1/chat/completions")
    assert moved == ["http://elsewhere.invalid/v9/chat/completions"] * 2
    assert url() == first


def without_ids(completion: ChatCompletion) -> dict[str, Any]:
    return completion.model_dump(exclude={"id", "created"})


def test_a_plain_create_builds_openais_object_without_an_http_request(no_transform: None, client: CodexClient) -> None:
    sent = no_http_request(client)
    completion = client.chat.completions.create(messages=[user("same words")], max_completion_tokens=50)
    assert sent == []
    assert isinstance(completion.choices[0].message, ChatCompletionMessage)
    assert isinstance(completion.usage, CompletionUsage) and completion._request_id is None
    parsed = client.chat.completions.with_raw_response.create(messages=[user("same words")], max_completion_tokens=50)
    assert len(sent) == 1  # a raw response still goes through openai's request and response code
    assert without_ids(completion) == without_ids(parsed.parse())
    response = client.responses.create(input="in a response")
    assert sent[1:] == []
    assert isinstance(response, Response) and isinstance(response.output[0], ResponseOutputMessage)
    assert isinstance(response.usage, ResponseUsage) and response.output_text == "Echo: in a response"
    with client.chat.completions.create(messages=[user("streamed")], stream=True) as stream:
        assert isinstance(stream, openai.Stream) and stream.response.request.url.path == "/v1/chat/completions"
        chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: streamed"
    with client.responses.create(input="streamed too", stream=True) as events:
        assert [e.response.output_text for e in events if e.type == "response.completed"] == ["Echo: streamed too"]
    assert sent[1:] == []
    with client.chat.completions.with_streaming_response.create(messages=[user("x")]) as streamed:
        assert streamed.parse().choices[0].message.content == "Echo: x"
    assert len(sent) == 2


def test_errors_and_retries_are_openais(
    no_transform: None, codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """A failed dispatch goes through openai's pipeline, which raises and retries as for a server;
    so does a stream that fails before its first chunk."""
    with CodexClient(daemon="off", model="o4-mini", max_retries=2) as client:
        sent = no_http_request(client)
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(messages=[user("[[status:429]]")])
        assert len(codex_model_server.requests) == 3  # openai retried the 429 twice
        assert limited.value.status_code == 429 and limited.value.response.request.url == sent[-1].url
        assert len(sent) == 3
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(messages=[{"role": "tool", "content": "x"}])
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(messages=[user("[[status:429]]")], stream=True)
        assert len(codex_model_server.requests) == 6 and len(sent) == 7


@pytest.fixture
def no_engine_loop(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The engine loop cannot be made (the process is out of file descriptors) until the callable
    it returns is called."""
    made = loop_thread._new_loop

    def out_of_fds() -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(loop_thread, "_new_loop", out_of_fds)
    return lambda: monkeypatch.setattr(loop_thread, "_new_loop", made)


def test_an_engine_loop_that_cannot_be_made_is_openais_connection_error(
    no_transform: None, no_engine_loop: Callable[[], None], codex_home: Path, workdir: Path
) -> None:
    """As openai's own client fails when it cannot open a socket: ``APIConnectionError``, never a
    bare ``OSError``, on every path; the client works once the process has descriptors again."""
    with CodexClient(daemon="off", model="o4-mini") as client:
        calls: list[Callable[[], object]] = [
            lambda: client.chat.completions.create(messages=[user("a")]),
            lambda: client.chat.completions.create(messages=[user("a")], stream=True),
            lambda: client.chat.completions.with_raw_response.create(messages=[user("a")]),
            lambda: client.responses.create(input="a"),
            lambda: client.models.list(),
        ]
        for call in calls:
            with pytest.raises(openai.APIConnectionError) as failed:
                call()
            assert isinstance(failed.value.__cause__, OSError)
        no_engine_loop()
        assert client.chat.completions.create(messages=[user("a")]).choices[0].message.content == "Echo: a"


async def test_an_async_clients_engine_loop_that_cannot_be_made_is_openais_connection_error(
    no_transform: None, no_engine_loop: Callable[[], None], codex_home: Path, workdir: Path
) -> None:
    async with AsyncCodexClient(daemon="off", model="o4-mini") as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(messages=[user("a")])
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.with_raw_response.create(messages=[user("a")])
        no_engine_loop()
        completion = await client.chat.completions.create(messages=[user("a")])
        assert completion.choices[0].message.content == "Echo: a"


async def test_the_async_client_takes_the_fast_path_too(no_transform: None, codex_home: Path, workdir: Path) -> None:
    async with AsyncCodexClient(daemon="off", model="o4-mini", max_retries=1) as client:
        sent = no_http_request(client)
        completion = await client.chat.completions.create(messages=[user("h")])
        assert isinstance(completion, ChatCompletion) and completion.choices[0].message.content == "Echo: h"
        assert isinstance(completion.choices[0].message, ChatCompletionMessage) and sent == []
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(messages=[user("[[status:500]]")])
        assert len(sent) == 2  # the failure, then openai's retry
        raw = await client.chat.completions.with_raw_response.create(messages=[user("i")], stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices]) == "Echo: i"
        response = await client.responses.create(input=[user("j")])
        assert isinstance(response, Response) and response.output_text == "Echo: j"
        stream = await client.responses.create(input="k", stream=True)
        assert [e.response.output_text async for e in stream if isinstance(e, ResponseCompletedEvent)] == ["Echo: k"]


@pytest.fixture
def requests_to_codex(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods of the requests the engine sends Codex, in order."""
    sent: list[str] = []
    request = AppServer.request

    async def recorded(self: AppServer, method: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(method)
        return await request(self, method, *args, **kwargs)

    monkeypatch.setattr(AppServer, "request", recorded)
    return sent


def test_arguments_found_not_plain_while_the_turn_starts_go_through_openais_create(
    client: CodexClient, requests_to_codex: list[str], codex_model_server: ModelServer
) -> None:
    """A tuple encodes like a list but is not plain JSON: the turn the fast path started is undone
    (its history stays as it was) and openai's own create() answers; from then on that client
    checks its arguments before it starts a turn."""
    first = client.chat.completions.create(messages=[user("i")])
    history = [user("i"), {"role": "assistant", "content": first.choices[0].message.content}]
    requests_to_codex.clear()
    completion = client.chat.completions.create(messages=(*history, user("j")))  # openai's create() lists it
    assert completion.choices[0].message.content == "[turn 2] Echo: j"
    assert codex_model_server.requests[-1].user_texts() == ["i", "j"]
    assert requests_to_codex.count("turn/start") == 2  # the fast path's, undone, then openai's
    wait_until(lambda: "turn/interrupt" in requests_to_codex, "the fast path's turn to be interrupted")
    interrupted(client)
    history += [user("j"), {"role": "assistant", "content": completion.choices[0].message.content}]
    requests_to_codex.clear()
    again = client.chat.completions.create(messages=(*history, user("k")), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in again if c.choices) == "[turn 3] Echo: k"
    assert requests_to_codex.count("turn/start") == 1  # checked first: no turn started to undo


def test_responses_take_the_fast_path_and_stay_openais(
    no_transform: None, client: CodexClient, codex_model_server: ModelServer
) -> None:
    history: list[Any] = [
        {"role": "user", "content": "a"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "c d"}]},
    ]
    response = client.responses.create(input=history, instructions="RULE-9")
    assert isinstance(response, Response) and response.output_text == "[turn 2] Echo: c d"
    assert codex_model_server.requests[-1].user_texts() == ["a", "c d"]
    raw = client.responses.with_raw_response.create(input="e", previous_response_id=response.id, temperature=0.2)
    assert raw.headers["x-claif-cod-ignored-params"] == "temperature"
    assert raw.parse().output_text == "[turn 3] Echo: e"
    with client.responses.create(input="f", stream=True, extra_body={"store": False}) as stream:
        events = list(stream)
    assert isinstance(events[-1], ResponseCompletedEvent) and events[-1].response.output_text == "Echo: f"
    with pytest.raises(openai.BadRequestError, match="not found"):  # store=False (in extra_body) was honoured
        client.responses.create(input="g", previous_response_id=events[-1].response.id)


@pytest.fixture
def no_byte_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves a stream read claif_cod's events directly: openai's own reading goes through these."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the stream was read through httpx's byte iteration")

    monkeypatch.setattr(httpx2.Response, "iter_bytes", refuse)
    monkeypatch.setattr(httpx2.Response, "aiter_bytes", refuse)


def test_streams_read_the_events_directly(no_byte_iteration: None, client: CodexClient) -> None:
    chat = client.chat.completions.create(messages=[user("h i")], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices) == "Echo: h i"
    events = client.responses.create(input="j k", stream=True)
    assert [e.type for e in events][-1] == "response.completed"


async def test_async_streams_read_the_events_directly(no_byte_iteration: None, aclient: AsyncCodexClient) -> None:
    chat = await aclient.chat.completions.create(messages=[user("l m")], stream=True)
    assert isinstance(chat, openai.AsyncStream)
    assert "".join([c.choices[0].delta.content or "" async for c in chat if c.choices]) == "Echo: l m"
    events = await aclient.responses.create(input="n o", stream=True)
    assert [e.type async for e in events][-1] == "response.completed"


@pytest.fixture
def order(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """When openai's ``Stream`` objects are made, and when the engine reads Codex's first text."""
    seen: list[str] = []
    for cls in (EventStream, AsyncEventStream):
        made = cls.__init__

        def init(self: Any, *args: Any, __made: Any = made, **kwargs: Any) -> None:
            seen.append("stream")
            __made(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", init)
    delta = ChoiceText.delta

    def text(self: ChoiceText, item_id: str, piece: str) -> str:
        seen.append("delta")
        return delta(self, item_id, piece)

    monkeypatch.setattr(ChoiceText, "delta", text)
    return seen


SLOW = "[[slow:200]] p q"
"""The model's first word comes 200 ms after the turn starts: long after the stream's objects."""


def test_a_streams_objects_are_made_while_codex_works(order: list[str], client: CodexClient) -> None:
    """openai's ``Stream`` is made on the engine loop before Codex's first text, so that the first
    chunk does not wait for it."""
    chat = client.chat.completions.create(messages=[user(SLOW)], stream=True)
    assert isinstance(chat, EventStream)
    assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices).endswith("p q")
    assert order[:2] == ["stream", "delta"]


async def test_an_async_streams_objects_are_made_while_codex_works(order: list[str], aclient: AsyncCodexClient) -> None:
    chat = await aclient.chat.completions.create(messages=[user(SLOW)], stream=True)
    assert isinstance(chat, AsyncEventStream)
    assert "".join([c.choices[0].delta.content or "" async for c in chat if c.choices]).endswith("p q")
    assert order[:2] == ["stream", "delta"]


def test_a_stream_answered_before_its_objects_were_due_makes_them_then(
    order: list[str], monkeypatch: pytest.MonkeyPatch, client: CodexClient
) -> None:
    monkeypatch.setattr(stream_objects, "STREAM_OBJECTS_DELAY_S", 3600)
    sent: list[httpx2.Request] = []
    client._client.event_hooks["request"].append(sent.append)
    chat = client.chat.completions.create(messages=[user("p q")], stream=True)
    assert isinstance(chat, EventStream) and order.index("stream") > order.index("delta")
    assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices) == "Echo: p q"
    assert sent == []  # not left to openai's pipeline


def test_a_stream_whose_objects_could_not_be_made_early_takes_openais_pipeline(
    monkeypatch: pytest.MonkeyPatch, client: CodexClient
) -> None:
    """A fault in making them early is logged; the stream is openai's own then."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("making the stream's objects early failed")

    monkeypatch.setattr(fast_create._StreamAnswer, "request", refuse)
    seen: list[httpx2.Request] = []
    client._client.event_hooks["request"].append(seen.append)
    chat = client.chat.completions.create(messages=[user("v w")], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices) == "Echo: v w"
    assert [request.url.path for request in seen] == ["/v1/chat/completions"]  # sent through openai's pipeline
