"""A stored response's other endpoints: ``input_items.list``, ``delete`` and ``cancel``, and what is
kept of a request that ends early (in-process engine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from image_details import PNG_URL
from openai.types.responses import ResponseInputMessageItem, ResponseItemList
from test_tools import engine_of, wait_until

from claif_cod import CodexClient
from claif_cod.openai_compat.responses_store import ResponseRecord
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex

TRANSCRIPT = [
    {
        "role": "user",
        "content": [{"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": PNG_URL}],
    },
    {"role": "assistant", "content": "a pixel"},
    {"type": "function_call", "call_id": "call_1", "name": "size", "arguments": "{}", "id": "fc_given"},
    {"type": "function_call_output", "call_id": "call_1", "output": "1x1"},
    {"role": "user", "content": "and now?"},
]


def thread_of(request: object) -> str:
    return str(request.body["prompt_cache_key"])  # type: ignore[attr-defined]  # Codex's thread id


def check_include_values(client: openai.OpenAI) -> None:
    """``include`` on a stored response's or conversation's reads: OpenAI's values change nothing (these
    have none of the fields they ask for), a value OpenAI does not know is refused as ``create`` refuses it."""
    response = client.responses.create(model="o4-mini", input="keep me")
    conversation = client.conversations.create(items=[{"role": "user", "content": "kept"}])
    [item] = client.conversations.items.list(conversation.id).data
    known: list[Any] = ["reasoning.encrypted_content", "message.output_text.logprobs"]
    reads: list[Callable[[list[Any]], object]] = [
        lambda include: client.responses.retrieve(response.id, include=include),
        lambda include: client.responses.input_items.list(response.id, include=include),
        lambda include: client.conversations.items.list(conversation.id, include=include),
        lambda include: client.conversations.items.retrieve(item.id, conversation_id=conversation.id, include=include),
    ]
    for read in reads:
        assert read(known) is not None
        with pytest.raises(openai.BadRequestError, match=r"Invalid value: 'usage'\. Supported values are") as refused:
            read([*known, "usage"])
        assert refused.value.param == "include[2]"  # type: ignore[attr-defined]
        assert refused.value.code == "invalid_value"


def test_include_values_are_checked_on_stored_reads(client: CodexClient) -> None:
    check_include_values(client)


def test_input_items_are_the_requests_own_input_in_openai_pages(client: CodexClient) -> None:
    first = client.responses.create(model="o4-mini", input="hello")
    second = client.responses.create(model="o4-mini", input=TRANSCRIPT)  # type: ignore[arg-type]
    [only] = client.responses.input_items.list(first.id).data
    assert isinstance(only, ResponseInputMessageItem)
    assert (only.role, only.status, [(c.type, c.text) for c in only.content]) == (  # type: ignore[union-attr]
        "user",
        "completed",
        [("input_text", "hello")],
    )
    assert only.id.startswith("msg_")

    newest_first = client.responses.input_items.list(second.id)
    assert [i.type for i in newest_first.data] == [
        "message",
        "function_call_output",
        "function_call",
        "message",
        "message",
    ]
    assert newest_first.has_more is False
    assert (newest_first.first_id, newest_first.last_id) == (newest_first.data[0].id, newest_first.data[-1].id)
    oldest = newest_first.data[-1]
    assert isinstance(oldest, ResponseInputMessageItem)
    assert [c.type for c in oldest.content] == ["input_text", "input_image"]
    assert oldest.content[1].image_url == PNG_URL  # type: ignore[union-attr]
    assert newest_first.data[2].id == "fc_given"  # the caller's own id is kept
    assert newest_first.data[3].content[0].text == "a pixel"  # type: ignore[union-attr]
    assert newest_first.data[3].content[0].annotations == []  # type: ignore[union-attr]  # openai requires it
    ResponseItemList.model_validate(newest_first.model_dump())  # every field openai's types require is there

    pages = client.responses.input_items.list(second.id, order="asc", limit=2)
    assert [i.id for i in pages.data] == [i.id for i in reversed(newest_first.data)][:2] and pages.has_more
    every = list(pages)  # the SDK follows `after` = last_id until has_more is false
    assert [i.id for i in every] == [i.id for i in reversed(newest_first.data)]

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_items.list(second.id, limit=101)
    says = "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 101 instead."
    assert (caught.value.param, caught.value.code) == ("limit", "integer_above_max_value")  # type: ignore[attr-defined]
    assert caught.value.body["message"] == says  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_items.list(second.id, order="sideways")  # type: ignore[arg-type]
    assert (caught.value.param, caught.value.code) == ("order", "invalid_value")  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_missing")


def test_input_items_page_backwards_with_before(client: CodexClient) -> None:
    """OpenAI's ``before`` (not a parameter of openai 2's ``input_items.list``, so sent as a query
    parameter): the page is the items just before that one, not the first page, which ignoring
    ``before`` would answer."""
    words = [{"role": "user", "content": f"m{i}"} for i in range(6)]
    response = client.responses.create(model="o4-mini", input=words)  # type: ignore[arg-type]
    ids = [item.id for item in client.responses.input_items.list(response.id, order="asc")]

    def texts(**query: str) -> tuple[list[str], bool]:
        limit = int(query.pop("limit", "2"))
        order = query.pop("order", "asc")
        page = client.responses.input_items.list(
            response.id,
            limit=limit,
            order=order,  # type: ignore[arg-type]
            extra_query=query,
        )
        return [item.content[0].text for item in page.data], page.has_more  # type: ignore[union-attr]

    assert texts(before=ids[4]) == (["m2", "m3"], True)  # the previous page, in the list's order
    assert texts(before=ids[1]) == (["m0"], False)
    assert texts(before=ids[0]) == ([], False)
    assert texts(before=ids[1], order="desc") == (["m3", "m2"], True)  # newest first: what comes before m1
    assert texts(after=ids[0], before=ids[4], limit="2") == (["m1", "m2"], True)  # between the two
    assert texts(after=ids[2], before=ids[4]) == (["m3"], False)
    with pytest.raises(openai.BadRequestError) as caught:
        texts(before="msg_missing")
    assert caught.value.param == "before"  # type: ignore[attr-defined]


def test_delete_leaves_the_responses_that_continued_it_working(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.responses.create(model="o4-mini", input="one")
    second = client.responses.create(model="o4-mini", input="two", previous_response_id=first.id)
    assert client.responses.delete(first.id) is None  # openai's own return value

    for call in (client.responses.retrieve, client.responses.input_items.list, client.responses.delete):
        with pytest.raises(openai.NotFoundError):
            call(first.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="o4-mini", input="x", previous_response_id=first.id)
    assert caught.value.param == "previous_response_id"  # type: ignore[attr-defined]

    assert client.responses.retrieve(second.id).output_text == "[turn 2] Echo: two"
    third = client.responses.create(model="o4-mini", input="three", previous_response_id=second.id)
    assert third.output_text == "[turn 3] Echo: three"
    r_one, r_two, r_three = codex_model_server.requests
    assert thread_of(r_one) == thread_of(r_two) == thread_of(r_three)  # still the same thread


def test_a_branch_from_before_a_deleted_response_does_not_see_it(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """The deleted response keeps its place in its thread: continuing an older one forks past it."""
    first = client.responses.create(model="o4-mini", input="base")
    newer = client.responses.create(model="o4-mini", input="secret", previous_response_id=first.id)
    client.responses.delete(newer.id)
    branch = client.responses.create(model="o4-mini", input="branch", previous_response_id=first.id)
    assert branch.output_text == "[turn 2] Echo: branch"
    r_first, _, r_branch = codex_model_server.requests
    assert thread_of(r_branch) != thread_of(r_first)
    assert ("user", "secret") not in r_branch.messages()


def test_cancel_is_refused_as_openai_refuses_a_synchronous_response(client: CodexClient) -> None:
    done = client.responses.create(model="o4-mini", input="quick")
    with pytest.raises(openai.BadRequestError, match="Cannot cancel a synchronous response"):
        client.responses.cancel(done.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_missing")


def test_background_is_refused_not_ignored(client: CodexClient, codex_model_server: ModelServer) -> None:
    with pytest.raises(openai.BadRequestError, match="background") as caught:
        client.responses.create(model="o4-mini", input="later", background=True)
    assert caught.value.param == "background"  # type: ignore[attr-defined]
    assert client.responses.create(model="o4-mini", input="now", background=False).output_text == "Echo: now"
    assert len(codex_model_server.requests) == 1


def recorded_ids(client: CodexClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every response id the client's store is given, in order: also those the caller never sees."""
    client.models.list()  # the engine starts with the first request
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    store = client.backend.local.responses_service.store
    ids: list[str] = []
    put = store.put

    def recording(record: ResponseRecord) -> None:
        if record.response_id not in ids:
            ids.append(record.response_id)
        put(record)

    monkeypatch.setattr(store, "put", recording)
    return ids


