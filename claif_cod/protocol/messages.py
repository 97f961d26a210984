"""Every message of the claif-codd protocol as a ``msgspec.Struct``: JSON-RPC 2.0 envelopes whose
``method`` is the tag of a tagged union, so each method is its own type with typed ``params``.

Compatibility rules, enforced by the struct configuration rather than by hand:

* unknown fields are ignored, so a newer peer may add fields freely;
* optional fields have defaults and are omitted when equal to them, so an older peer's message
  still decodes and frames stay small;
* names on the wire are the snake_case field names;
* OpenAI request/response bodies are passed through untouched as ``msgspec.Raw``.

``METHODS`` maps each method name to its message, params and result types; the codec validates
against it and the daemon can dispatch on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

import msgspec

from .errors import ErrorObject, ProtocolError, RequestId

__all__ = [
    "HELLO_TIMEOUT_S",
    "METHODS",
    "PROTOCOL_VERSION",
    "AgentMessageItem",
    "ApprovalRequestedNotification",
    "ApprovalRequestedParams",
    "ApprovalRespondParams",
    "ApprovalRespondRequest",
    "CancelNotification",
    "CancelParams",
    "ChatCompletionsChunkNotification",
    "ChatCompletionsChunkParams",
    "ChatCompletionsCreateParams",
    "ChatCompletionsCreateRequest",
    "ClosedResult",
    "CodexItem",
    "CodexOptions",
    "CommandExecutionItem",
    "DaemonShutdownParams",
    "DaemonShutdownRequest",
    "DaemonStatus",
    "DaemonStatusParams",
    "DaemonStatusRequest",
    "ErrorResponse",
    "FileChange",
    "FileChangeItem",
    "HelloParams",
    "HelloRequest",
    "HelloResult",
    "InterruptedResult",
    "ItemCompleted",
    "ItemStarted",
    "Message",
    "MethodSpec",
    "ModelList",
    "ModelsListParams",
    "ModelsListRequest",
    "Notification",
    "OkResult",
    "OtherItem",
    "ProcessInfo",
    "ReasoningItem",
    "Request",
    "Response",
    "ResponsesCancelRequest",
    "ResponsesCreateParams",
    "ResponsesCreateRequest",
    "ResponsesDeleteRequest",
    "ResponsesEventNotification",
    "ResponsesEventParams",
    "ResponsesInputItemsParams",
    "ResponsesInputItemsRequest",
    "ResponsesRetrieveParams",
    "ResponsesRetrieveRequest",
    "SessionCloseParams",
    "SessionCloseRequest",
    "SessionEvent",
    "SessionEventNotification",
    "SessionEventParams",
    "SessionInfo",
    "SessionSendParams",
    "SessionSendRequest",
    "SessionTurnResult",
    "SessionsListParams",
    "SessionsListRequest",
    "SessionsListResult",
    "StreamDone",
    "TextDelta",
    "TextReset",
    "TurnInterruptParams",
    "TurnInterruptRequest",
    "TurnStarted",
    "Usage",
    "UsageEvent",
]

PROTOCOL_VERSION: Final = 1
"""Bumped on any change an older peer can't decode; ``hello`` refuses a mismatch."""

HELLO_TIMEOUT_S: Final = 5.0
"""A connection that hasn't sent ``hello`` this long after connecting is closed with HELLO_TIMEOUT."""

ResultT = TypeVar("ResultT")


class _Payload(msgspec.Struct, omit_defaults=True):
    """Base of params, results and their parts: fields equal to their default stay off the wire."""


# --- shared parts ----------------------------------------------------------------------------------


# Frozen (hence not a _Payload) so one instance can be the default of several params structs.
class CodexOptions(msgspec.Struct, omit_defaults=True, frozen=True):
    """How the daemon should run Codex for one call; an unset field means the daemon's default.

    ``api_key`` is masked in ``repr`` so options can be logged.
    """

    working_dir: str | None = None
    model: str | None = None
    sandbox_mode: str | None = None
    approval_policy: str | None = None
    codex_path: str | None = None
    codex_home: str | None = None
    api_key: str | None = None
    session_id: str | None = None
    strict: bool = False
    timeout_s: float | None = None

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            (name, "***" if name == "api_key" and value is not None else value)
            for name, value in msgspec.structs.asdict(self).items()
        ]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"CodexOptions({fields})"


_NO_OPTIONS: Final = CodexOptions()


class Usage(_Payload):
    """Token counts in OpenAI's vocabulary, so they map straight onto ``CompletionUsage``."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class FileChange(_Payload):
    path: str
    kind: str
    """Codex's change kind, e.g. ``add``, ``delete``, ``update``."""


# --- Codex items: what a turn produced, tagged by "type" -------------------------------------------


