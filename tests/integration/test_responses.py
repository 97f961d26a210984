"""``client.responses`` through the real Codex binary and the offline model (in-process engine)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import Response
from pydantic import BaseModel

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def thread_of(request: object) -> str:
    return str(request.body["prompt_cache_key"])  # type: ignore[attr-defined]  # Codex's thread id


def test_create_returns_an_openai_response_with_real_usage(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    response = client.responses.create(
        model="o4-mini", input="hello world", instructions="RULE-77", user="u-1", safety_identifier="s-1"
    )

    assert isinstance(response, Response)
    assert response.status == "completed"
    assert response.completed_at is not None and response.completed_at >= response.created_at
    assert (response.user, response.safety_identifier, response.background, response.truncation) == (
        "u-1",
        "s-1",
        False,
        "disabled",
    )
    assert response.output_text == "Echo: hello world"
    assert response.id.startswith("resp_")
    assert response.model == "o4-mini"
    assert response.instructions == "RULE-77"
    [request] = codex_model_server.requests
    assert any("RULE-77" in text for text in request.developer_texts())
    usage = response.usage
    assert usage is not None
    assert usage.output_tokens == 3  # one delta per word
    assert usage.input_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


async def test_async_create(aclient: AsyncCodexClient) -> None:
    response = await aclient.responses.create(input="async hello")
    assert response.output_text == "Echo: async hello"


def test_stream_emits_openai_events_in_order(client: CodexClient) -> None:
    with client.responses.create(input="one two three", stream=True) as stream:
        events = list(stream)

    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 4 and "".join(deltas) == "Echo: one two three"  # one delta per word
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == "Echo: one two three"
    assert done.response.usage is not None and done.response.usage.output_tokens == 4
    assert events[0].response.status == "in_progress"  # type: ignore[union-attr]
    assert events[0].response.completed_at is None and done.response.completed_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("marker", "error", "code"),
    [
        ("[[status:429:insufficient_quota]]", openai.RateLimitError, "insufficient_quota"),
        ("[[status:400:context_length_exceeded]]", openai.BadRequestError, "context_length_exceeded"),
        ("[[failed]]", openai.InternalServerError, None),
    ],
)
def test_a_stream_whose_turn_fails_before_any_output_is_an_error_status(
    client: CodexClient, marker: str, error: type[openai.APIStatusError], code: str | None
) -> None:
    """As a chat stream's: it was a stream that said ``response.created``, then ``response.failed``
    with ``server_error`` (the user's message Codex echoes back opened it), so a caller could not
    tell a spent quota or a full context window from a passing fault."""
    with pytest.raises(error) as info:
        client.responses.create(input=f"x {marker}", stream=True)
    assert info.value.code == code
    body = info.value.body
    assert isinstance(body, dict) and "{" not in body["message"]  # the provider's own message, not its JSON body


def test_a_stream_past_its_deadline_is_stored_failed_saying_so(client: CodexClient) -> None:
    """It was stored cancelled (as if the caller had stopped reading), and failed over serve --http."""
    events = iter(client.responses.create(model="o4-mini", input="[[stall-mid]] go", stream=True, timeout=1.0))
    created = next(events)
    assert created.type == "response.created"
    with pytest.raises(openai.APITimeoutError):
        list(events)
    stored = client.responses.retrieve(created.response.id)
    assert stored.status == "failed"
    assert stored.error is not None and "no event for 1 s" in stored.error.message


def test_a_stream_begins_when_the_model_runs_a_command_not_when_it_writes(client: CodexClient, workdir: Path) -> None:
    """A command the model runs is the model's answer begun: ``create()`` returns with
    ``response.created`` while it runs (a turn busy with commands showed nothing until it wrote).
    The command reads a FIFO that is written only once ``create()`` has returned (or, should it not
    return, after 20 s, when Codex has ended the command long since and nothing reads it)."""
    fifo = workdir / "gate"
    os.mkfifo(fifo)
    returned = threading.Event()

    def open_the_gate() -> None:
        returned.wait(20)
        with contextlib.suppress(OSError), os.fdopen(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "w") as gate:
            gate.write("open\n")  # (OSError: ENXIO, nobody reads it any more)

    opener = threading.Thread(target=open_the_gate)
    opener.start()
    try:
        with client.responses.create(input=f"[[tool:cat {fifo}]] go", stream=True) as stream:
            returned.set()
            events = list(stream)
    finally:
        returned.set()
        opener.join()
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    said = events[-1].response.output_text
    assert "Process exited with code 0" in said and said.endswith("Output:\nopen\n")  # it read the gate's word


def test_a_stream_that_fails_after_its_first_output_ends_with_response_failed(client: CodexClient) -> None:
    # [[flaky]] drops the model's connection after two deltas; Codex does not retry in the test home
    with client.responses.create(input="[[flaky]] x y z", stream=True) as stream:
        events = list(stream)
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Echo: x"
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    assert failed.response.error.code == "server_error" and "disconnected" in failed.response.error.message


async def test_async_stream(aclient: AsyncCodexClient) -> None:
    stream = await aclient.responses.create(input="streamed", stream=True)
    text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
    assert text == "Echo: streamed"


def test_previous_response_id_continues_the_same_thread(client: CodexClient, codex_model_server: ModelServer) -> None:
    first = client.responses.create(input="first")
    second = client.responses.create(input="second", previous_response_id=first.id)

    assert second.output_text == "[turn 2] Echo: second"
    assert second.previous_response_id == first.id
    one, two = codex_model_server.requests
    assert thread_of(one) == thread_of(two)
    assert two.messages() == [("user", "first"), ("assistant", "Echo: first"), ("user", "second")]


def test_branching_from_an_older_response_forks_and_leaves_the_continued_thread_alone(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    root = client.responses.create(input="root")
    main = client.responses.create(input="main line", previous_response_id=root.id)
    branch = client.responses.create(input="side line", previous_response_id=root.id)
    client.responses.create(input="main again", previous_response_id=main.id)

    r_root, r_main, r_branch, r_after = codex_model_server.requests
    assert r_branch.messages() == [("user", "root"), ("assistant", "Echo: root"), ("user", "side line")]
    assert thread_of(r_branch) != thread_of(r_root)  # a fork, not the original thread
    assert thread_of(r_after) == thread_of(r_main) == thread_of(r_root)
    assert ("user", "side line") not in r_after.messages()
    assert r_after.messages()[-2:] == [("assistant", main.output_text), ("user", "main again")]
    assert branch.output_text == "[turn 2] Echo: side line"
    # The branch is a thread of its own that continues like any other.
    again = client.responses.create(input="branch again", previous_response_id=branch.id)
    assert thread_of(codex_model_server.requests[-1]) == thread_of(r_branch)
    assert again.output_text == "[turn 3] Echo: branch again"


@pytest.mark.parametrize("store", [True, False])
def test_a_re_sent_transcript_continues_the_warm_thread(
    client: CodexClient, codex_model_server: ModelServer, store: bool
) -> None:
    # What agent libraries do without previous_response_id: send the whole transcript, with the
    # output items of the last response as they came back, each turn.
    transcript: list[Any] = [{"role": "user", "content": "one"}]
    first = client.responses.create(input=transcript, instructions="RULE-5", store=store)
    transcript += [item.model_dump(exclude_none=True) for item in first.output]
    transcript.append({"role": "user", "content": "two"})
    second = client.responses.create(input=transcript, instructions="RULE-5", store=store)
    assert second.output_text == "[turn 2] Echo: two"
    one, two = codex_model_server.requests
    assert thread_of(two) == thread_of(one)  # no new thread, nothing injected again
    assert two.messages() == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]
    transcript += [item.model_dump(exclude_none=True) for item in second.output]
    # A transcript that differs from what the thread holds (an edited reply) gets a thread of its own.
    edited = [*transcript[:1], {"role": "assistant", "content": "Echo: uno"}, *transcript[2:]]
    branch = client.responses.create(
        input=[*edited, {"role": "user", "content": "three"}], instructions="RULE-5", store=store
    )
    assert branch.output_text == "[turn 3] Echo: three"
    assert thread_of(codex_model_server.requests[-1]) != thread_of(one)
    assert ("assistant", "Echo: uno") in codex_model_server.requests[-1].messages()
    # The warm thread still continues the unedited transcript.
    third = client.responses.create(
        input=[*transcript, {"role": "user", "content": "four"}], instructions="RULE-5", store=store
    )
    assert third.output_text == "[turn 3] Echo: four"
    assert thread_of(codex_model_server.requests[-1]) == thread_of(one)


def test_a_transcript_after_a_response_of_two_messages_continues_the_warm_thread(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    # Agentic models often send a commentary message before the answer: both come back as items.
    transcript: list[Any] = [{"role": "user", "content": "one [[preamble:Looking into it.]]"}]
    first = client.responses.create(input=transcript)
    assert [item.type for item in first.output] == ["message", "message"]
    transcript += [item.model_dump(exclude_none=True) for item in first.output]
    second = client.responses.create(input=[*transcript, {"role": "user", "content": "two"}])
    assert second.output_text == "[turn 2] Echo: two"
    one, two = codex_model_server.requests
    assert thread_of(two) == thread_of(one)
    assert two.messages()[1:] == [("assistant", "Looking into it."), ("assistant", "Echo: one"), ("user", "two")]


def test_a_thread_continued_by_id_is_no_longer_the_warm_end_of_its_old_transcript(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.responses.create(input=[{"role": "user", "content": "one"}])
    client.responses.create(input="two", previous_response_id=first.id)  # the thread moves on
    transcript = [{"role": "user", "content": "one"}, *(i.model_dump() for i in first.output)]
    again = client.responses.create(input=[*transcript, {"role": "user", "content": "three"}])
    assert again.output_text == "[turn 2] Echo: three"
    assert codex_model_server.requests[-1].user_texts() == ["one", "three"]  # not "two"


def test_chat_never_continues_a_responses_thread(client: CodexClient, codex_model_server: ModelServer) -> None:
    first = client.responses.create(input=[{"role": "user", "content": "one"}])
    chat = [{"role": "user", "content": "one"}, {"role": "assistant", "content": first.output_text}]
    client.chat.completions.create(model="o4-mini", messages=[*chat, {"role": "user", "content": "two"}])
    assert thread_of(codex_model_server.requests[-1]) != thread_of(codex_model_server.requests[0])
    after = client.responses.create(input="three", previous_response_id=first.id)
    assert after.output_text == "[turn 2] Echo: three"
    assert codex_model_server.requests[-1].user_texts() == ["one", "three"]  # first is still its thread's tip


def test_a_stored_response_does_not_continue_a_thread_without_a_rollout(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.responses.create(input="one", store=False)
    transcript: list[Any] = ["one", *first.output, "two"]
    transcript = [{"role": "user", "content": t} if isinstance(t, str) else t.model_dump() for t in transcript]
    second = client.responses.create(input=transcript)  # stored: continued by id later, also after a restart
    assert second.output_text == "[turn 2] Echo: two"
    one, two = codex_model_server.requests
    assert thread_of(two) != thread_of(one)  # the ephemeral thread could not be resumed from a rollout


def test_input_items_become_history_and_instructions(client: CodexClient, codex_model_server: ModelServer) -> None:
    response = client.responses.create(
        input=[
            {"role": "system", "content": "SYS-RULE"},
            {"role": "user", "content": "earlier question"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "earlier answer"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "now"}]},
        ],
    )
    assert response.output_text == "[turn 2] Echo: now"
    [request] = codex_model_server.requests
    assert any("SYS-RULE" in text for text in request.developer_texts())
    assert request.messages() == [("user", "earlier question"), ("assistant", "earlier answer"), ("user", "now")]


def test_json_schema_becomes_codex_output_schema(client: CodexClient, codex_model_server: ModelServer) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        input='[[reply:{"a": "x"}]]',
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"a": "x"}
    [request] = codex_model_server.requests
    assert request.body["text"]["format"]["type"] == "json_schema"
    assert request.body["text"]["format"]["schema"]["properties"] == schema["properties"]
    assert response.text.format.type == "json_schema"


class Thing(BaseModel):
    a: int


@pytest.mark.parametrize("stream", [False, True])
def test_a_json_schema_response_leaves_the_models_commentary_out_and_continues_warm(
    client: CodexClient, codex_model_server: ModelServer, stream: bool
) -> None:
    """As chat's: Codex holds the narration to the schema too, and openai's ``responses.parse()``
    parses every message of the output (``output_text`` joins them): the commentary is not the answer."""
    said = '[[preamble:{"a": 0}]] [[reply:{"a": 1}]]'
    if stream:
        with client.responses.stream(model="o4-mini", input=said, text_format=Thing) as events:
            kinds = [event.type for event in events]
            response = events.get_final_response()
        assert kinds.count("response.output_item.added") == 1
    else:
        response = client.responses.parse(model="o4-mini", input=said, text_format=Thing)
    assert response.output_parsed == Thing(a=1)
    assert [item.type for item in response.output] == ["message"]
    assert json.loads(response.output_text) == {"a": 1}
    transcript: list[Any] = [
        {"role": "user", "content": said},
        {"role": "assistant", "content": response.output_text},
        {"role": "user", "content": '[[reply:{"a": 2}]]'},
    ]
    assert client.responses.parse(model="o4-mini", input=transcript, text_format=Thing).output_parsed == Thing(a=2)
    one, two = codex_model_server.requests
    assert thread_of(one) == thread_of(two)  # the re-sent transcript continued the warm thread


def test_a_json_schema_response_that_is_all_commentary_is_the_answer(client: CodexClient) -> None:
    fmt: Any = {"type": "json_schema", "name": "thing", "schema": {"type": "object"}}
    response = client.responses.create(model="o4-mini", input='[[preamble:{"a": 0}]] [[reply:]]', text={"format": fmt})
    assert response.output_text == '{"a": 0}'


def test_reasoning_effort_and_summaries(client: CodexClient, codex_model_server: ModelServer) -> None:
    response = client.responses.create(input="think [[reasoning]]", reasoning={"effort": "low", "summary": "auto"})
    [request] = codex_model_server.requests
    assert request.body["reasoning"]["effort"] == "low"
    assert request.body["reasoning"]["summary"] == "auto"
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["Thinking about how to answer this request."]
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 7


def test_output_items_keep_the_models_own_ids(client: CodexClient) -> None:
    """Codex passes on the model's item ids (``rs_57``, ``msg_58`` from the offline model, as
    OpenAI's ``msg_...``): they are the response's, not prefixed again (``msg_msg_58``)."""
    response = client.responses.create(input="think [[reasoning]]")
    assert [re.sub(r"\d+", "N", item.id or "") for item in response.output] == ["rs_N", "msg_N"]
    stream = client.responses.create(input="think [[reasoning]]", stream=True)
    done = [event.item.id for event in stream if event.type == "response.output_item.done"]
    assert [re.sub(r"\d+", "N", item_id or "") for item_id in done] == ["rs_N", "msg_N"]


def test_retrieve_returns_the_stored_response(client: CodexClient) -> None:
    created = client.responses.create(input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == "Echo: keep me" and fetched.status == "completed"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")


def test_a_stored_response_is_retrieved_whatever_it_includes_but_not_streamed_again(client: CodexClient) -> None:
    """``include`` asks for fields these responses never have; streaming a stored response again is
    for OpenAI's background responses (an empty stream before: openai's ``Stream`` over the JSON)."""
    created = client.responses.create(input="keep me")
    fetched = client.responses.retrieve(created.id, include=["message.output_text.logprobs"])
    assert fetched.output_text == "Echo: keep me"
    with pytest.raises(openai.BadRequestError, match="not streamed again") as info:
        client.responses.retrieve(created.id, stream=True)
    assert info.value.param == "stream"
    # (openai's TypeError before, for the client's model= beside response_id)
    with (
        pytest.raises(openai.BadRequestError, match="not streamed again"),
        client.responses.stream(response_id=created.id) as events,
    ):
        list(events)


def test_store_false_is_not_retrievable(client: CodexClient) -> None:
    created = client.responses.create(input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(input="more", previous_response_id=created.id)


def test_unknown_previous_response_is_a_400(client: CodexClient, codex_model_server: ModelServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(input="x", previous_response_id="resp_nope")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert codex_model_server.requests == []


def test_unhonoured_parameters_are_reported_or_refused(client: CodexClient) -> None:
    raw = client.responses.with_raw_response.create(input="hi", temperature=0.2, max_output_tokens=50)
    assert raw.headers["x-claif-cod-ignored-params"] == "max_output_tokens,temperature"
    with pytest.raises(openai.BadRequestError, match="strict mode"):
        client.responses.create(input="hi", temperature=0.2, extra_body={"strict": True})


def test_a_clients_session_id_is_reported_since_responses_do_not_take_it(codex_home: Path, workdir: Path) -> None:
    with CodexClient(daemon="off", model="o4-mini", session_id="notes") as client:
        raw = client.responses.with_raw_response.create(input="hi")
        assert raw.headers["x-claif-cod-ignored-params"] == "session_id"
        assert raw.parse().output_text == "Echo: hi"
        with pytest.raises(openai.BadRequestError, match="strict mode: Codex cannot honour session_id"):
            client.responses.create(input="hi", extra_body={"strict": True})


def test_a_failed_turn_raises_the_openai_error(client: CodexClient) -> None:
    with pytest.raises(openai.AuthenticationError):
        client.responses.create(input="[[status:401:invalid_api_key]]")


def test_input_image_reaches_the_model_and_its_file_is_removed(
    client: CodexClient, codex_model_server: ModelServer, private_tempdir: Path
) -> None:
    response = client.responses.create(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_image", "image_url": PNG_URL},
                ],
            }
        ]
    )
    assert response.output_text == "Echo: what is this"
    [request] = codex_model_server.requests
    [image] = request.images()
    assert base64.b64decode(image.split(",", 1)[1]) == PNG
    assert list(private_tempdir.iterdir()) == []  # the turn's image directory is gone, before any close


def test_unreadable_image_is_a_400_naming_the_part(client: CodexClient, codex_model_server: ModelServer) -> None:
    bad = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            input=[
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": bad}],
                }
            ]
        )
    assert caught.value.body["param"] == "input[0].content[1]"  # type: ignore[index]
    assert codex_model_server.requests == []


async def test_concurrent_continuations_of_one_response_never_share_a_thread(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    root = await aclient.responses.create(input="root")
    replies = await asyncio.gather(
        *(aclient.responses.create(input=f"[[barrier:2]] child {i}", previous_response_id=root.id) for i in range(2))
    )
    assert sorted(r.output_text for r in replies) == ["[turn 2] Echo: child 0", "[turn 2] Echo: child 1"]
    _, one, two = codex_model_server.requests
    assert thread_of(one) != thread_of(two)  # one continued the thread, the other forked it
    assert {thread_of(one), thread_of(two)} & {thread_of(codex_model_server.requests[0])}
    for request in (one, two):
        assert len(request.user_texts()) == 2  # root + its own child, never the sibling


def test_incomplete_for_length(client: CodexClient) -> None:
    response = client.responses.create(input="long story [[incomplete]]")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert [(item.type, item.status) for item in response.output] == [("message", "incomplete")]  # the cut one
    assert client.responses.retrieve(response.id).output[0].status == "incomplete"  # type: ignore[union-attr]
    with client.responses.create(input="long story [[incomplete]]", stream=True) as stream:
        events = list(stream)
    done = [e.item.status for e in events if e.type == "response.output_item.done"]  # type: ignore[union-attr]
    assert done == ["completed"]  # Codex says the turn was cut only after the message's end
    assert events[-1].type == "response.incomplete"
    assert [item.status for item in events[-1].response.output] == ["incomplete"]  # type: ignore[union-attr]


def test_retries_leave_a_response_whose_turn_ran_a_command_alone(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", max_retries=2) as client, pytest.raises(openai.InternalServerError) as failed:
        client.responses.create(model="o4-mini", input="[[tool:echo ran]] [[failed-after-tool]] go")
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert len(codex_model_server.requests) == 2  # the command's call and its follow-up, once
