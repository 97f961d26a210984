"""OpenAI's Conversations API in-process, with the real Codex binary: ``client.conversations`` and
``client.conversations.items`` as openai's own objects, and ``responses.create(conversation=...)``
running on a conversation's items, then adding the request's input and the response's output."""

from __future__ import annotations

import json

import openai
import pytest
from image_details import PNG_URL
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItemList, Message
from test_responses_stored import thread_of
from test_tools import engine_of, wait_until

from claif_cod import CodexClient
from claif_cod.openai_compat.responses_schema import ResponseCompleted
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def texts(client: CodexClient, conversation_id: str) -> list[tuple[str, str]]:
    """Each item of the conversation, oldest first: its type, and its role and text or its call."""
    out = []
    for item in client.conversations.items.list(conversation_id, order="asc"):
        if isinstance(item, Message):
            out.append((item.role, " ".join(part.text for part in item.content)))  # type: ignore[union-attr]
        else:
            out.append((item.type, json.dumps(item.model_dump(include={"name", "output", "call_id"}), sort_keys=True)))
    return out


def test_conversations_and_items_are_openais_objects(client: CodexClient) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}],
        metadata={"topic": "greetings"},
    )
    assert isinstance(conversation, Conversation) and conversation.id.startswith("conv_")
    assert conversation.metadata == {"topic": "greetings"} and conversation.object == "conversation"
    assert client.conversations.retrieve(conversation.id) == conversation

    added = client.conversations.items.create(conversation.id, items=[{"role": "user", "content": "more"}])
    assert isinstance(added, ConversationItemList) and not added.has_more
    [item] = added.data
    assert isinstance(item, Message) and item.id.startswith("msg_") and item.status == "completed"
    assert (item.role, [(c.type, c.text) for c in item.content]) == ("user", [("input_text", "more")])  # type: ignore[union-attr]
    assert (added.first_id, added.last_id) == (item.id, item.id)

    newest_first = client.conversations.items.list(conversation.id)
    assert [i.content[0].text for i in newest_first.data] == ["more", "hi there", "hello"]  # type: ignore[union-attr]
    assert newest_first.data[1].content[0].type == "output_text"  # type: ignore[union-attr]
    assert newest_first.data[1].content[0].annotations == []  # type: ignore[union-attr]  # openai requires it
    ConversationItemList.model_validate(newest_first.model_dump())  # every field openai's types require is there
    page = client.conversations.items.list(conversation.id, order="asc", limit=2)
    assert page.has_more and len(page.data) == 2
    assert [i.id for i in page] == [i.id for i in reversed(newest_first.data)]  # the SDK follows `after`
    assert client.conversations.items.retrieve(item.id, conversation_id=conversation.id) == item

    after_delete = client.conversations.items.delete(item.id, conversation_id=conversation.id)
    assert after_delete == conversation  # OpenAI answers with the conversation
    assert [i.id for i in client.conversations.items.list(conversation.id)] == [i.id for i in newest_first.data[1:]]

    updated = client.conversations.update(conversation.id, metadata={"topic": "farewells"})
    assert updated.metadata == {"topic": "farewells"} and updated.created_at == conversation.created_at
    deleted = client.conversations.delete(conversation.id)
    assert isinstance(deleted, ConversationDeletedResource) and deleted.deleted and deleted.id == conversation.id
    for gone in (
        lambda: client.conversations.retrieve(conversation.id),
        lambda: client.conversations.items.list(conversation.id),
        lambda: client.conversations.items.retrieve("msg_x", conversation_id=conversation.id),
    ):
        with pytest.raises(openai.NotFoundError):
            gone()


