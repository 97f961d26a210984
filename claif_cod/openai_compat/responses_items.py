"""A response's input items, as ``responses.input_items.list`` returns them (OpenAI's ``ResponseItemList``).

The items are the request's own ``input`` (not what ``previous_response_id`` inherits), each with
an ``id`` (the caller's, or a new one) and a ``status``; a string input is one user message. They
are kept with the response record (in the daemon: ``responses.db``, private to the user), so
they are listed as sent, images included, and go when the response is deleted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from claif_cod.engine.errors import InvalidRequest
from claif_cod.openai_compat.ranges import check_bound, check_one_of

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "compaction": "cmp",
}


class ResponseItemList(msgspec.Struct, kw_only=True):
    data: list[msgspec.Raw]
    first_id: str | None
    last_id: str | None
    has_more: bool
    object: Literal["list"] = "list"


class _Identified(msgspec.Struct):
    id: str


_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_id_decoder = msgspec.json.Decoder(_Identified)
_encoder = msgspec.json.Encoder()


def listed_items(request_input: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``request_input`` (already validated) as OpenAI lists items: each with its ``type``, an ``id``
    (the caller's, or a new one) and a ``status``, a message's text as content parts."""
    if isinstance(request_input, str):
        request_input = [{"role": "user", "content": request_input}]
    items = []
    for given in request_input:
        item = dict(given)
        kind = item.setdefault("type", "message")
        if kind == "message" and isinstance(item.get("content"), str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": part, "text": item["content"]}]
        field = "output" if kind == "function_call_output" else "content"
        if kind in ("message", "function_call_output") and isinstance(item.get(field), list):
            item[field] = [_as_listed(part) for part in item[field]]
        item.setdefault("id", f"{_ID_PREFIX.get(kind, 'item')}_{os.urandom(16).hex()}")
        item.setdefault("status", "completed")
        items.append(item)
    return items


def _as_listed(part: object) -> object:
    """A content part with what OpenAI's listing always has: an image's ``detail``, an output
    text's ``annotations`` (a field openai's ``ResponseOutputText`` requires)."""
    if isinstance(part, dict) and part.get("type") == "input_image":
        return {"detail": "auto", **part}
    if isinstance(part, dict) and part.get("type") == "output_text":
        return {"annotations": [], **part}
    return part


def page(stored: bytes, *, after: str | None, limit: int | None, order: str | None, before: str | None = None) -> bytes:
    """One page of a response's ``stored`` input items (a JSON array)."""
    items = _items_decoder.decode(stored)
    listed = [(_id_decoder.decode(item).id, item) for item in items]
    return page_of(listed, after=after, limit=limit, order=order, before=before)


def page_of(
    items: Sequence[tuple[str, bytes | msgspec.Raw]],
    *,
    after: str | None,
    limit: int | None,
    order: str | None,
    before: str | None = None,
) -> bytes:
    """One page of ``items`` (each item's id and JSON, oldest first), as OpenAI pages a list:
    ``order`` ``desc`` (default) lists the newest first, ``after`` names the item before the page,
    ``before`` the item after it (the page is then the ``limit`` items just before it: the previous
    page, and ``has_more`` says whether there are more before that)."""
    limit = DEFAULT_LIMIT if limit is None else limit
    check_bound("limit", limit, 1, MAX_LIMIT, "integer")  # OpenAI's refusals, in its words
    check_one_of(order, "order", ("asc", "desc"))
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [item_id for item_id, _ in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        start = _position(ids, after, "after") + 1
    if before is not None:
        end = max(start, _position(ids, before, "before"))
    if after is None and before is not None:  # the previous page: the items nearest ``before``
        chosen = ordered[max(start, end - limit) : end]
        has_more = end - limit > start
    else:
        chosen = ordered[start : min(end, start + limit)]
        has_more = start + limit < end
    listing = ResponseItemList(
        data=[body if isinstance(body, msgspec.Raw) else msgspec.Raw(body) for _, body in chosen],
        first_id=chosen[0][0] if chosen else None,
        last_id=chosen[-1][0] if chosen else None,
        has_more=has_more,
    )
    return _encoder.encode(listing)


def _position(ids: list[str], cursor: str, name: str) -> int:
    """Where the item ``cursor`` (the query parameter ``name``) is listed; an id the list lacks is refused."""
    if cursor not in ids:
        raise InvalidRequest(f"No item with id '{cursor}' in this list.", param=name)
    return ids.index(cursor)
