"""``chat.completions.create`` and ``responses.create`` without openai's parameter transform, for
plain JSON arguments, and without its HTTP round trip when it would only build its object.

openai's ``create`` runs ``maybe_transform`` over every argument (~0.15 ms per message or input
item, so ~30 ms for a 200-item history a client re-sends each turn).  For arguments that are
already JSON (dicts, lists, strings, numbers, bools, None, which a JSON round trip gives back
unchanged: what nearly every caller passes, see :mod:`claif_cod.json_args`) that transform changes
nothing (neither endpoint's parameter types rename or reformat a field), so the body is encoded
directly and dispatched to the engine at once (see :mod:`claif_cod.transport.early`).  Anything
else (pydantic models, iterators, tuples, ``NotGiven`` inside a message, an unknown keyword) takes
openai's own ``create``.

Then, when openai would do nothing with the response but build its object or ``Stream`` from it
(no raw response asked for), ``create()`` dispatches and waits in one round trip to the engine
loop, takes the dispatch's response itself and builds them as openai does, from openai's classes
(see :mod:`claif_cod.openai_objects`): openai's request and response pipeline (~0.4 ms hot, three
times that right after a turn) is skipped, and with it the CPU it took from Codex while the turn
ran.  A request that succeeds then goes without what only that pipeline does: the headers it
builds (the transport ignores them), httpx's ``HTTP Request:`` log line and the event hooks of the
client's private httpx client.  A dispatch that failed is handed to openai's ``_post``, so its
exceptions and retries are openai's own, and so is every raw response.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

import httpx2
from openai import NOT_GIVEN, APIConnectionError, NotGiven, Omit
from openai._base_client import make_request_options
from openai._constants import OVERRIDE_CAST_TO_HEADER, RAW_RESPONSE_HEADER
from openai._models import FinalRequestOptions
from openai._streaming import extract_stream_chunk_type
from openai._types import RequestOptions
from openai.resources.chat.completions.completions import Completions

from claif_cod.json_args import encoded
from claif_cod.openai_objects import from_json
from claif_cod.transport.early import OpenAIStream, answered, answered_async, read_timeout, started, started_async
from claif_cod.transport.loop_thread import wait_out_the_exit
from claif_cod.transport.other_loops import on_asyncio

_REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


class Endpoint(NamedTuple):
    known: frozenset[str]
    """The keywords openai's ``create`` takes."""
    required: tuple[str, ...]
    """Without these, openai's own ``create`` must report what is missing."""


def keywords(create: Any) -> frozenset[str]:
    return frozenset(inspect.signature(create).parameters) - {"self"}


CHAT = Endpoint(keywords(Completions.create), ("messages", "model"))


def defaulted(client: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the client's ``model=`` when the call names none (openai's ``parse`` and
    ``stream`` helpers require one)."""
    default = client._claif_default_model
    return kwargs if "model" in kwargs or default is None else {**kwargs, "model": default}


def _given(value: object) -> bool:
    return not isinstance(value, (NotGiven, Omit))


class NotPlain(Exception):
    """``create()``'s arguments encode, but not as plain JSON (a JSON round trip changes them):
    openai's own ``create`` takes them."""


class FastRequest(NamedTuple):
    """What openai's ``_post`` takes: the body as JSON bytes, and openai's request options."""

    content: bytes
    options: RequestOptions
    stream: bool
    plain: Callable[[], bool]
    """Whether the arguments are plain JSON, as a body made from them must be (see :func:`create`
    for when it is asked)."""


