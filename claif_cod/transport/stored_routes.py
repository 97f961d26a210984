"""OpenAI's routes to what is stored between requests (a response, a conversation and its items),
as the protocol's own request types: the in-process transport, the daemon's socket and its
``--http`` endpoint read a route into one of these, and the same function answers it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple, cast
from urllib.parse import unquote

import msgspec

from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.ranges import INCLUDABLE, not_one_of
from claif_cod.protocol import (
    ConversationBodyParams,
    ConversationCreateParams,
    ConversationItemParams,
    ConversationItemsCreateRequest,
    ConversationItemsDeleteRequest,
    ConversationItemsListParams,
    ConversationItemsListRequest,
    ConversationItemsRetrieveRequest,
    ConversationParams,
    ConversationRequest,
    ConversationsCreateRequest,
    ConversationsDeleteRequest,
    ConversationsRetrieveRequest,
    ConversationsUpdateRequest,
    ResponsesCancelRequest,
    ResponsesDeleteRequest,
    ResponsesInputItemsParams,
    ResponsesInputItemsRequest,
    ResponsesRetrieveParams,
)

if TYPE_CHECKING:
    from claif_cod.openai_compat.conversations_service import ConversationsService
    from claif_cod.openai_compat.responses_service import ResponsesService

StoredResponseAction = ResponsesDeleteRequest | ResponsesCancelRequest | ResponsesInputItemsRequest
"""The protocol's own request types say what to do with a stored response, in-process as on the socket."""


Query = Sequence[tuple[str, str]]
"""A request's query as its name-value pairs, a name repeated for each value of a list (openai
writes ``include=[a, b]`` as ``include[]=a&include[]=b``)."""


def _read(query: Query) -> dict[str, str]:
    """Each name's first value, once every ``include`` value is found to be one of OpenAI's: claif_cod's
    stored responses and items have none of the fields ``include`` asks for, so it changes nothing,
    but a value OpenAI does not know is refused as OpenAI refuses it (as on ``responses.create``)."""
    values: dict[str, str] = {}
    included = 0
    for name, value in query:
        if name in ("include[]", "include"):
            if value not in INCLUDABLE:
                refused = not_one_of(value, f"include[{included}]", INCLUDABLE)
                raise APIFailure.bad_request(refused.message, param=refused.param, code=refused.code)
            included += 1
        values.setdefault(name, value)
    return values


class _ListQuery(NamedTuple):
    after: str | None
    limit: int | None
    order: Literal["asc", "desc"] | None


_INTEGER = re.compile(r"-?[0-9]+")
"""An integer as JSON writes one: ASCII digits (``str.isdigit`` takes ``²``, which ``int`` refuses, and
``int`` takes other scripts' digits), and a minus, refused for its value (below 1), not as no integer."""


def _list_query(query: Mapping[str, str]) -> _ListQuery:
    """A list's query (``after``, ``limit``, ``order``; ``include``: :func:`_read`)."""
    limit = query.get("limit")
    if limit is not None and _INTEGER.fullmatch(limit) is None:
        message = "Invalid type for 'limit': expected an integer, but got a string instead."
        raise APIFailure.bad_request(message, param="limit", code="invalid_type")
    order = query.get("order")
    if order not in (None, "asc", "desc"):
        refused = not_one_of(order, "order", ("asc", "desc"))
        raise APIFailure.bad_request(refused.message, param=refused.param, code=refused.code)
    return _ListQuery(query.get("after"), None if limit is None else int(limit), cast(Literal["asc", "desc"], order))


def check_retrieve_query(pairs: Query) -> None:
    """``GET /responses/{id}``'s query.  ``include`` asks for fields claif_cod's responses never have
    (logprobs, encrypted reasoning, tool results) and changes nothing; a stream of a stored response
    (``stream``, ``starting_after``) is OpenAI's for a background response, which claif_cod never
    makes, so it is refused rather than answered with the response's JSON, which openai's ``Stream``
    would read as no events at all."""
    query = _read(pairs)
    if query.get("stream", "false").lower() != "false" or "starting_after" in query:
        raise APIFailure.bad_request(
            "claif_cod makes no background responses: a stored response can be retrieved, not streamed again",
            param="stream",
        )


def segments(route: str) -> list[str]:
    """A route as it was sent (percent-encoded), cut at its ``/``s, each segment then decoded: an
    id's encoded ``/`` (openai's client encodes ids) stays in the id instead of making a route."""
    return [unquote(segment) for segment in route.split("/")]


