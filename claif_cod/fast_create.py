"""``chat.completions.create`` without openai's parameter transform, for plain JSON arguments.

openai's ``create`` runs ``maybe_transform`` over every argument (~0.15 ms per message, so
~30 ms for a 200-message history a chat client re-sends each turn).  For arguments that are
already plain JSON (dicts, lists, str, numbers, bools, None: what nearly every caller passes)
that transform changes nothing, so the body is encoded directly and handed to openai's own
``_post``: the request options, headers, retries, ``with_raw_response``, streams, response
objects and errors are all still openai's.  Anything else (pydantic models, iterators,
``NotGiven`` inside a message, an unknown keyword) takes openai's own ``create``.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import msgspec
from openai import NOT_GIVEN, NotGiven, Omit
from openai._base_client import make_request_options
from openai._types import RequestOptions
from openai.resources.chat.completions.completions import Completions

_REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
_KNOWN = frozenset(inspect.signature(Completions.create).parameters) - {"self"}
_encode = msgspec.json.encode


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: object) -> bool:
    """Exactly JSON's types (no subclasses, no tuples): what openai's transform leaves unchanged.

    Scalars are checked inline rather than by recursion: a re-sent history has thousands of them."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or (type(item) not in _SCALARS and not _plain(item)):
                return False
        return True
    if kind is list:
        return all(type(item) in _SCALARS or _plain(item) for item in value)  # type: ignore[attr-defined]
    return False


def _given(value: object) -> bool:
    return not isinstance(value, (NotGiven, Omit))


class FastRequest(NamedTuple):
    """What openai's ``_post`` takes: the body as JSON bytes (``content``) or, when openai must merge
    ``extra_body`` into it, as a mapping (``body``)."""

    body: dict[str, Any] | None
    content: bytes | None
    options: RequestOptions
    stream: bool


def prepare(kwargs: dict[str, Any]) -> FastRequest | None:
    """The request for openai's ``_post``, or None when only openai's own ``create`` can build it
    (it then also raises openai's errors for bad arguments)."""
    if not _KNOWN.issuperset(kwargs):
        return None
    params = {k: v for k, v in kwargs.items() if k not in _REQUEST_OPTIONS and _given(v)}
    if "messages" not in params or "model" not in params or not _plain(params):
        return None
    extra_body = kwargs.get("extra_body")
    options = make_request_options(
        extra_headers=kwargs.get("extra_headers"),
        extra_query=kwargs.get("extra_query"),
        extra_body=extra_body,
        timeout=kwargs.get("timeout", NOT_GIVEN),
        security={"bearer_auth": True},
    )
    stream = bool(params.get("stream", False))
    if extra_body is not None:
        return FastRequest(params, None, options, stream)
    return FastRequest(None, _encode(params), options, stream)