def prepare(kwargs: dict[str, Any], endpoint: Endpoint) -> FastRequest | None:
    """The request for openai's ``_post``, or None when only openai's own ``create`` can build it
    (it then also raises openai's errors for bad arguments).  Arguments that encode but are not
    plain JSON are found later, by ``FastRequest.plain`` (see :func:`create`).

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
    if not all(name in params for name in endpoint.required):
        return None
    body = encoded(params)
    if body is None:
        return None
    if kwargs.keys().isdisjoint(_PER_CALL):
        options: RequestOptions = {"security": {"bearer_auth": True}}  # what openai makes of no options
    else:
        options = make_request_options(
            extra_headers=kwargs.get("extra_headers"),
            extra_query=kwargs.get("extra_query"),
            timeout=kwargs.get("timeout", NOT_GIVEN),
            security={"bearer_auth": True},
        )
    return FastRequest(body.content, options, bool(params.get("stream", False)), body.plain)


_PER_CALL = frozenset({"extra_headers", "extra_query", "timeout"})


_RAW_HEADERS = frozenset({RAW_RESPONSE_HEADER.lower(), OVERRIDE_CAST_TO_HEADER.lower()})
"""What ``with_raw_response`` and ``with_streaming_response`` add to ask openai for its response wrapper."""


def _only_built(client: Any, fast: FastRequest) -> bool:
    """Whether openai's pipeline would only build its object or ``Stream`` from the response: no raw
    response asked for.  (A Codex client never turns on openai's strict response validation.)"""
    headers = {**client._custom_headers, **fast.options.get("headers", {})}
    return not any(name.lower() in _RAW_HEADERS for name in headers)


def _timeout(client: Any, fast: FastRequest) -> float | None:
    """The read timeout httpx would put on the request."""
    return read_timeout(fast.options.get("timeout", client.timeout))


def _url(client: Any, path: str) -> httpx2.URL:
    """openai's URL for ``path``, made once for the client's base URL: parsing it costs ~0.02 ms,
    and hashing an httpx ``URL`` (to look one up) makes its string (~0.04 ms right after a turn)."""
    base = client.base_url
    made: tuple[httpx2.URL, httpx2.URL] | None = client._claif_urls.get(path)
    if made is None or made[0] is not base:
        made = client._claif_urls[path] = (base, client._prepare_url(path))
    return made[1]


_plain_options: dict[str, FinalRequestOptions] = {}
"""openai's options for a request to each path with no options of its own (per-call headers, query,
timeout), made once: ``construct`` deep-copies every unset field's default (~22 µs hot, ~0.15 ms
right after a turn, while Codex works on it); a request gets a copy with its body (~2 µs)."""


def _final_options(path: str, fast: FastRequest) -> FinalRequestOptions:
    if not fast.options.keys() <= {"security"}:  # what prepare() always sets
        return FinalRequestOptions.construct(method="post", url=path, content=fast.content, **fast.options)
    template = _plain_options.get(path)
    if template is None:
        template = _plain_options[path] = FinalRequestOptions.construct(method="post", url=path, **fast.options)
    return template.model_copy(update={"content": fast.content})


class StreamClass(NamedTuple):
    """A ``Stream`` class ``create()`` returns, and the type of its chunks (which openai looks up in
    the class's type arguments on every call)."""

    cls: Any
    chunk: Any


def stream_class(cls: Any) -> StreamClass:
    return StreamClass(cls, extract_stream_chunk_type(cls))


class _StreamAnswer:
    """A stream's request (its response names it, as do its errors) and openai's ``Stream`` of its
    response: made on the engine loop while Codex works on the turn (see
    ``transport.stream_objects``)."""

    def __init__(self, client: Any, path: str, fast: FastRequest, stream: StreamClass) -> None:
        self._client, self._path, self._fast, self._stream = client, path, fast, stream
        self._options: FinalRequestOptions | None = None

    def request(self) -> httpx2.Request:
        self._options = _final_options(self._path, self._fast)
        return httpx2.Request("POST", _url(self._client, self._path))

    def __call__(self, response: httpx2.Response) -> Any:
        """openai's ``Stream`` of ``response``, as its pipeline builds it."""
        stream = self._stream
        return stream.cls(cast_to=stream.chunk, response=response, client=self._client, options=self._options)


def _posted(resource: Any, path: str, fast: FastRequest, cast_to: Any, stream: StreamClass) -> Any:
    """openai's own ``_post`` of the request."""
    return resource._post(
        path, content=fast.content, options=fast.options, cast_to=cast_to, stream=fast.stream, stream_cls=stream.cls
    )


def _closed_while_sent(client: Any, path: str, was_closed: bool) -> None:
    """A request sent, then cut short by its client's ``close()``, is openai's connection error (as
    its own request's connection closed under it is), not the refusal of a request to a closed
    client, which openai's pipeline would raise for it now."""
    if client.is_closed() and not was_closed:
        request = httpx2.Request("POST", client.base_url.join(path.lstrip("/")))
        raise APIConnectionError(
            message="Connection error: the client was closed while the request ran.", request=request
        )


@contextlib.contextmanager
def _closing_told(client: Any, path: str, was_closed: bool) -> Iterator[None]:
    """A request whose client's ``close()`` ended the engine loop under it, before it was answered
    (as Codex starts, for a client's first request), is :func:`_closed_while_sent`'s connection error
    too: not the "Event loop is closed" its task's cancellation with the loop reads as."""
    try:
        yield
    except RuntimeError:
        _closed_while_sent(client, path, was_closed)
        raise


def _verify(client: Any, fast: FastRequest) -> None:
    if not fast.plain():
        client._claif_not_plain = True
        raise NotPlain


def create(resource: Any, path: str, fast: FastRequest, cast_to: Any, stream_cls: StreamClass) -> Any:
    """A sync ``create()`` of ``fast``, answered as described above; with a raw response asked
    for, dispatched at once and sent through openai's pipeline.  Raises :class:`NotPlain`, with
    nothing sent or a turn it started undone, for arguments that are not plain JSON.  Answered by
    the engine, they are checked while it starts the turn (the check is most of ``prepare()``'s
    time: ~0.1 ms right after a turn at 10 messages); once a client's were not, its later ones are
    checked first, so that a caller who passes such arguments starts no turn it undoes again.  The
    turn undone is interrupted as soon as Codex names it, the check's time and a hop after
    ``turn/start`` (in the tests, before Codex asked the model); a reply complete before the check
    ends (a replayed tool-call answer) is not taken back, and openai's ``create`` asks again."""
    client = resource._client
    timeout = _timeout(client, fast)
    if not _only_built(client, fast):
        _verify(client, fast)
        with started(client._core, path, fast.content, timeout):
            return _posted(resource, path, fast, cast_to, stream_cls)
    check: Callable[[], None] | None = functools.partial(_verify, client, fast)
    if client._claif_not_plain:
        _verify(client, fast)
        check = None
    stream = _StreamAnswer(client, path, fast, stream_cls) if fast.stream else None
    was_closed = client.is_closed()
    with (
        _closing_told(client, path, was_closed),
        answered(client._core, path, fast.content, timeout, stream, check) as reply,
    ):
        if reply is not None:
            return _built(reply, cast_to)
        _closed_while_sent(client, path, was_closed)
        wait_out_the_exit()  # (see create_async)
        _verify(client, fast)  # (done already, unless the client was closed before the dispatch began)
        return _posted(resource, path, fast, cast_to, stream_cls)


async def create_async(resource: Any, path: str, fast: FastRequest, cast_to: Any, stream_cls: StreamClass) -> Any:
    """The async ``create()``: its arguments are checked before anything is sent."""
    client = resource._client
    _verify(client, fast)
    if not on_asyncio():  # trio: no dispatch ahead of openai's pipeline (it is asyncio's), the body still ours
        return await _posted(resource, path, fast, cast_to, stream_cls)
    timeout = _timeout(client, fast)
    if not _only_built(client, fast):
        async with started_async(client._core, path, fast.content, timeout):
            return await _posted(resource, path, fast, cast_to, stream_cls)
    stream = _StreamAnswer(client, path, fast, stream_cls) if fast.stream else None
    was_closed = client.is_closed()
    with _closing_told(client, path, was_closed):
        async with answered_async(client._core, path, fast.content, timeout, stream) as reply:
            if reply is not None:
                return _built(reply, cast_to)
            _closed_while_sent(client, path, was_closed)
            # Failed as the interpreter's exit ended the engine, in a daemon thread: openai's pipeline
            # would fail too, printing "Exception in thread" and its traceback (its first request's
            # worker thread can no longer start, or the engine loop refuses it).
            wait_out_the_exit()
            return await _posted(resource, path, fast, cast_to, stream_cls)


def fast_or_openai(
    openai_create: Callable[..., Any],
    resource: Any,
    kwargs: dict[str, Any],
    endpoint: Endpoint,
    path: str,
    cast_to: Any,
    stream_cls: StreamClass,
) -> Any:
    """What a resource's sync ``create(**kwargs)`` returns: answered by :func:`create` when
    :func:`prepare` takes the arguments and they are plain JSON, else by openai's own
    ``openai_create``."""
    fast = prepare(kwargs, endpoint)
    if fast is not None:
        try:
            return create(resource, path, fast, cast_to, stream_cls)
        except NotPlain:
            pass
    return openai_create(**kwargs)


async def fast_or_openai_async(
    openai_create: Callable[..., Awaitable[Any]],
    resource: Any,
    kwargs: dict[str, Any],
    endpoint: Endpoint,
    path: str,
    cast_to: Any,
    stream_cls: StreamClass,
) -> Any:
    """:func:`fast_or_openai` for an async resource."""
    fast = prepare(kwargs, endpoint)
    if fast is not None:
        try:
            return await create_async(resource, path, fast, cast_to, stream_cls)
        except NotPlain:
            pass
    return await openai_create(**kwargs)


def _built(reply: bytes | OpenAIStream, cast_to: Any) -> Any:
    """What openai's pipeline returns for a JSON body; a stream's is built already."""
    return from_json(cast_to, reply) if isinstance(reply, bytes) else reply