def test_what_openai_refuses_is_refused_and_changes_nothing(client: CodexClient) -> None:
    conversation = client.conversations.create()
    refused = [
        (lambda: client.conversations.items.create(conversation.id, items=[{"role": "user", "content": "x"}] * 21)),
        (lambda: client.conversations.items.create(conversation.id, items=[{"type": "web_search_call"}])),
        (lambda: client.conversations.items.create(conversation.id, items=[{"role": "critic", "content": "x"}])),
        (lambda: client.conversations.create(metadata={f"k{i}": "v" for i in range(17)})),
        (lambda: client.conversations.update(conversation.id, metadata={"k": "v" * 513})),
        (lambda: client.conversations.create(extra_body={"colour": "blue"})),
    ]
    params = []
    for call in refused:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        params.append(caught.value.param)  # type: ignore[attr-defined]
    assert params == ["items", "items[0]", "items[0].role", "metadata", "metadata.k", None]
    assert client.conversations.items.list(conversation.id).data == []
    assert client.conversations.retrieve(conversation.id).metadata == {}
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.list(conversation.id, after="msg_unknown")
    assert caught.value.param == "after"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError) as not_found:
        client.conversations.items.delete("msg_unknown", conversation_id=conversation.id)
    assert not_found.value.param == "item_id"  # type: ignore[attr-defined]


def test_a_response_runs_on_its_conversation_and_adds_its_input_and_output(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    conversation = client.conversations.create(
        items=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "my name is Ada"},
            {"role": "assistant", "content": "Hello Ada"},
        ]
    )
    first = client.responses.create(model="o4-mini", input="who am I?", conversation=conversation.id)
    assert first.conversation is not None and first.conversation.id == conversation.id
    assert first.output_text == "[turn 2] Echo: who am I?"
    [request] = codex_model_server.requests
    assert request.messages()[-3:] == [("user", "my name is Ada"), ("assistant", "Hello Ada"), ("user", "who am I?")]
    assert "Be brief." in request.developer_texts()

    second = client.responses.create(model="o4-mini", input="and now?", conversation={"id": conversation.id})
    assert second.output_text == "[turn 3] Echo: and now?"
    first_request, second_request = codex_model_server.requests
    assert thread_of(second_request) == thread_of(first_request)  # the same warm Codex thread went on
    assert texts(client, conversation.id) == [
        ("system", "Be brief."),
        ("user", "my name is Ada"),
        ("assistant", "Hello Ada"),
        ("user", "who am I?"),
        ("assistant", "[turn 2] Echo: who am I?"),
        ("user", "and now?"),
        ("assistant", "[turn 3] Echo: and now?"),
    ]
    output_ids = [item.id for item in (*first.output, *second.output)]
    listed = [item.id for item in client.conversations.items.list(conversation.id, order="asc")]
    assert listed[4] == output_ids[0] and listed[6] == output_ids[1]  # the output items as the response had them


def test_a_streamed_response_adds_to_its_conversation_too(client: CodexClient) -> None:
    conversation = client.conversations.create()
    with client.responses.create(model="o4-mini", input="hello", conversation=conversation.id, stream=True) as stream:
        events = list(stream)
    assert events[-1].type == "response.completed"
    assert events[-1].response.conversation is not None
    assert texts(client, conversation.id) == [("user", "hello"), ("assistant", "Echo: hello")]


def test_tool_calls_go_round_through_a_conversation(client: CodexClient, codex_model_server: ModelServer) -> None:
    conversation = client.conversations.create()
    asked = client.responses.create(
        model="o4-mini",
        input='Weather? [[call:get_weather {"city": "Oslo"}]]',
        tools=[WEATHER],  # type: ignore[list-item]
        conversation=conversation.id,
    )
    [call] = asked.output
    assert call.type == "function_call"
    answered = client.responses.create(
        model="o4-mini",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
        conversation=conversation.id,
    )
    assert answered.output_text == "Tool get_weather returned: sunny"
    assert thread_of(codex_model_server.requests[1]) == thread_of(codex_model_server.requests[0])  # the turn went on
    assert [kind for kind, _ in texts(client, conversation.id)] == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
    ]


def test_a_refused_or_failed_response_adds_nothing(client: CodexClient, codex_model_server: ModelServer) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "hello"}])
    earlier = client.responses.create(model="o4-mini", input="first")
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(
            model="o4-mini", input="x", conversation=conversation.id, previous_response_id=earlier.id
        )
    assert both.value.param == "conversation"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="o4-mini", input="x", conversation="conv_missing")
    assert missing.value.param == "conversation"  # type: ignore[attr-defined]
    assert len(codex_model_server.requests) == 1  # only `earlier` reached the model

    once = client.with_options(max_retries=0)
    with pytest.raises(openai.APIError):
        once.responses.create(model="o4-mini", input="[[failed]] go", conversation=conversation.id)
    with pytest.raises(openai.InternalServerError):  # failed before any output: an HTTP status
        once.responses.create(model="o4-mini", input="[[failed]] go", conversation=conversation.id, stream=True)
    with once.responses.create(model="o4-mini", input="[[flaky]] go", conversation=conversation.id, stream=True) as s:
        assert [event.type for event in s][-1] == "response.failed"  # [[flaky]]: after two deltas
    assert texts(client, conversation.id) == [("user", "hello")]
    client.responses.create(model="o4-mini", input="again", conversation=conversation.id)
    assert [role for role, _ in texts(client, conversation.id)] == ["user", "user", "assistant"]


