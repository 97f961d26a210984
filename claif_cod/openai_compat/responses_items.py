"""A response's input items, as ``responses.input_items.list`` returns them (OpenAI's ``ResponseItemList``).

The items are the request's own ``input`` (not what ``previous_response_id`` inherits), each with
an ``id`` (the caller's, or a new one) and a ``status``; a string input is one user message. They
are kept with the response record (in the daemon: ``responses.db``, private to the user), so
they are listed as sent, images included, and go when the response is deleted.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import msgspec

from claif_cod.engine.errors import InvalidRequest

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


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


def input_items(request_input: str | list[dict[str, Any]]) -> bytes:
    """The JSON array to store for a request whose ``input`` is ``request_input`` (already validated)."""
    if isinstance(request_input, str):
        request_input = [{"role": "user", "content": request_input}]
    items = []
    for given in request_input:
        item = dict(given)
        kind = item.setdefault("type", "message")
        if kind == "message" and isinstance(item.get("content"), str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": part, "text": item["content"]}]
        elif kind == "message" and isinstance(item.get("content"), list):  # OpenAI lists an image's detail
            item["content"] = [
                {"detail": "auto", **part} if isinstance(part, dict) and part.get("type") == "input_image" else part
                for part in item["content"]
            ]
        item.setdefault("id", f"{_ID_PREFIX.get(kind, 'item')}_{os.urandom(16).hex()}")
        item.setdefault("status", "completed")
        items.append(item)
    return _encoder.encode(items)


def page(stored: bytes, *, after: str | None, limit: int | None, order: str | None) -> bytes:
    """One page of ``stored`` items, as OpenAI pages them: ``order`` ``desc`` (default) lists the newest first."""
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}", param="limit")
    if order not in (None, "asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'", param="order")
    items = _items_decoder.decode(stored)
    ids = [_id_decoder.decode(item).id for item in items]
    if order != "asc":
        items.reverse()
        ids.reverse()
    start = 0
    if after is not None:
        if after not in ids:
            raise InvalidRequest(f"No input item with id '{after}' in this response.", param="after")
        start = ids.index(after) + 1
    chosen = items[start : start + limit]
    chosen_ids = ids[start : start + limit]
    listing = ResponseItemList(
        data=chosen,
        first_id=chosen_ids[0] if chosen_ids else None,
        last_id=chosen_ids[-1] if chosen_ids else None,
        has_more=start + limit < len(items),
    )
    return _encoder.encode(listing)
