"""Engine failures as the HTTP status and OpenAI error body that make ``openai`` raise its own class.

    status 400 → BadRequestError      401 → AuthenticationError    404 → NotFoundError
    status 429 → RateLimitError       ≥500 → InternalServerError (503: retry later)
    kind "connection" → APIConnectionError                 kind "timeout" → APITimeoutError

Connection failures and timeouts have no HTTP status in ``openai``: the transport raises
them as exceptions instead of answering with a response.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from typing import Literal, TypeVar

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.errors import (
    CodexNotFound,
    CodexProcessDied,
    CodexRpcError,
    CodexStartFailed,
    EngineError,
    InvalidRequest,
    SessionStoreFailed,
    TurnFailed,
    TurnTimedOut,
)
from claif_cod.openai_compat.responses_store import ResponseStoreFailed

Kind = Literal["status", "connection", "timeout"]
T = TypeVar("T")


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class APIFailure(Exception):
    """A request that failed, described the way the OpenAI API would answer it."""

    def __init__(self, kind: Kind, status: int, detail: ErrorDetail, *, turn_acted: bool = False) -> None:
        super().__init__(detail.message)
        self.kind = kind
        self.status = status
        self.detail = detail
        self.turn_acted = turn_acted
        """Codex ran a command, changed files or called a tool in the request's turn before it
        failed: sending the request again would do so again, so the answer says
        ``x-should-retry: false``, which openai's SDKs obey (a failure without such actions they
        may retry, as OpenAI's)."""

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers that go with the answer."""
        return {"x-should-retry": "false"} if self.turn_acted else {}

    @property
    def body(self) -> ErrorBody:
        return ErrorBody(error=self.detail)

    @classmethod
    def bad_request(cls, message: str, *, param: str | None = None, code: str | None = None) -> APIFailure:
        return cls("status", 400, ErrorDetail(message, "invalid_request_error", code, param))

    @classmethod
    def not_found(cls, message: str, *, param: str | None = None, code: str | None = None) -> APIFailure:
        return cls("status", 404, ErrorDetail(message, "invalid_request_error", code, param))

    @classmethod
    def opened_before_fork(cls) -> APIFailure:
        """What a stream opened before ``os.fork()`` fails with when read on in the child: its events
        go to the parent."""
        message = "this stream was opened before the process forked: read it in the parent"
        return cls("connection", 0, ErrorDetail(message, "connection_error"))


def _error_type(status: int, code: str | None) -> str:
    """The ``type`` OpenAI's API gives an error: a client's fault (a wrong key, an unknown model) is
    ``invalid_request_error``, a rate limit ``requests``, a spent quota ``insufficient_quota``."""
    if code == "insufficient_quota":
        return code
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def _status(status: int, message: str, code: str | None = None) -> APIFailure:
    return APIFailure("status", status, ErrorDetail(message, _error_type(status, code), code))


_MISSING_KEY = re.compile(r"Missing environment variable", re.IGNORECASE)
_IDLE_TIMEOUT = re.compile(r"idle timeout", re.IGNORECASE)
_STREAM_CLOSED = re.compile(r"stream closed before response\.completed", re.IGNORECASE)
"""Codex's words for a model connection that ended before the response did (dropped, or cut after
garbage): its final error says only ``other`` (0.163; ``responseStreamDisconnected`` is on its
retries' notices), and openai raises ``APIConnectionError`` for a connection its server drops. A
``response.failed`` the model sent is worded by the model, and stays a server error."""


def translate(error: BaseException) -> APIFailure:
    """The OpenAI-shaped failure for anything the engine raised."""
    if isinstance(error, APIFailure):
        return error
    if isinstance(error, InvalidRequest):
        return APIFailure.bad_request(error.message, param=error.param, code=error.code)
    if isinstance(error, TurnTimedOut):
        return APIFailure("timeout", 408, ErrorDetail(str(error), "timeout"), turn_acted=error.acted)
    if isinstance(error, TurnFailed):
        failure = _turn_failure(error.message, error.info)
        failure.turn_acted = error.acted
        return failure
    if isinstance(error, CodexRpcError):
        if error.code == -32001:  # Codex says: server overloaded, retry later
            return _status(503, error.message, "server_overloaded")
        return _status(400, f"Codex rejected {error.method}: {error.message}")
    if isinstance(error, SessionStoreFailed):
        return _status(503, str(error), "session_registry_unwritable")
    if isinstance(error, ResponseStoreFailed):
        return _status(503, str(error), "response_registry_unwritable")
    if isinstance(error, (CodexNotFound, CodexStartFailed, CodexProcessDied)):
        return APIFailure("connection", 0, ErrorDetail(str(error), "connection_error"))
    if isinstance(error, EngineError):
        return _status(500, str(error))
    return _status(500, f"internal error in claif_cod: {type(error).__name__}: {error}")


def _http_status(info: object) -> tuple[str | None, int | None]:
    """Codex's ``codexErrorInfo``: either a bare name or ``{name: {httpStatusCode}}``."""
    if isinstance(info, str):
        return info, None
    if isinstance(info, dict) and len(info) == 1:
        name, value = next(iter(info.items()))
        status = value.get("httpStatusCode") if isinstance(value, dict) else None
        return str(name), status if isinstance(status, int) else None
    return None, None


_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "requests": 429,
    "tokens": 429,
    "insufficient_quota": 429,
    "server_error": 500,
}
_upstream_body = msgspec.json.Decoder(ErrorBody)