def stored_response_action(method: str, route: str, pairs: Query) -> StoredResponseAction | None:
    """The action an HTTP route (``/responses/...`` below ``/v1``, as sent) asks of a stored response, if it is one."""
    parts = segments(route)  # "", "responses", id[, "input_items" | "cancel"]
    if len(parts) < 3 or parts[1] != "responses" or not parts[2]:
        return None
    query = _read(pairs)
    params = ResponsesRetrieveParams(response_id=parts[2])
    if method == "DELETE" and len(parts) == 3:
        return ResponsesDeleteRequest(id=0, params=params)
    if method == "POST" and parts[3:] == ["cancel"]:
        return ResponsesCancelRequest(id=0, params=params)
    if method == "GET" and parts[3:] == ["input_items"]:
        listed = _list_query(query)
        query_params = ResponsesInputItemsParams(
            response_id=parts[2], after=listed.after, limit=listed.limit, order=listed.order, before=query.get("before")
        )
        return ResponsesInputItemsRequest(id=0, params=query_params)
    return None


def stored_response_reply(service: ResponsesService, action: StoredResponseAction) -> bytes:
    params = action.params
    if isinstance(action, ResponsesDeleteRequest):
        return service.delete(params.response_id)
    if isinstance(action, ResponsesCancelRequest):
        return service.cancel(params.response_id)
    query = action.params
    return service.input_items(
        query.response_id, after=query.after, limit=query.limit, order=query.order, before=query.before
    )


def conversation_action(method: str, route: str, pairs: Query, body: bytes) -> ConversationRequest | None:
    """The request an HTTP route (``/conversations...`` below ``/v1``, as sent) makes of OpenAI's
    Conversations API, if it is one of its routes."""
    parts = segments(route)  # "", "conversations"[, id[, "items"[, item id]]]
    if len(parts) < 2 or parts[1] != "conversations" or len(parts) > 5 or not all(parts[2:]):
        return None
    query = _read(pairs)
    if len(parts) == 2:
        if method != "POST":
            return None
        return ConversationsCreateRequest(id=0, params=ConversationCreateParams(body=msgspec.Raw(body)))
    conversation_id = parts[2]
    if len(parts) == 3:
        if method == "POST":
            return ConversationsUpdateRequest(
                id=0, params=ConversationBodyParams(conversation_id=conversation_id, body=msgspec.Raw(body))
            )
        one = ConversationParams(conversation_id=conversation_id)
        if method == "GET":
            return ConversationsRetrieveRequest(id=0, params=one)
        return ConversationsDeleteRequest(id=0, params=one) if method == "DELETE" else None
    if parts[3] != "items":
        return None
    if len(parts) == 4:
        if method == "POST":
            return ConversationItemsCreateRequest(
                id=0, params=ConversationBodyParams(conversation_id=conversation_id, body=msgspec.Raw(body))
            )
        if method != "GET":
            return None
        listed = _list_query(query)
        list_params = ConversationItemsListParams(
            conversation_id=conversation_id, after=listed.after, limit=listed.limit, order=listed.order
        )
        return ConversationItemsListRequest(id=0, params=list_params)
    item = ConversationItemParams(conversation_id=conversation_id, item_id=parts[4])
    if method == "GET":
        return ConversationItemsRetrieveRequest(id=0, params=item)
    return ConversationItemsDeleteRequest(id=0, params=item) if method == "DELETE" else None


async def conversation_reply(service: ConversationsService, action: ConversationRequest) -> bytes:
    """OpenAI's answer to ``action``, as JSON."""
    if isinstance(action, ConversationsCreateRequest):
        return await service.create(bytes(action.params.body))
    if isinstance(action, ConversationsRetrieveRequest):
        return service.retrieve(action.params.conversation_id)
    if isinstance(action, ConversationsUpdateRequest):
        return service.update(action.params.conversation_id, bytes(action.params.body))
    if isinstance(action, ConversationsDeleteRequest):
        return service.delete(action.params.conversation_id)
    if isinstance(action, ConversationItemsCreateRequest):
        return await service.add_items(action.params.conversation_id, bytes(action.params.body))
    if isinstance(action, ConversationItemsListRequest):
        query = action.params
        return service.list_items(query.conversation_id, after=query.after, limit=query.limit, order=query.order)
    if isinstance(action, ConversationItemsRetrieveRequest):
        return service.retrieve_item(action.params.conversation_id, action.params.item_id)
    return service.delete_item(action.params.conversation_id, action.params.item_id)