class _CodexItemBase(_Payload, tag_field="type"):
    id: str


class AgentMessageItem(_CodexItemBase, tag="agent_message"):
    text: str


class CommandExecutionItem(_CodexItemBase, tag="command_execution"):
    command: str
    cwd: str
    status: str
    exit_code: int | None = None
    output: str | None = None


class FileChangeItem(_CodexItemBase, tag="file_change"):
    status: str
    changes: list[FileChange] = []


class ReasoningItem(_CodexItemBase, tag="reasoning"):
    summary: str


class OtherItem(_CodexItemBase, tag="other"):
    """Any Codex item type this protocol version doesn't model; ``item_type`` is Codex's name for it."""

    item_type: str


CodexItem: TypeAlias = AgentMessageItem | CommandExecutionItem | FileChangeItem | ReasoningItem | OtherItem


# --- session events: the live view of a turn, tagged by "type" -------------------------------------


class _SessionEventBase(_Payload, tag_field="type"):
    pass


class TextDelta(_SessionEventBase, tag="text_delta"):
    item_id: str
    delta: str


class TextReset(_SessionEventBase, tag="text_reset"):
    """Codex retried: drop the partial text received so far for ``item_id``."""

    item_id: str


class ItemStarted(_SessionEventBase, tag="item_started"):
    item: CodexItem


class ItemCompleted(_SessionEventBase, tag="item_completed"):
    item: CodexItem


class UsageEvent(_SessionEventBase, tag="usage"):
    usage: Usage


class TurnStarted(_SessionEventBase, tag="turn_started"):
    turn_id: str


SessionEvent: TypeAlias = TextDelta | TextReset | ItemStarted | ItemCompleted | UsageEvent | TurnStarted


# --- params and results ----------------------------------------------------------------------------


class HelloParams(_Payload):
    protocol_version: int
    package_version: str
    client_name: str
    capabilities: list[str] = []


class HelloResult(_Payload):
    protocol_version: int
    package_version: str
    daemon_pid: int
    capabilities: list[str]
    max_frame_size: int


class ChatCompletionsCreateParams(_Payload):
    body: msgspec.Raw
    """An OpenAI ``chat.completions`` request object, passed through to the engine untouched."""
    options: CodexOptions = _NO_OPTIONS


class ChatCompletionsChunkParams(_Payload):
    request_id: RequestId
    chunk: msgspec.Raw
    """An OpenAI ``chat.completion.chunk`` object."""


class StreamDone(_Payload, omit_defaults=False, kw_only=True):
    """Result of a streaming ``chat.completions.create`` or ``responses.create``, sent after its last
    chunk or event (``chunks`` counts them)."""

    done: Literal[True] = True
    chunks: int
    interrupted: bool = False
    """A turn of the request was interrupted (``turn.interrupt``); the chunks hold what it produced."""


class ResponsesCreateParams(_Payload):
    body: msgspec.Raw
    """An OpenAI ``responses.create`` request object, passed through to the engine untouched."""
    options: CodexOptions = _NO_OPTIONS


class ResponsesEventParams(_Payload):
    request_id: RequestId
    event: msgspec.Raw
    """An OpenAI ``ResponseStreamEvent`` object (``type`` names it, ``sequence_number`` orders it)."""


class ResponsesRetrieveParams(_Payload):
    """Also the params of ``responses.delete`` and ``responses.cancel``."""

    response_id: str


class ResponsesInputItemsParams(_Payload):
    """``responses.input_items.list``: OpenAI's query parameters of ``GET /v1/responses/{id}/input_items``."""

    response_id: str
    after: str | None = None
    limit: int | None = None
    order: Literal["asc", "desc"] | None = None


class ModelsListParams(_Payload):
    options: CodexOptions = _NO_OPTIONS


class ModelList(_Payload, omit_defaults=False):
    """The OpenAI ``GET /models`` page, ``object`` included."""

    object: Literal["list"] = "list"
    data: list[msgspec.Raw] = []


class SessionSendParams(_Payload):
    session_id: str
    text: str
    options: CodexOptions = _NO_OPTIONS
    system: str | None = None


class SessionEventParams(_Payload):
    request_id: RequestId
    session_id: str
    event: SessionEvent


class SessionTurnResult(_Payload):
    session_id: str
    thread_id: str
    turn_id: str
    text: str
    status: Literal["completed", "interrupted", "failed"]
    usage: Usage | None = None


class SessionsListParams(_Payload):
    pass


class SessionInfo(_Payload):
    session_id: str
    thread_id: str
    working_dir: str
    turns: int
    busy: bool
    last_used: float
    """Unix time of the session's last turn."""
    model: str | None = None


