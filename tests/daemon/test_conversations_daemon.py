"""OpenAI's Conversations API through both daemon doors, with the real Codex binary: the socket
(``CodexClient(daemon="require")`` and raw protocol frames) and ``serve --http`` (the plain ``openai``
SDK) share one store in ``responses.db``, which outlives the daemon."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai.pagination import SyncConversationCursorPage
from openai.types.conversations import ConversationItem, ConversationItemList, Message
from raw_client import receive, send
from test_responses_daemon import thread_of
from test_responses_doors import Doors
from test_responses_doors import doors as doors  # the fixture, re-exported by its name

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def texts(listed: ConversationItemList | SyncConversationCursorPage[ConversationItem]) -> list[tuple[str, str]]:
    """Each message's role and text, in the list's order."""
    out: list[tuple[str, str]] = []
    for item in listed.data:
        assert isinstance(item, Message), item
        out.append((item.role, " ".join(part.text for part in item.content)))  # type: ignore[union-attr]
    return out


def restarted(doors: Doors) -> Doors:
    """The daemon stopped and started again on the same state directory (a new HTTP port)."""
    assert doors.process.stop() == 0
    doors.process.start("--http", "127.0.0.1:0", "--http-working-dir", str(doors.workdir))
    return Doors(doors.process, doors.workdir)


def test_one_store_behind_both_doors(doors: Doors) -> None:
    http = doors.http
    with doors.socket() as client:
        from_socket = client.conversations.create(
            items=[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}],
            metadata={"door": "socket"},
        )
    assert http.conversations.retrieve(from_socket.id) == from_socket
    added_over_http = http.conversations.items.create(from_socket.id, items=[{"role": "user", "content": "via http"}])
    from_http = http.conversations.create(
        items=[{"role": "user", "content": "born over http"}], metadata={"door": "http"}
    )

    with doors.socket() as client:
        assert client.conversations.retrieve(from_http.id) == from_http
        listed_by_socket = client.conversations.items.list(from_socket.id, order="asc")
        added_over_socket = client.conversations.items.create(
            from_http.id, items=[{"role": "assistant", "content": "via the socket"}]
        )
        updated = client.conversations.update(from_http.id, metadata={"door": "both"})
        [added] = added_over_http.data
        assert isinstance(added, Message)
        item_by_socket = client.conversations.items.retrieve(added.id, conversation_id=from_socket.id)

    listed_by_http = http.conversations.items.list(from_socket.id, order="asc")
    assert listed_by_socket.model_dump() == listed_by_http.model_dump()
    assert texts(listed_by_http) == [("user", "hello"), ("assistant", "hi there"), ("user", "via http")]
    assert listed_by_http.data[-1] == added == item_by_socket
    assert http.conversations.items.retrieve(added.id, conversation_id=from_socket.id) == item_by_socket
    assert http.conversations.retrieve(from_http.id) == updated and updated.metadata == {"door": "both"}
    assert texts(http.conversations.items.list(from_http.id, order="asc")) == [
        ("user", "born over http"),
        ("assistant", "via the socket"),
    ]
    assert [i.id for i in http.conversations.items.list(from_http.id, order="asc")][-1] == added_over_socket.last_id

    # What one door deletes, the other no longer finds.
    assert http.conversations.items.delete(added.id, conversation_id=from_socket.id) == from_socket
    deleted = http.conversations.delete(from_http.id)
    assert deleted.deleted and deleted.id == from_http.id
    with doors.socket() as client:
        assert texts(client.conversations.items.list(from_socket.id, order="asc")) == texts(listed_by_http)[:2]
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(from_http.id)
        client.conversations.delete(from_socket.id)
    with pytest.raises(openai.NotFoundError):
        http.conversations.items.list(from_socket.id)


def test_responses_on_a_conversation_through_both_doors(doors: Doors, codex_model_server: ModelServer) -> None:
    conversation = doors.http.conversations.create(
        items=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "my name is Ada"},
            {"role": "assistant", "content": "Hello Ada"},
        ]
    )
    with doors.socket() as client:
        first = client.responses.create(input="who am I?", conversation=conversation.id)
    second = doors.http.responses.create(model="o4-mini", input="and now?", conversation={"id": conversation.id})
    third = doors.http.responses.create(model="o4-mini", input="once more", conversation=conversation.id)

    for response in (first, second, third):
        assert response.conversation is not None and response.conversation.id == conversation.id
    assert [r.output_text for r in (first, second, third)] == [
        "[turn 2] Echo: who am I?",
        "[turn 3] Echo: and now?",
        "[turn 4] Echo: once more",
    ]
    r_first, r_second, r_third = codex_model_server.requests
    assert r_first.messages()[-3:] == [("user", "my name is Ada"), ("assistant", "Hello Ada"), ("user", "who am I?")]
    assert "Be brief." in r_first.developer_texts()
    assert r_second.messages()[-5:] == [
        ("user", "my name is Ada"),
        ("assistant", "Hello Ada"),
        ("user", "who am I?"),
        ("assistant", "[turn 2] Echo: who am I?"),
        ("user", "and now?"),
    ]  # what the socket's response added, the HTTP request ran on
    assert "Be brief." in r_second.developer_texts()
    assert r_third.messages()[-3:] == [
        ("user", "and now?"),
        ("assistant", "[turn 3] Echo: and now?"),
        ("user", "once more"),
    ]
    # The warm thread went on, from one door to the other: the socket's client names its CODEX_HOME,
    # the HTTP request none, and both mean the daemon's own.
    assert thread_of(r_first) == thread_of(r_second) == thread_of(r_third)

    with doors.socket() as client:
        by_socket = client.conversations.items.list(conversation.id, order="asc")
    by_http = doors.http.conversations.items.list(conversation.id, order="asc")
    assert by_socket.model_dump() == by_http.model_dump()
    assert texts(by_http) == [
        ("system", "Be brief."),
        ("user", "my name is Ada"),
        ("assistant", "Hello Ada"),
        ("user", "who am I?"),
        ("assistant", "[turn 2] Echo: who am I?"),
        ("user", "and now?"),
        ("assistant", "[turn 3] Echo: and now?"),
        ("user", "once more"),
        ("assistant", "[turn 4] Echo: once more"),
    ]
    assert [by_http.data[n].id for n in (4, 6, 8)] == [r.output[0].id for r in (first, second, third)]


def test_a_conversation_outlives_the_daemon_and_goes_on_from_its_items(
    doors: Doors, codex_model_server: ModelServer
) -> None:
    with doors.socket() as client:
        conversation = client.conversations.create(
            items=[{"role": "user", "content": "remember the number 12"}], metadata={"topic": "numbers"}
        )
        first = client.responses.create(input="which number?", conversation=conversation.id)
        client.conversations.items.create(conversation.id, items=[{"role": "user", "content": "it was 12"}])
        before = client.conversations.items.list(conversation.id, order="asc")
    assert first.output_text == "[turn 2] Echo: which number?"

    doors = restarted(doors)
    assert doors.http.conversations.retrieve(conversation.id) == conversation  # its metadata too
    assert doors.http.conversations.items.list(conversation.id, order="asc").model_dump() == before.model_dump()
    with doors.socket() as client:
        assert client.conversations.items.list(conversation.id, order="asc").model_dump() == before.model_dump()
        after = client.responses.create(input="and now?", conversation=conversation.id)
    assert after.output_text == "[turn 4] Echo: and now?"

    r_first, r_after = codex_model_server.requests
    assert thread_of(r_after) != thread_of(r_first)  # the old thread went with the old daemon's Codex...
    assert r_after.messages()[-5:] == [
        ("user", "remember the number 12"),
        ("user", "which number?"),
        ("assistant", "[turn 2] Echo: which number?"),
        ("user", "it was 12"),
        ("user", "and now?"),
    ]  # ...and the new one was seeded from every item, in order
    listed = doors.http.conversations.items.list(conversation.id, order="asc")
    assert texts(listed) == [*texts(before), ("user", "and now?"), ("assistant", "[turn 4] Echo: and now?")]


Refusal = tuple[type[openai.APIStatusError], int, "str | None", str]


def refusals(door: CodexClient | openai.OpenAI, conversation_id: str) -> list[Refusal]:
    """What each wrong request raises: the SDK's exception, its status, its ``param`` and its message."""
    calls: list[Callable[[], object]] = [
        lambda: door.conversations.retrieve("conv_missing"),
        lambda: door.conversations.items.list("conv_missing"),
        lambda: door.conversations.items.retrieve("msg_missing", conversation_id=conversation_id),
        lambda: door.responses.create(model="o4-mini", input="x", conversation="conv_missing"),
        lambda: door.conversations.items.create(
            conversation_id,
            items=[{"role": "user", "content": "x"}] * 21,
        ),
    ]
    seen: list[Refusal] = []
    for call in calls:
        with pytest.raises(openai.APIStatusError) as caught:
            call()
        error = caught.value
        seen.append((type(error), error.status_code, error.param, error.message))
    return seen


