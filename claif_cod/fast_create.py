"""``chat.completions.create`` and ``responses.create`` without openai's parameter transform, for
plain JSON arguments.

openai's ``create`` runs ``maybe_transform`` over every argument (~0.15 ms per message or input
item, so ~30 ms for a 200-item history a client re-sends each turn).  For arguments that are
already plain JSON (dicts, lists, str, numbers, bools, None: what nearly every caller passes)
that transform changes nothing (neither endpoint's parameter types rename or reformat a field),
so the body is encoded directly and handed to openai's own ``_post``: the request options,
headers, retries, ``with_raw_response``, streams, response objects and errors are all still
openai's.  Anything else (pydantic models, iterators, ``NotGiven`` inside a message, an unknown
keyword) takes openai's own ``create``.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import msgspec
from openai import NOT_GIVEN, NotGiven, Omit
from openai._base_client import make_request_options
from openai._types import RequestOptions
from openai.resources.chat.completions.completions import Completions
from openai.resources.responses.responses import Responses

_REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
_encode = msgspec.json.encode


class Endpoint(NamedTuple):
    known: frozenset[str]
    """The keywords openai's ``create`` takes."""
    required: tuple[str, ...]
    """Without these, openai's own ``create`` must report what is missing."""


def _keywords(create: Any) -> frozenset[str]:
    return frozenset(inspect.signature(create).parameters) - {"self"}


CHAT = Endpoint(_keywords(Completions.create), ("messages", "model"))
RESPONSES = Endpoint(_keywords(Responses.create), ())


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
    """What openai's ``_post`` takes: the body as JSON bytes, and openai's request options."""

    content: bytes
    options: RequestOptions
    stream: bool


def prepare(kwargs: dict[str, Any], endpoint: Endpoint) -> FastRequest | None:
    """The request for openai's ``_post``, or None when only openai's own ``create`` can build it
    (it then also raises openai's errors for bad arguments).

    A plain ``extra_body`` is merged here as openai would merge it (its keys win), so the body
    is known before openai builds the request."""
    if not endpoint.known.issuperset(kwargs):
        return None
    params = {k: v for k, v in kwargs.items() if k not in _REQUEST_OPTIONS and _given(v)}
    extra_body = kwargs.get("extra_body")
    if extra_body is not None:
        if type(extra_body) is not dict:
            return None
        params.update(extra_body)
    if not all(name in params for name in endpoint.required) or not _plain(params):
        return None
    options = make_request_options(
        extra_headers=kwargs.get("extra_headers"),
        extra_query=kwargs.get("extra_query"),
        timeout=kwargs.get("timeout", NOT_GIVEN),
        security={"bearer_auth": True},
    )
    return FastRequest(_encode(params), options, bool(params.get("stream", False)))