class SessionsListResult(_Payload):
    sessions: list[SessionInfo]


class SessionCloseParams(_Payload):
    session_id: str


class ClosedResult(_Payload):
    closed: bool


class TurnInterruptParams(_Payload):
    """Interrupt the turn started by ``request_id``, or the running turn of ``session_id``."""

    request_id: RequestId | None = None
    session_id: str | None = None


class InterruptedResult(_Payload):
    interrupted: bool


class ApprovalRequestedParams(_Payload):
    approval_id: str
    request_id: RequestId
    """The request whose turn is waiting for the decision."""
    kind: Literal["command", "file_change", "permissions", "other"]
    thread_id: str
    turn_id: str
    deadline_s: float
    """Seconds the daemon waits for ``approval.respond`` before declining on the client's behalf."""
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None
    changes: list[FileChange] = []
    available_decisions: list[str] = []
    item_id: str | None = None
    """Codex's id of the command or file change waiting for approval (absent from daemons before 0.3.0)."""


class ApprovalRespondParams(_Payload):
    approval_id: str
    decision: Literal["accept", "acceptForSession", "decline", "cancel"]


class OkResult(_Payload):
    ok: bool


class DaemonStatusParams(_Payload):
    pass


class ProcessInfo(_Payload):
    """One Codex process the daemon keeps running."""

    pid: int
    working_dir: str
    codex_path: str
    codex_version: str
    threads: int
    turns_in_flight: int
    rss_bytes: int | None = None


class DaemonStatus(_Payload):
    pid: int
    package_version: str
    protocol_version: int
    uptime_s: float
    socket: str
    processes: list[ProcessInfo]
    sessions: int
    connections: int
    turns_in_flight: int
    http: str | None = None
    """The URL of the OpenAI-compatible HTTP endpoint, when ``serve --http`` runs one."""


class DaemonShutdownParams(_Payload):
    pass


class CancelParams(_Payload):
    id: RequestId
    """The ``id`` of the request to cancel."""


# --- envelopes -------------------------------------------------------------------------------------
# Not omit_defaults: "jsonrpc" must always be on the wire. Its default only spares constructors; the
# codec rejects a message that lacks it.


