"""The ``params`` and ``result`` of every claif-codd method, and the per-call Codex options.

OpenAI request/response bodies are passed through untouched as ``msgspec.Raw``; the envelopes that
carry these structs are in :mod:`.messages`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from .errors import RequestId
from .payload import Payload
from .turn_events import FileChange, SessionEvent, Usage


# Frozen (hence not a Payload) so one instance can be the default of several params structs.
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


class HelloParams(Payload):
    protocol_version: int
    package_version: str
    client_name: str
    capabilities: list[str] = []


class HelloResult(Payload):
    protocol_version: int
    package_version: str
    daemon_pid: int
    capabilities: list[str]
    max_frame_size: int


class ChatCompletionsCreateParams(Payload):
    body: msgspec.Raw
    """An OpenAI ``chat.completions`` request object, passed through to the engine untouched."""
    options: CodexOptions = _NO_OPTIONS


class ChatCompletionsChunkParams(Payload):
    request_id: RequestId
    chunk: msgspec.Raw
    """An OpenAI ``chat.completion.chunk`` object."""


class StreamDone(Payload, omit_defaults=False, kw_only=True):
    """Result of a streaming ``chat.completions.create`` or ``responses.create``, sent after its last
    chunk or event (``chunks`` counts them)."""

    done: Literal[True] = True
    chunks: int
    interrupted: bool = False
    """A turn of the request was interrupted (``turn.interrupt``); the chunks hold what it produced."""


class ResponsesCreateParams(Payload):
    body: msgspec.Raw
    """An OpenAI ``responses.create`` request object, passed through to the engine untouched."""
    options: CodexOptions = _NO_OPTIONS


class ResponsesEventParams(Payload):
    request_id: RequestId
    event: msgspec.Raw
    """An OpenAI ``ResponseStreamEvent`` object (``type`` names it, ``sequence_number`` orders it)."""


class ResponsesRetrieveParams(Payload):
    """Also the params of ``responses.delete`` and ``responses.cancel``."""

    response_id: str


class ResponsesInputItemsParams(Payload):
    """``responses.input_items.list``: OpenAI's query parameters of ``GET /v1/responses/{id}/input_items``."""

    response_id: str
    after: str | None = None
    limit: int | None = None
    order: Literal["asc", "desc"] | None = None
    before: str | None = None
    """The id of the item the page ends before: OpenAI's ``before`` query parameter of this list."""


class ConversationParams(Payload):
    """``conversations.retrieve`` and ``conversations.delete``."""

    conversation_id: str


class ConversationCreateParams(Payload):
    """``conversations.create``: OpenAI's request body, untouched (``items``, ``metadata``)."""

    body: msgspec.Raw


class ConversationBodyParams(Payload):
    """``conversations.update`` and ``conversations.items.create``: OpenAI's request body, untouched."""

    conversation_id: str
    body: msgspec.Raw


class ConversationItemsListParams(Payload):
    """``conversations.items.list``: OpenAI's query parameters of ``GET /v1/conversations/{id}/items``."""

    conversation_id: str
    after: str | None = None
    limit: int | None = None
    order: Literal["asc", "desc"] | None = None


class ConversationItemParams(Payload):
    """``conversations.items.retrieve`` and ``conversations.items.delete``."""

    conversation_id: str
    item_id: str


class ModelsListParams(Payload):
    options: CodexOptions = _NO_OPTIONS


class ModelList(Payload, omit_defaults=False):
    """The OpenAI ``GET /models`` page, ``object`` included."""

    object: Literal["list"] = "list"
    data: list[msgspec.Raw] = []


class SessionSendParams(Payload):
    session_id: str
    text: str
    options: CodexOptions = _NO_OPTIONS
    system: str | None = None


class SessionEventParams(Payload):
    request_id: RequestId
    session_id: str
    event: SessionEvent


class SessionTurnResult(Payload):
    session_id: str
    thread_id: str
    turn_id: str
    text: str
    status: Literal["completed", "interrupted", "failed"]
    usage: Usage | None = None


class SessionsListParams(Payload):
    pass


class SessionInfo(Payload):
    session_id: str
    thread_id: str
    working_dir: str
    turns: int
    busy: bool
    last_used: float
    """Unix time of the session's last turn."""
    model: str | None = None
    codex_home: str | None = None
    """The Codex home the session lives in (the same name in another home is another session);
    None for a session kept from before homes were recorded."""


class SessionsListResult(Payload):
    sessions: list[SessionInfo]


class SessionCloseParams(Payload):
    session_id: str


class ClosedResult(Payload):
    closed: bool


class TurnInterruptParams(Payload):
    """Interrupt the turn started by ``request_id``, or the running turn of ``session_id``."""

    request_id: RequestId | None = None
    session_id: str | None = None


class InterruptedResult(Payload):
    interrupted: bool


class ApprovalRequestedParams(Payload):
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
    """A file change's files, as the ``file_change`` item ``item_id`` names them."""
    available_decisions: list[str] = []
    item_id: str | None = None
    """Codex's id of the command or file change waiting for approval (absent from daemons before 0.3.0)."""
    grant_root: str | None = None
    """A file change may also ask for write access under this directory for the rest of the session."""


class ApprovalRespondParams(Payload):
    approval_id: str
    decision: Literal["accept", "acceptForSession", "decline", "cancel"]


class OkResult(Payload):
    ok: bool


class DaemonStatusParams(Payload):
    pass


class ProcessInfo(Payload):
    """One Codex process the daemon keeps running."""

    pid: int
    working_dir: str
    codex_path: str
    codex_version: str
    threads: int
    turns_in_flight: int
    rss_bytes: int | None = None


class DaemonStatus(Payload):
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


class DaemonShutdownParams(Payload):
    pass


class WarningParams(Payload):
    request_id: RequestId
    """The request the warning is about; it goes on (the warning never fails it)."""
    message: str
    """For the caller, as a client library's ``UserWarning`` (say, a setting the Codex binary no
    longer accepts, replaced by the nearest one it does)."""


class IgnoredParams(Payload):
    request_id: RequestId
    """The request whose parameters these are; it runs without them (with ``strict`` it is refused)."""
    params: list[str]
    """What the HTTP endpoint's ``x-claif-cod-ignored-params`` header lists: parameters claif_cod
    could not honour, sorted (docs/parameters.md)."""


class CancelParams(Payload):
    id: RequestId
    """The ``id`` of the request to cancel."""
