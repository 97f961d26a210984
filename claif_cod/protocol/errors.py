"""JSON-RPC error codes, the wire shape of an ``error`` member, and the exceptions behind them.

Every failure a peer can cause is a :class:`ProtocolError` that carries the JSON-RPC ``code`` to
answer with: the daemon turns any of them into an ``ErrorResponse``
(``ErrorResponse.from_exception``), and the client turns an ``ErrorResponse`` back into the same
exception class (``ProtocolError.from_error``). The framing layer and the codec raise nothing else,
whatever bytes they are given.

Exception hierarchy (``x`` marks a grouping class that is never raised itself)::

    * ProtocolError            any code; raised as-is only for codes this version doesn't know
      x FramingError           the byte stream is unusable; close the connection
        + FrameTooLarge        -32004
        + EmptyFrame           -32700
      + ParseError             -32700  body is not valid UTF-8 JSON
      + InvalidRequest         -32600  not a JSON-RPC 2.0 message of a known kind
      + MethodNotFound         -32601
      + InvalidParams          -32602
      + InternalError          -32603
        + InvalidResult        -32603  a response's result doesn't fit the method's result type
      + OpenAIStatusError      -32000  Codex/OpenAI answered with an HTTP error; data has the body
      + Overloaded             -32001  retryable; data has retry_after_s
      + HelloRequired          -32002
      + VersionMismatch        -32003
      + SessionBusy            -32005
      + UnknownSession         -32006
      + HelloTimeout           -32007
      + DuplicateId            -32008
      + RequestCancelled       -32800
"""

from __future__ import annotations

import enum
from typing import ClassVar, TypeAlias

import msgspec

__all__ = [
    "DuplicateId",
    "EmptyFrame",
    "ErrorCode",
    "ErrorData",
    "ErrorObject",
    "FrameTooLarge",
    "FramingError",
    "HelloRequired",
    "HelloTimeout",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "InvalidResult",
    "MethodNotFound",
    "OpenAIErrorBody",
    "OpenAIErrorDetail",
    "OpenAIStatusError",
    "Overloaded",
    "ParseError",
    "ProtocolError",
    "RequestCancelled",
    "RequestId",
    "SessionBusy",
    "UnknownSession",
    "VersionMismatch",
]

RequestId: TypeAlias = int | str
"""A request's ``id``; errors carry it so the reply can be correlated."""


class ErrorCode(enum.IntEnum):
    """JSON-RPC 2.0 reserved codes, then this protocol's application codes."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    OPENAI_ERROR = -32000
    OVERLOADED = -32001
    HELLO_REQUIRED = -32002
    VERSION_MISMATCH = -32003
    FRAME_TOO_LARGE = -32004
    SESSION_BUSY = -32005
    UNKNOWN_SESSION = -32006
    HELLO_TIMEOUT = -32007
    DUPLICATE_ID = -32008
    REQUEST_CANCELLED = -32800


class OpenAIErrorDetail(msgspec.Struct, kw_only=True):
    """The inner object of an OpenAI error body; nulls are kept so it matches what OpenAI sends."""

    message: str
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class OpenAIErrorBody(msgspec.Struct, kw_only=True):
    """``{"error": {...}}`` exactly as the OpenAI API returns it, so clients can re-raise it."""

    error: OpenAIErrorDetail


class ErrorData(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The ``data`` member; which fields are set depends on the code (see ``docs/protocol.md``)."""

    status_code: int | None = None
    """OPENAI_ERROR: the HTTP status OpenAI (or Codex) answered with."""
    body: OpenAIErrorBody | None = None
    """OPENAI_ERROR: the OpenAI error body, verbatim."""
    retry_after_s: float | None = None
    """OVERLOADED: how long to wait before retrying."""
    turn_acted: bool = False
    """OPENAI_ERROR: Codex ran a command, changed files or called a tool in the request's turn
    before it failed; sending the request again would do so again (an HTTP answer says
    ``x-should-retry: false``)."""