class _RequestBase(msgspec.Struct, tag_field="method", kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId


class _NotificationBase(msgspec.Struct, tag_field="method", kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"


class HelloRequest(_RequestBase, tag="hello", kw_only=True):
    """Must be the first message on a connection; the daemon refuses a different protocol version."""

    params: HelloParams


class ChatCompletionsCreateRequest(_RequestBase, tag="chat.completions.create", kw_only=True):
    params: ChatCompletionsCreateParams


class ResponsesCreateRequest(_RequestBase, tag="responses.create", kw_only=True):
    params: ResponsesCreateParams


class ResponsesRetrieveRequest(_RequestBase, tag="responses.retrieve", kw_only=True):
    params: ResponsesRetrieveParams


class ResponsesDeleteRequest(_RequestBase, tag="responses.delete", kw_only=True):
    params: ResponsesRetrieveParams


class ResponsesCancelRequest(_RequestBase, tag="responses.cancel", kw_only=True):
    params: ResponsesRetrieveParams


class ResponsesInputItemsRequest(_RequestBase, tag="responses.input_items.list", kw_only=True):
    params: ResponsesInputItemsParams


class ModelsListRequest(_RequestBase, tag="models.list", kw_only=True):
    params: ModelsListParams = msgspec.field(default_factory=ModelsListParams)


class SessionSendRequest(_RequestBase, tag="session.send", kw_only=True):
    params: SessionSendParams


class SessionsListRequest(_RequestBase, tag="sessions.list", kw_only=True):
    params: SessionsListParams = msgspec.field(default_factory=SessionsListParams)


class SessionCloseRequest(_RequestBase, tag="session.close", kw_only=True):
    params: SessionCloseParams


class TurnInterruptRequest(_RequestBase, tag="turn.interrupt", kw_only=True):
    params: TurnInterruptParams = msgspec.field(default_factory=TurnInterruptParams)


class ApprovalRespondRequest(_RequestBase, tag="approval.respond", kw_only=True):
    params: ApprovalRespondParams


class DaemonStatusRequest(_RequestBase, tag="daemon.status", kw_only=True):
    params: DaemonStatusParams = msgspec.field(default_factory=DaemonStatusParams)


class DaemonShutdownRequest(_RequestBase, tag="daemon.shutdown", kw_only=True):
    params: DaemonShutdownParams = msgspec.field(default_factory=DaemonShutdownParams)


class ChatCompletionsChunkNotification(_NotificationBase, tag="chat.completions.chunk", kw_only=True):
    params: ChatCompletionsChunkParams


class ResponsesEventNotification(_NotificationBase, tag="responses.event", kw_only=True):
    params: ResponsesEventParams


class SessionEventNotification(_NotificationBase, tag="session.event", kw_only=True):
    params: SessionEventParams


class ApprovalRequestedNotification(_NotificationBase, tag="approval.requested", kw_only=True):
    params: ApprovalRequestedParams


class CancelNotification(_NotificationBase, tag="$/cancel", kw_only=True):
    """Cancel a request; if it started a turn, the turn is interrupted."""

    params: CancelParams


# Generic so the daemon can put a result struct in directly; decoded, ``result`` is msgspec.Raw because
# only the requester knows which method it answers (see codec.decode_result).
class Response(msgspec.Struct, Generic[ResultT], kw_only=True):
    """A successful reply to the request with the same ``id``."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId
    result: ResultT


class ErrorResponse(msgspec.Struct, kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId | None
    """Null when the failing message's id could not be recovered."""
    error: ErrorObject

    @classmethod
    def from_exception(cls, exc: ProtocolError) -> ErrorResponse:
        return cls(id=exc.request_id, error=exc.to_error())


Request: TypeAlias = (
    HelloRequest
    | ChatCompletionsCreateRequest
    | ResponsesCreateRequest
    | ResponsesRetrieveRequest
    | ResponsesDeleteRequest
    | ResponsesCancelRequest
    | ResponsesInputItemsRequest
    | ModelsListRequest
    | SessionSendRequest
    | SessionsListRequest
    | SessionCloseRequest
    | TurnInterruptRequest
    | ApprovalRespondRequest
    | DaemonStatusRequest
    | DaemonShutdownRequest
)
Notification: TypeAlias = (
    ChatCompletionsChunkNotification
    | ResponsesEventNotification
    | SessionEventNotification
    | ApprovalRequestedNotification
    | CancelNotification
)
Message: TypeAlias = Request | Notification | Response[msgspec.Raw] | ErrorResponse
"""Anything ``codec.decode`` can return."""


@dataclass(frozen=True)
class MethodSpec:
    """The types behind one method name."""

    message_type: type[Request] | type[Notification]
    params_type: type[msgspec.Struct]
    result_type: type[msgspec.Struct] | type[msgspec.Raw] | None
    """``None`` for notifications, which get no reply."""

    @property
    def name(self) -> str:
        return str(self.message_type.__struct_config__.tag)

    @property
    def is_notification(self) -> bool:
        return self.result_type is None


def _index(*specs: MethodSpec) -> Mapping[str, MethodSpec]:
    return {spec.name: spec for spec in specs}


METHODS: Final[Mapping[str, MethodSpec]] = _index(
    MethodSpec(HelloRequest, HelloParams, HelloResult),
    # Raw: the chat.completion object, or StreamDone when the request body has "stream": true.
    MethodSpec(ChatCompletionsCreateRequest, ChatCompletionsCreateParams, msgspec.Raw),
    # Raw: the Response object, or StreamDone (its ``chunks`` counts events) when the body streams.
    MethodSpec(ResponsesCreateRequest, ResponsesCreateParams, msgspec.Raw),
    MethodSpec(ResponsesRetrieveRequest, ResponsesRetrieveParams, msgspec.Raw),
    MethodSpec(ResponsesDeleteRequest, ResponsesRetrieveParams, msgspec.Raw),
    MethodSpec(ResponsesCancelRequest, ResponsesRetrieveParams, msgspec.Raw),
    MethodSpec(ResponsesInputItemsRequest, ResponsesInputItemsParams, msgspec.Raw),
    MethodSpec(ModelsListRequest, ModelsListParams, ModelList),
    MethodSpec(SessionSendRequest, SessionSendParams, SessionTurnResult),
    MethodSpec(SessionsListRequest, SessionsListParams, SessionsListResult),
    MethodSpec(SessionCloseRequest, SessionCloseParams, ClosedResult),
    MethodSpec(TurnInterruptRequest, TurnInterruptParams, InterruptedResult),
    MethodSpec(ApprovalRespondRequest, ApprovalRespondParams, OkResult),
    MethodSpec(DaemonStatusRequest, DaemonStatusParams, DaemonStatus),
    MethodSpec(DaemonShutdownRequest, DaemonShutdownParams, OkResult),
    MethodSpec(ChatCompletionsChunkNotification, ChatCompletionsChunkParams, None),
    MethodSpec(ResponsesEventNotification, ResponsesEventParams, None),
    MethodSpec(SessionEventNotification, SessionEventParams, None),
    MethodSpec(ApprovalRequestedNotification, ApprovalRequestedParams, None),
    MethodSpec(CancelNotification, CancelParams, None),
)
