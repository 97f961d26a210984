"""OpenAI's Conversations API without Codex: the service's answers and refusals, the in-memory
store's bounds, and the routes that lead to them (shared by the in-process transport, the daemon's
socket and its HTTP endpoint)."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
from collections.abc import Coroutine
from typing import Any

import msgspec
import pytest
from image_details import PNG, PNG_URL

from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.conversations_store import ConversationRecord, MemoryConversationStore, StoredItem
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.protocol import (
    ConversationItemsCreateRequest,
    ConversationItemsDeleteRequest,
    ConversationItemsListRequest,
    ConversationItemsRetrieveRequest,
    ConversationsCreateRequest,
    ConversationsDeleteRequest,
    ConversationsRetrieveRequest,
    ConversationsUpdateRequest,
)
from claif_cod.transport.stored_routes import conversation_action, conversation_reply


def call(answer: bytes | Coroutine[Any, Any, bytes]) -> Any:
    """The JSON of an answer (``create``, ``add_items`` and the routes answer once awaited)."""
    return json.loads(answer if isinstance(answer, bytes) else asyncio.run(answer))


def new(service: ConversationsService, **body: Any) -> str:
    return str(call(service.create(json.dumps(body).encode()))["id"])


def refused(function: Any, *args: Any) -> APIFailure:
    def answer() -> object:
        result = function(*args)
        return asyncio.run(result) if inspect.iscoroutine(result) else result

    with pytest.raises(APIFailure) as caught:
        answer()
    return caught.value


def test_items_are_kept_as_openai_lists_them() -> None:
    service = ConversationsService()
    items = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "id": "msg_mine"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
    ]
    conversation = new(service, items=items, metadata={"k": "v"})
    listed = call(service.list_items(conversation, after=None, limit=None, order="asc"))["data"]
    assert [item["type"] for item in listed] == ["message", "message", "function_call", "function_call_output"]
    assert listed[0]["content"] == [{"type": "input_text", "text": "hi"}]
    assert listed[1]["content"] == [{"type": "output_text", "text": "hello", "annotations": []}]
    assert listed[1]["id"] == "msg_mine"
    assert [item["id"][:3] for item in listed] == ["msg", "msg", "fc_", "fco"]
    assert {item["status"] for item in listed} == {"completed"}
    assert call(service.retrieve_item(conversation, "msg_mine")) == listed[1]
    assert call(service.retrieve(conversation))["metadata"] == {"k": "v"}


def test_what_the_sdk_may_send_is_taken() -> None:
    service = ConversationsService()
    made = call(service.create(b'{"items": null, "metadata": null, "safety_identifier": "user-1"}'))
    assert (
        made["metadata"] == {}
        and call(service.list_items(made["id"], after=None, limit=None, order=None))["data"] == []
    )
    no_ids = b'{"items": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}'
    assert len(call(service.add_items(made["id"], no_ids))["data"]) == 2


def test_items_are_paged_as_openai_pages_them() -> None:
    service = ConversationsService()
    conversation = new(service, items=[{"role": "user", "content": str(i)} for i in range(5)])
    newest = call(service.list_items(conversation, after=None, limit=2, order=None))
    assert [i["content"][0]["text"] for i in newest["data"]] == ["4", "3"] and newest["has_more"]
    rest = call(service.list_items(conversation, after=newest["last_id"], limit=None, order=None))
    assert [i["content"][0]["text"] for i in rest["data"]] == ["2", "1", "0"] and not rest["has_more"]
    with pytest.raises(APIFailure) as caught:
        service.list_items(conversation, after="msg_nowhere", limit=None, order=None)
    assert caught.value.detail.param == "after"


def test_each_change_answers_as_openai_does_and_a_refused_one_changes_nothing() -> None:
    service = ConversationsService()
    conversation = new(service)
    added = call(service.add_items(conversation, b'{"items": [{"role": "user", "content": "a"}]}'))
    assert added["object"] == "list" and added["first_id"] == added["last_id"] == added["data"][0]["id"]
    before = service.list_items(conversation, after=None, limit=None, order=None)
    for body, param in [
        (json.dumps({"items": [{"role": "user", "content": "x"}] * 21}).encode(), "items"),
        (b'{"items": [{"type": "item_reference", "id": "msg_1"}]}', "items[0]"),
        (b'{"items": [{"role": "user", "content": "x", "id": 7}]}', "items[0].id"),
        (b'{"items": "not a list"}', "items"),
        (b'{"items": [], "colour": "blue"}', None),
        (b"{not json", None),
    ]:
        failure = refused(service.add_items, conversation, body)
        assert (failure.status, failure.detail.param) == (400, param), body
    assert service.list_items(conversation, after=None, limit=None, order=None) == before

    assert refused(service.update, conversation, b"{}").detail.param == "metadata"  # required, as OpenAI's
    taken = json.dumps({"items": [{"role": "user", "content": "x", "id": added["first_id"]}]}).encode()
    assert refused(service.add_items, conversation, taken).detail.param == "items[0].id"
    twice = b'{"items": [{"role": "user", "content": "x", "id": "m"}, {"role": "user", "content": "y", "id": "m"}]}'
    assert refused(service.add_items, conversation, twice).detail.param == "items[1].id"
    many = json.dumps({"metadata": {f"k{i}": "v" for i in range(17)}}).encode()
    assert refused(service.update, conversation, many).detail.param == "metadata"
    assert call(service.retrieve(conversation))["metadata"] == {}

    assert call(service.update(conversation, b'{"metadata": {"a": "b"}}'))["metadata"] == {"a": "b"}
    assert call(service.update(conversation, b'{"metadata": null}'))["metadata"] == {}  # null clears it

    removed = call(service.delete_item(conversation, added["first_id"]))
    assert removed["object"] == "conversation"  # OpenAI answers with the conversation
    assert refused(service.delete_item, conversation, added["first_id"]).status == 404
    assert call(service.delete(conversation)) == {"id": conversation, "object": "conversation.deleted", "deleted": True}
    for function, args in [
        (service.retrieve, (conversation,)),
        (service.delete, (conversation,)),
        (service.add_items, (conversation, b'{"items": []}')),
        (service.retrieve_item, (conversation, "msg_1")),
    ]:
        assert refused(function, *args).status == 404


def test_a_response_finds_its_conversation_or_a_404_naming_it() -> None:
    service = ConversationsService()
    conversation = new(service, items=[{"role": "user", "content": "hi"}])
    [item] = service.items_of(conversation)
    assert item["content"] == [{"type": "input_text", "text": "hi"}]
    failure = refused(service.items_of, "conv_nowhere")
    assert (failure.status, failure.detail.param) == (404, "conversation")
    service.append("conv_nowhere", [{"id": "msg_1", "type": "message"}])  # deleted meanwhile: nothing to add to
    service.append(conversation, [{"id": "msg_2", "type": "message", "role": "assistant", "content": []}])
    assert [i["id"] for i in service.items_of(conversation)] == [item["id"], "msg_2"]


def test_the_memory_store_keeps_the_conversations_written_last() -> None:
    store = MemoryConversationStore(capacity=2, max_bytes=100)
    for name in ("a", "b", "c"):
        store.create(ConversationRecord(name, 0, b"{}"), [StoredItem(f"{name}1", b"x" * 10)])
    assert store.get("a") is None and store.get("b") is not None and store.bytes == 20
    store.append("b", [StoredItem("b2", b"y" * 10)])  # written last: "c" is now the oldest
    store.create(ConversationRecord("d", 0, b"{}"), [])
    assert (store.get("c"), [i.item_id for i in store.items("b")]) == (None, ["b1", "b2"])
    store.append("d", [StoredItem("d1", b"z" * 90)])  # over max_bytes: the others go, "d" stays
    assert (store.get("b"), store.get("d") is not None, store.bytes) == (None, True, 90)
    assert store.delete_item("d", "d1") and not store.delete_item("d", "d1") and store.bytes == 0


ROUTES: list[tuple[str, str, type[Any]]] = [
    ("POST", "/conversations", ConversationsCreateRequest),
    ("GET", "/conversations/conv_1", ConversationsRetrieveRequest),
    ("POST", "/conversations/conv_1", ConversationsUpdateRequest),
    ("DELETE", "/conversations/conv_1", ConversationsDeleteRequest),
    ("POST", "/conversations/conv_1/items", ConversationItemsCreateRequest),
    ("GET", "/conversations/conv_1/items", ConversationItemsListRequest),
    ("GET", "/conversations/conv_1/items/msg_1", ConversationItemsRetrieveRequest),
    ("DELETE", "/conversations/conv_1/items/msg_1", ConversationItemsDeleteRequest),
]


@pytest.mark.parametrize(("method", "route", "kind"), ROUTES)
def test_each_route_is_its_protocol_request(method: str, route: str, kind: type[Any]) -> None:
    action = conversation_action(method, route, [("limit", "3"), ("order", "asc")], b"{}")
    assert type(action) is kind
    params = msgspec.structs.asdict(action.params)  # type: ignore[union-attr]
    if route != "/conversations":
        assert params["conversation_id"] == "conv_1"
    if kind is ConversationItemsListRequest:
        assert (params["limit"], params["order"]) == (3, "asc")


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/conversations"),
        ("PUT", "/conversations/conv_1"),
        ("GET", "/conversations/"),
        ("GET", "/conversations/conv_1/things"),
        ("POST", "/conversations/conv_1/items/msg_1"),
        ("GET", "/conversations/conv_1/items/msg_1/more"),
        ("GET", "/responses/resp_1"),
    ],
)
def test_other_routes_are_not_the_conversations(method: str, route: str) -> None:
    assert conversation_action(method, route, [], b"") is None


def test_a_route_answers_through_the_service() -> None:
    service = ConversationsService()
    create = conversation_action("POST", "/conversations", [], b'{"metadata": {"a": "b"}}')
    assert create is not None
    made = call(conversation_reply(service, create))
    listing = conversation_action("GET", f"/conversations/{made['id']}/items", [], b"")
    assert listing is not None
    assert call(conversation_reply(service, listing))["data"] == []
    with pytest.raises(APIFailure) as caught:
        conversation_action("GET", "/conversations/conv_1/items", [("limit", "many")], b"")
    assert caught.value.detail.param == "limit"


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ("\u00b2", "invalid_type"),  # a digit to str.isdigit(), not to int(): it was a 500
        ("\u0663", "invalid_type"),  # an Arabic-Indic three, which int() reads: no integer in JSON's or OpenAI's sense
        ("1.0", "invalid_type"),
        ("-1", "integer_below_min_value"),  # an integer: it was said to be a string
    ],
)
def test_a_list_limit_is_refused_as_openai_refuses_it(limit: str, code: str) -> None:
    service = ConversationsService()
    create = conversation_action("POST", "/conversations", [], b"{}")
    assert create is not None
    made = call(conversation_reply(service, create))

    def listed() -> bytes:
        listing = conversation_action("GET", f"/conversations/{made['id']}/items", [("limit", limit)], b"")
        assert listing is not None
        return asyncio.run(conversation_reply(service, listing))

    with pytest.raises(APIFailure) as caught:
        listed()
    assert (caught.value.detail.param, caught.value.detail.code) == ("limit", code)


def test_an_image_no_response_could_take_is_refused_and_changes_nothing() -> None:
    """It was kept, and every response on the conversation then failed with a 400 naming it."""
    service = ConversationsService()
    conversation = new(service, items=[{"role": "user", "content": "hi"}])
    before = service.list_items(conversation, after=None, limit=None, order=None)

    def image(url: str) -> bytes:
        part = {"type": "input_image", "image_url": url}
        return json.dumps({"items": [{"role": "user", "content": [part]}]}).encode()

    for url, says in [
        ("data:image/png;base64,####", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(PNG[:-5]).decode(), "cut short"),
        ("data:image/png;base64,aGVsbG8=", "not a PNG, JPEG, GIF or WebP image"),
        ("ftp://example.com/a.png", "must be an http(s) or data: URL"),
    ]:
        failure = refused(service.add_items, conversation, image(url))
        assert failure.detail.param == "items[0].content[0]" and says in failure.detail.message, url
        assert refused(service.create, image(url)).detail.param == "items[0].content[0]"
    assert service.list_items(conversation, after=None, limit=None, order=None) == before
    added = call(service.add_items(conversation, image(PNG_URL)))
    assert added["data"][0]["content"][0]["image_url"] == PNG_URL
    remote = call(service.add_items(conversation, image("https://example.invalid/a.png")))  # fetched by a response
    assert remote["data"][0]["content"][0]["image_url"] == "https://example.invalid/a.png"
