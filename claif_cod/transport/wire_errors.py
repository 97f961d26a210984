"""OpenAI-shaped failures across the daemon socket, both ways.

The daemon reports an :class:`APIFailure` as JSON-RPC ``OPENAI_ERROR`` carrying the HTTP
status and the OpenAI error body; the client turns it back into the same ``APIFailure``, so
``openai`` raises the same class whether the engine ran in-process or in the daemon.
Timeouts and connection failures have no HTTP status; their body ``type`` says which.
"""

from __future__ import annotations

from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.protocol import (
    DEFAULT_MAX_FRAME,
    ErrorCode,
    ErrorData,
    ErrorObject,
    FrameTooLarge,
    Message,
    OpenAIErrorBody,
    OpenAIErrorDetail,
    encode,
    encode_frame,
)

_KIND_BY_TYPE = {"timeout": "timeout", "connection_error": "connection"}


def failure_to_error(failure: APIFailure) -> ErrorObject:
    detail = failure.detail
    body = OpenAIErrorBody(
        error=OpenAIErrorDetail(message=detail.message, type=detail.type, param=detail.param, code=detail.code)
    )
    return ErrorObject(
        code=ErrorCode.OPENAI_ERROR,
        message=detail.message,
        data=ErrorData(status_code=failure.status, body=body, turn_acted=failure.turn_acted),
    )


def error_to_failure(error: ErrorObject) -> APIFailure:
    """The failure a daemon error stands for; non-OpenAI protocol errors become connection errors."""
    data = error.data
    if error.code == ErrorCode.OPENAI_ERROR and data is not None and data.body is not None:
        detail = data.body.error
        kind = _KIND_BY_TYPE.get(detail.type or "", "status")
        code = None if detail.code is None else str(detail.code)
        return APIFailure(
            kind,  # type: ignore[arg-type]
            data.status_code or 500,
            ErrorDetail(detail.message, detail.type or "server_error", code, detail.param),
            turn_acted=data.turn_acted,
        )
    if error.code == ErrorCode.OVERLOADED:
        return APIFailure("status", 503, ErrorDetail(f"claif-codd: {error.message}", "server_error", "overloaded"))
    code = VERSION_MISMATCH if error.code == ErrorCode.VERSION_MISMATCH else None
    return APIFailure("connection", 0, ErrorDetail(f"claif-codd: {error.message}", "connection_error", code))


VERSION_MISMATCH = "version_mismatch"
"""The code of a daemon's refusal of our protocol version (the daemon is of another release)."""
DAEMON_OUTDATED = "daemon_outdated"
"""The code of a request refused for a daemon older than the client (it lacks what the request needs)."""


def request_frame(message: Message) -> bytes:
    """``message`` framed for the daemon; one larger than the daemon takes is the caller's 413, as
    the daemon's HTTP endpoint answers it, before anything is sent (the connection stays usable)."""
    body = encode(message)
    try:
        return encode_frame(body)  # its cap is the daemon's decoder's
    except FrameTooLarge:
        message_text = (
            f"The request is {len(body)} bytes; claif-codd takes at most {DEFAULT_MAX_FRAME} bytes per request "
            "(run it in-process: daemon='off', or --daemon off on the command line; or send less)"
        )
        raise APIFailure(
            "status", 413, ErrorDetail(message_text, "invalid_request_error", "request_too_large")
        ) from None