def test_reasoning_items_are_kept_but_not_replayed(client: CodexClient) -> None:
    conversation = client.conversations.create()
    client.responses.create(
        model="o4-mini", input="think [[reasoning]]", reasoning={"summary": "auto"}, conversation=conversation.id
    )
    assert [kind for kind, _ in texts(client, conversation.id)] == ["user", "reasoning", "assistant"]
    # Codex cannot replay reasoning: left out, and not reported, since the caller did not send it
    raw = client.responses.with_raw_response.create(
        model="o4-mini", input="go on", conversation=conversation.id, extra_body={"strict": True}
    )
    assert "x-claif-cod-ignored-params" not in raw.headers
    assert raw.parse().output_text == "[turn 2] Echo: go on"


def test_a_stream_read_only_to_its_last_event_has_added_its_items(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """An agent acts on ``response.completed`` at once and may never ask for more: what it relies on
    is in place before that event is made (read here from the service itself, which is held at that
    event: the client's transport reads on ahead, and would hide a race)."""
    conversation = client.conversations.create()
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    service = client.backend.local.responses_service
    body = json.dumps({"model": "o4-mini", "input": "hello", "conversation": conversation.id, "stream": True})

    async def held_at_the_last_event() -> tuple[str, list[dict[str, object]], str]:
        stream = await service.stream(body.encode(), client._core.options)
        try:
            async for event in stream.events:
                if isinstance(event, ResponseCompleted):
                    items = service.conversations.items_of(conversation.id)
                    # nor does the conversation wait for the stream to be closed
                    nxt = {"model": "o4-mini", "input": "next", "conversation": conversation.id}
                    reply, _ = await service.create(json.dumps(nxt).encode(), client._core.options)
                    return event.response.id, items, reply.status
        finally:
            await stream.events.aclose()
        raise AssertionError("no response.completed")

    response_id, items, status = client._core.loop.run(held_at_the_last_event())
    assert status == "completed"
    assert [(item["role"], item["content"][0]["text"]) for item in items] == [  # type: ignore[index]
        ("user", "hello"),
        ("assistant", "Echo: hello"),
    ]
    assert client.responses.retrieve(response_id).status == "completed"
    after = client.responses.create(model="o4-mini", input="again", conversation=conversation.id)
    assert after.output_text == "[turn 3] Echo: again"
    # "next" came while the first turn was still ending, so it had a thread of its own: "again" continues that
    assert thread_of(codex_model_server.requests[2]) == thread_of(codex_model_server.requests[1])


def test_what_a_conversations_items_hold_that_codex_cannot_take_is_not_reported_later(client: CodexClient) -> None:
    """Reported (or refused by strict mode) in the request that sends it, not in every later one."""
    items = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": PNG_URL, "detail": "low"},
            ],
        },
        {"role": "assistant", "content": "a pixel", "phase": "final_answer"},
    ]
    conversation = client.conversations.create(items=items)  # type: ignore[arg-type]
    raw = client.responses.with_raw_response.create(
        model="o4-mini", input="and?", conversation=conversation.id, extra_body={"strict": True}
    )
    assert "x-claif-cod-ignored-params" not in raw.headers
    assert raw.parse().output_text == "[turn 2] Echo: and?"
    sent_now = client.responses.with_raw_response.create(
        model="o4-mini",
        input=[{"role": "user", "content": [{"type": "input_image", "image_url": PNG_URL, "detail": "low"}]}],
        conversation=conversation.id,
    )
    assert sent_now.headers["x-claif-cod-ignored-params"] == "input_image.detail"