def test_errors_are_the_sdks_own_exceptions_through_both_doors(doors: Doors, codex_model_server: ModelServer) -> None:
    conversation = doors.http.conversations.create()
    with doors.socket() as client:
        via_socket = refusals(client, conversation.id)
    via_http = refusals(doors.http, conversation.id)
    assert via_socket == via_http
    assert [(kind, status, param) for kind, status, param, _ in via_http] == [
        (openai.NotFoundError, 404, None),
        (openai.NotFoundError, 404, None),
        (openai.NotFoundError, 404, "item_id"),
        (openai.NotFoundError, 404, "conversation"),
        (openai.BadRequestError, 400, "items"),
    ]
    assert "conv_missing" in via_http[0][3]
    assert doors.http.conversations.items.list(conversation.id).data == []  # the refused items were not added
    assert codex_model_server.requests == []  # nothing reached the model


def http_get(url: str) -> tuple[int, Any]:
    """The status and JSON body of a plain ``GET`` (no SDK between the test and the endpoint)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.load(refused)


HELLO = {"protocol_version": 1, "package_version": "raw", "client_name": "raw-client"}


@contextlib.contextmanager
def raw_connection(doors: Doors) -> Iterator[Callable[[str, dict[str, Any]], dict[str, Any]]]:
    """A connection speaking the documented framing and JSON alone; ``call(method, params)`` is the reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)  # a daemon that never answers fails the test instead of hanging it
    ids = iter(range(1, 1000))

    def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(ids)
        send(sock, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        reply = receive(sock)
        assert reply["id"] == request_id, reply
        return reply

    with contextlib.closing(sock):
        sock.connect(str(doors.process.socket))
        assert {"conversations", "responses.compact"} <= set(call("hello", HELLO)["result"]["capabilities"])
        yield call


def test_raw_socket_requests_get_openais_json_and_its_errors(doors: Doors) -> None:
    base = str(doors.http.base_url).rstrip("/")
    with raw_connection(doors) as call:
        created = call("conversations.create", {"body": {"items": [{"role": "user", "content": "one"}]}})["result"]
        assert created["object"] == "conversation" and created["id"].startswith("conv_")
        added = call(
            "conversations.items.create",
            {"conversation_id": created["id"], "body": {"items": [{"role": "assistant", "content": "two"}]}},
        )["result"]
        assert added["object"] == "list" and [i["content"][0]["text"] for i in added["data"]] == ["two"]

        page = call("conversations.items.list", {"conversation_id": created["id"], "order": "asc", "limit": 1})
        assert set(page) == {"jsonrpc", "id", "result"}
        listed = page["result"]
        [first] = listed["data"]
        assert first["type"] == "message" and first["role"] == "user" and first["status"] == "completed"
        assert first["content"] == [{"type": "input_text", "text": "one"}]
        assert (listed["object"], listed["first_id"], listed["last_id"], listed["has_more"]) == (
            "list", first["id"], first["id"], True,
        )  # fmt: skip
        over_http = http_get(f"{base}/conversations/{created['id']}/items?order=asc&limit=1")
        assert over_http == (200, listed)  # the very list GET /v1/conversations/{id}/items answers

        no_response = call("responses.retrieve", {"response_id": "resp_missing"})
        no_conversation = call("conversations.items.list", {"conversation_id": "conv_missing"})
        no_item = call("conversations.items.retrieve", {"conversation_id": created["id"], "item_id": "msg_missing"})

    def shape(reply: dict[str, Any]) -> Any:
        """The reply with its ids, messages and params blanked: what every stored-object 404 shares."""
        error = json.loads(json.dumps(reply["error"]))
        error["message"] = error["data"]["body"]["error"]["message"] = "..."
        error["data"]["body"]["error"]["param"] = "..."
        return {**reply, "id": "...", "error": error}

    assert shape(no_conversation) == shape(no_item) == shape(no_response)
    assert no_response["error"]["code"] == -32000 and no_response["error"]["data"]["status_code"] == 404
    detail = no_conversation["error"]["data"]["body"]["error"]
    assert "conv_missing" in detail["message"] and detail["message"] == no_conversation["error"]["message"]
    assert detail["type"] == "invalid_request_error"
    assert http_get(f"{base}/conversations/conv_missing/items") == (404, no_conversation["error"]["data"]["body"])


def test_one_response_at_a_time_on_a_conversation_whichever_door(doors: Doors) -> None:
    """The daemon's doors share one lock per conversation: a response running on it through the socket
    makes one asked over HTTP a 400 ``conversation_locked``, until it has ended."""
    conversation = doors.http.conversations.create()
    held = {"model": "o4-mini", "input": "[[stall-mid]] one two three", "conversation": conversation.id}
    with doors.socket() as client, client.responses.create(**held, stream=True) as stream:  # type: ignore[call-overload]
        next(event for event in stream if event.type == "response.output_text.delta")
        with pytest.raises(openai.BadRequestError) as locked:
            doors.http.responses.create(model="o4-mini", input="meanwhile", conversation=conversation.id)
        assert (locked.value.code, locked.value.param) == ("conversation_locked", "conversation")  # type: ignore[attr-defined]

    def now() -> openai.types.responses.Response:
        """Asked once the daemon has seen the socket's stream closed (it hears so asynchronously)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return doors.http.responses.create(model="o4-mini", input="now", conversation=conversation.id)
            except openai.BadRequestError as exc:
                if exc.code != "conversation_locked" or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    assert now().output_text.endswith("Echo: now")