class ErrorObject(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The ``error`` member of an ``ErrorResponse``."""

    code: int
    message: str
    data: ErrorData | None = None


class ProtocolError(Exception):
    """Base of every protocol failure; knows the JSON-RPC error it should be reported as."""

    default_code: ClassVar[int] = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        request_id: RequestId | None = None,
        data: ErrorData | None = None,
        notification: bool = False,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: int = self.default_code if code is None else code
        self.request_id = request_id
        """The id of the offending request, when it could be recovered (else the reply uses null)."""
        self.data = data
        self.notification = notification
        """The offending message was a notification: JSON-RPC forbids replying to it."""

    def to_error(self) -> ErrorObject:
        """The ``error`` member that reports this exception to the peer."""
        return ErrorObject(code=int(self.code), message=self.message, data=self.data)

    @classmethod
    def from_error(cls, error: ErrorObject, request_id: RequestId | None = None) -> ProtocolError:
        """Rebuild the exception a peer reported, picking the subclass registered for its code."""
        exc_type = _BY_CODE.get(error.code, ProtocolError)
        return exc_type(error.message, request_id=request_id, data=error.data, code=error.code)


class FramingError(ProtocolError):
    """The byte stream can't be split into frames any more; the connection must be closed.

    ``frames`` holds the bodies that were complete before the bad header within the same
    ``FrameDecoder.feed`` call, so what a reader sees never depends on how bytes were chunked.
    """

    frames: tuple[bytes, ...] = ()


class FrameTooLarge(FramingError):
    default_code = ErrorCode.FRAME_TOO_LARGE


class EmptyFrame(FramingError):
    default_code = ErrorCode.PARSE_ERROR


class ParseError(ProtocolError):
    default_code = ErrorCode.PARSE_ERROR


class InvalidRequest(ProtocolError):
    default_code = ErrorCode.INVALID_REQUEST


class MethodNotFound(ProtocolError):
    default_code = ErrorCode.METHOD_NOT_FOUND


class InvalidParams(ProtocolError):
    default_code = ErrorCode.INVALID_PARAMS


class InternalError(ProtocolError):
    default_code = ErrorCode.INTERNAL_ERROR


class InvalidResult(InternalError):
    """Raised client-side when a response's ``result`` does not decode as the method's result type."""


class OpenAIStatusError(ProtocolError):
    """OpenAI or Codex answered with an HTTP error; ``data`` carries it so the client re-raises it."""

    default_code = ErrorCode.OPENAI_ERROR

    @classmethod
    def from_openai(
        cls, status_code: int, body: OpenAIErrorBody, *, request_id: RequestId | None = None
    ) -> OpenAIStatusError:
        return cls(
            body.error.message,
            request_id=request_id,
            data=ErrorData(status_code=status_code, body=body),
        )

    @property
    def status_code(self) -> int | None:
        return None if self.data is None else self.data.status_code

    @property
    def body(self) -> OpenAIErrorBody | None:
        return None if self.data is None else self.data.body


class Overloaded(ProtocolError):
    """The daemon has no room for the request right now; safe to retry after ``retry_after_s``."""

    default_code = ErrorCode.OVERLOADED

    @classmethod
    def retry_after(
        cls, seconds: float, message: str = "daemon overloaded", *, request_id: RequestId | None = None
    ) -> Overloaded:
        return cls(message, request_id=request_id, data=ErrorData(retry_after_s=seconds))

    @property
    def retry_after_s(self) -> float | None:
        return None if self.data is None else self.data.retry_after_s


class HelloRequired(ProtocolError):
    default_code = ErrorCode.HELLO_REQUIRED


class VersionMismatch(ProtocolError):
    default_code = ErrorCode.VERSION_MISMATCH

    @classmethod
    def between(
        cls,
        client_version: int,
        daemon_version: int,
        daemon_package_version: str,
        *,
        request_id: RequestId | None = None,
    ) -> VersionMismatch:
        """The standard message: both versions, and how to get a daemon that matches the client."""
        return cls(
            f"client speaks protocol version {client_version}, but the running daemon "
            f"(claif-cod {daemon_package_version}) speaks version {daemon_version}; "
            "restart the daemon with `claif-codd stop` so a matching one is started",
            request_id=request_id,
        )


class SessionBusy(ProtocolError):
    default_code = ErrorCode.SESSION_BUSY


class UnknownSession(ProtocolError):
    default_code = ErrorCode.UNKNOWN_SESSION


class HelloTimeout(ProtocolError):
    default_code = ErrorCode.HELLO_TIMEOUT


class DuplicateId(ProtocolError):
    default_code = ErrorCode.DUPLICATE_ID


class RequestCancelled(ProtocolError):
    default_code = ErrorCode.REQUEST_CANCELLED


_BY_CODE: dict[int, type[ProtocolError]] = {
    ErrorCode.PARSE_ERROR: ParseError,
    ErrorCode.INVALID_REQUEST: InvalidRequest,
    ErrorCode.METHOD_NOT_FOUND: MethodNotFound,
    ErrorCode.INVALID_PARAMS: InvalidParams,
    ErrorCode.INTERNAL_ERROR: InternalError,
    ErrorCode.OPENAI_ERROR: OpenAIStatusError,
    ErrorCode.OVERLOADED: Overloaded,
    ErrorCode.HELLO_REQUIRED: HelloRequired,
    ErrorCode.VERSION_MISMATCH: VersionMismatch,
    ErrorCode.FRAME_TOO_LARGE: FrameTooLarge,
    ErrorCode.SESSION_BUSY: SessionBusy,
    ErrorCode.UNKNOWN_SESSION: UnknownSession,
    ErrorCode.HELLO_TIMEOUT: HelloTimeout,
    ErrorCode.DUPLICATE_ID: DuplicateId,
    ErrorCode.REQUEST_CANCELLED: RequestCancelled,
}