def test_one_response_at_a_time_on_a_conversation(client: CodexClient, codex_model_server: ModelServer) -> None:
    """As OpenAI's: a second response on a conversation while one runs is a 400
    (``conversation_locked``) that reaches no model; another conversation is not held up, and the
    conversation is free again once the response has ended, however it ended."""
    held, other = client.conversations.create(), client.conversations.create()
    bad_image = {"type": "input_image", "image_url": "data:image/png;base64,@@@"}
    with pytest.raises(openai.BadRequestError, match="not valid base64"):  # refused as it starts: held no longer
        client.responses.create(
            model="o4-mini",
            input=[{"role": "user", "content": [bad_image, {"type": "input_text", "text": "look"}]}],  # type: ignore[list-item]
            conversation=held.id,
        )
    with client.responses.create(
        model="o4-mini", input="[[stall-mid]] one two three", conversation=held.id, stream=True
    ) as stream:
        next(event for event in stream if event.type == "response.output_text.delta")
        with pytest.raises(openai.BadRequestError) as locked:
            client.responses.create(model="o4-mini", input="meanwhile", conversation=held.id)
        assert (locked.value.code, locked.value.param) == ("conversation_locked", "conversation")  # type: ignore[attr-defined]
        assert client.responses.create(model="o4-mini", input="elsewhere", conversation=other.id).output_text
        assert len(codex_model_server.requests) == 2  # the held response's and the other conversation's
    engine = engine_of(client)
    wait_until(lambda: engine.turns_in_flight == 0, what="the closed stream's turn to be interrupted")
    assert texts(client, held.id) == []  # the cancelled response added nothing
    after = client.responses.create(model="o4-mini", input="now", conversation=held.id)
    assert after.output_text.endswith("Echo: now")
    assert texts(client, held.id) == [("user", "now"), ("assistant", after.output_text)]


def test_an_item_id_names_one_item_of_a_request_and_its_conversation(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """As OpenAI's "Duplicate item found": input that repeats an id, its own or its conversation's, is a
    400 naming ``input`` that changes nothing."""
    conversation = client.conversations.create(items=[{"id": "msg_mine", "role": "user", "content": "hello"}])
    for sent in (
        [{"id": "msg_mine", "role": "user", "content": "again"}],
        [{"id": "msg_x", "role": "user", "content": "a"}, {"id": "msg_x", "role": "user", "content": "b"}],
    ):
        with pytest.raises(openai.BadRequestError, match="Duplicate item found with id msg_") as duplicate:
            client.responses.create(model="o4-mini", input=sent, conversation=conversation.id)  # type: ignore[arg-type]
        assert duplicate.value.param == "input"  # type: ignore[attr-defined]
    twice = [{"id": "msg_y", "role": "user", "content": "a"}, {"id": "msg_y", "role": "user", "content": "b"}]
    with pytest.raises(openai.BadRequestError, match="Duplicate item found with id msg_y"):
        client.responses.create(model="o4-mini", input=twice)  # type: ignore[arg-type]
    assert not codex_model_server.requests
    assert texts(client, conversation.id) == [("user", "hello")]
    fresh = client.responses.create(
        model="o4-mini", input=[{"id": "msg_new", "role": "user", "content": "go"}], conversation=conversation.id
    )
    assert [item.id for item in client.conversations.items.list(conversation.id, order="asc")][:2] == [
        "msg_mine",
        "msg_new",
    ]
    assert fresh.output_text.endswith("Echo: go")


def test_a_chain_that_repeats_an_id_is_replayed(client: CodexClient, codex_model_server: ModelServer) -> None:
    """Only a request's own input and its conversation are checked for repeated ids, not the chain
    ``previous_response_id`` names: a replay of that chain (here: the tools changed) gives Codex the
    items without their ids, and does not trip over one a caller sent twice."""
    first = client.responses.create(model="o4-mini", input=[{"id": "msg_mine", "role": "user", "content": "hi"}])
    again = client.responses.create(
        model="o4-mini",
        previous_response_id=first.id,
        input=[{"id": "msg_mine", "role": "user", "content": "more"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert again.output_text.endswith("Echo: more")
    assert thread_of(codex_model_server.requests[1]) != thread_of(codex_model_server.requests[0])  # replayed