def test_a_response_that_failed_as_an_http_status_is_not_kept(
    workdir: object, codex_home: object, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with CodexClient(daemon="off", model="o4-mini", max_retries=0) as client:
        ids = recorded_ids(client, monkeypatch)
        with pytest.raises(openai.RateLimitError):
            client.responses.create(input="[[status:429]] busy")
        (failed,) = ids
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(failed)


def test_a_stream_closed_after_its_first_event_is_kept_as_cancelled(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """The caller has the id from ``response.created``: the response stays, as ``cancelled``, and so
    does what it had begun, as ``incomplete`` (its message stayed ``in_progress``)."""
    with client.responses.create(model="o4-mini", input="[[stall-mid]] one two three", stream=True) as stream:
        created = next(event for event in stream if event.type == "response.created")
        next(event for event in stream if event.type == "response.output_text.delta")
    engine = engine_of(client)
    wait_until(lambda: engine.turns_in_flight == 0, "the closed stream's turn to be interrupted")
    kept = client.responses.retrieve(created.response.id)
    assert kept.status == "cancelled"
    [message] = kept.output
    assert message.type == "message" and message.status == "incomplete"
    assert message.content[0].type == "output_text" and message.content[0].text.startswith("Echo:")


def test_results_after_the_tool_timeout_replay_the_stored_conversation(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """In-process the suspended turn goes when its ``tool_timeout`` passes; the results then still answer
    the calls, replayed (calls and results as real items) on a new thread."""
    tool = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
    first = client.responses.create(
        model="o4-mini",
        input="time? [[call:get_time {}]]",
        tools=[tool],  # type: ignore[list-item]
        extra_body={"tool_timeout": 0.5},
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    engine = engine_of(client)
    wait_until(lambda: engine.turns_in_flight == 0, what="the suspension to expire")
    with pytest.raises(openai.BadRequestError, match="No tool call found for function call output with call_id nope"):
        client.responses.create(
            model="o4-mini",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": "nope", "output": "noon"}],
        )
    late = client.responses.create(
        model="o4-mini",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "noon"}],
        tools=[tool],  # type: ignore[list-item]
    )
    assert late.output_text == "Tool get_time returned: noon"
    asked, replay = codex_model_server.requests
    assert thread_of(replay) != thread_of(asked)
    assert [(c.call_id, c.name) for c in replay.function_calls()] == [(call.call_id, "get_time")]
    assert [(o.call_id, o.output) for o in replay.function_outputs()] == [(call.call_id, "noon")]