def _upstream_error(message: str) -> APIFailure | None:
    """Codex passes a 400 from the model provider on verbatim: keep its message, code and param."""
    if not message.startswith("{"):
        return None
    try:
        detail = _upstream_body.decode(message).error
    except msgspec.DecodeError:
        return None
    if detail.code == "context_length_exceeded":
        return APIFailure("status", 400, detail)
    status = 429 if detail.code in ("insufficient_quota", "rate_limit_exceeded") else _STATUS_BY_TYPE.get(detail.type)
    return APIFailure("status", status or 400, detail)


_CONNECTION_FAILURES = frozenset(
    {"responseStreamDisconnected", "responseStreamConnectionFailed", "httpConnectionFailed"}
)
"""Failures to reach the model that carry no HTTP status: openai's ``APIConnectionError`` (Codex
says ``httpConnectionFailed`` with no status when a connection is refused or its host unknown
once its retries are spent; see engine/child_process.py, ``SPAWN_OPTIONS``)."""

_POLICY_REFUSALS = {
    "cyberPolicy": ("cyber_policy", "flagged for possible cybersecurity risk"),
    "bioPolicy": ("bio_policy", "flagged for possible biological risk"),
    "misalignmentPolicyViolation": ("misalignment_policy_violation", "blocked by a misalignment policy"),
    "inferenceHookDenied": ("inference_hook_denied", "denied by the workspace's inference hook"),
}
"""Refusals by policy (Codex 0.171+): the request was understood and refused, so a 400 that says so."""


def _turn_failure(message: str, info: object) -> APIFailure:
    upstream = _upstream_error(message)
    if upstream is not None:
        return upstream
    name, http_status = _http_status(info)
    refusal = _POLICY_REFUSALS.get(name or "")
    if refusal is not None:
        code, why = refusal
        return _status(400, f"The request was refused by policy ({why}): {message}", code)
    if name == "modelNotFound":
        return _status(404, message, "model_not_found")
    if name == "policyCapacityUnavailable":
        return _status(503, message, "policy_capacity_unavailable")
    if name == "contextWindowExceeded":
        return _status(400, message, "context_length_exceeded")
    if name == "usageLimitExceeded":
        return _status(429, message, "insufficient_quota")
    if name == "rateLimitExceeded":
        return _status(429, message, "rate_limit_exceeded")
    if name == "unauthorized" or _MISSING_KEY.search(message):
        return _status(401, message, "invalid_api_key")
    if name in ("internalServerError", "serverOverloaded"):
        return _status(500 if name == "internalServerError" else 503, message)
    if name == "badRequest":
        return _status(400, message)
    if http_status is None and (name in _CONNECTION_FAILURES or _STREAM_CLOSED.search(message)):
        return APIFailure("connection", 0, ErrorDetail(message, "connection_error"))
    if _IDLE_TIMEOUT.search(message):
        return APIFailure("timeout", 408, ErrorDetail(message, "timeout"))
    if http_status is not None:
        if http_status == 401:
            return _status(401, message, "invalid_api_key")
        if http_status == 429:
            return _status(429, message, "rate_limit_exceeded")
        if http_status == 400 and "context" in message.lower() and "length" in message.lower():
            return _status(400, message, "context_length_exceeded")
        return _status(http_status if 400 <= http_status < 600 else 500, message)
    return _status(500, message)


def translate_chat(error: BaseException) -> APIFailure:
    """As :func:`translate`, a full context window worded as chat completions word it: Codex passes on
    the Responses API's words, and libraries (litellm's context window fallbacks) read chat's."""
    failure = translate(error)
    detail = failure.detail
    if detail.code == "context_length_exceeded" and not detail.message.startswith(_CHAT_CONTEXT):
        detail.message = f"{_CHAT_CONTEXT} exceeded by the messages: {detail.message}"
    return failure


_CHAT_CONTEXT = "This model's maximum context length is"


def response_error(message: str, info: object) -> tuple[str, str]:
    """A turn's failure as a failed response's ``error``: its ``code`` (of the few OpenAI gives there:
    a rate limit, else a server error) and the model provider's own message."""
    failure = _turn_failure(message, info)
    return "rate_limit_exceeded" if failure.status == 429 else "server_error", failure.detail.message


def translated_stream(
    first: T,
    rest: AsyncGenerator[T, None],
    on_start: Callable[[], None] | None = None,
    translating: Callable[[BaseException], APIFailure] = translate,
) -> ChainedStream[T]:
    """A stream whose first item was awaited before the response began (so that a failure then
    is still an HTTP status), as its consumer reads it: later failures become :class:`APIFailure`
    (by ``translating``). ``on_start`` runs when the consumer asks for the first item."""
    return ChainedStream(_translated(first, rest, on_start, translating), rest.aclose)


async def _translated(
    first: T,
    rest: AsyncGenerator[T, None],
    on_start: Callable[[], None] | None,
    translating: Callable[[BaseException], APIFailure],
) -> AsyncGenerator[T, None]:
    try:
        if on_start is not None:
            on_start()
        yield first
        async for item in rest:
            yield item
    except Exception as exc:
        raise translating(exc) from exc
    finally:
        await rest.aclose()
