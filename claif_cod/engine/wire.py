"""Typed messages of `codex app-server`'s stdio JSON-RPC (the subset claif_cod uses): the envelope,
and the requests of both directions with their results.

Codex speaks JSON-RPC 2.0 *without* the ``"jsonrpc"`` member, one JSON object per line.
Only the fields we read are declared; msgspec ignores the rest, so new Codex fields
never break decoding.  Field names follow Codex's camelCase via ``rename="camel"``.
What a turn streams is apart: its notifications in :mod:`.wire_notifications`, the items they
carry in :mod:`.wire_items`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

RequestId = int | str


class Camel(msgspec.Struct, rename="camel", omit_defaults=True):
    """Codex's field naming; the base of its params, results and notifications."""


# --- envelope -------------------------------------------------------------------------


class RpcError(msgspec.Struct):
    code: int
    message: str
    data: Any = None


class Envelope(msgspec.Struct):
    """Any line from Codex; ``method`` and ``id`` tell request, response and notification apart."""

    id: RequestId | None = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: RpcError | None = None


class OutgoingRequest(msgspec.Struct):
    id: int
    method: str
    params: Any


class OutgoingNotification(msgspec.Struct):
    method: str
    params: Any = None


class OutgoingResult(msgspec.Struct):
    id: RequestId
    result: Any


class OutgoingError(msgspec.Struct):
    id: RequestId
    error: RpcError


# --- client → server requests ---------------------------------------------------------


class ClientInfo(Camel):
    name: str
    version: str


class InitializeCapabilities(msgspec.Struct, rename="camel"):
    """Sent in full: Codex's own default for ``experimentalApi`` is false."""

    experimental_api: bool = True
    opt_out_notification_methods: list[str] = []


class InitializeParams(Camel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities


class InitializeResult(Camel):
    user_agent: str = ""
    codex_home: str | None = None


class DynamicToolSpec(msgspec.Struct, rename="camel"):
    """A caller-defined function tool (experimental API), fixed for the thread; ``type`` always sent."""

    name: str
    description: str
    input_schema: Any
    type: Literal["function"] = "function"


class ThreadStartParams(Camel):
    cwd: str
    model: str | None = None
    sandbox: str | None = None
    approval_policy: str | None = None
    developer_instructions: str | None = None
    ephemeral: bool | None = None
    dynamic_tools: list[DynamicToolSpec] | None = None
    experimental_raw_events: bool | None = None
    environments: list[Any] | None = None
    """Empty: no shell, patch or image-viewing tools for the thread's turns."""
    config: dict[str, Any] | None = None


class ThreadResumeParams(Camel):
    thread_id: str
    cwd: str | None = None
    model: str | None = None
    sandbox: str | None = None
    approval_policy: str | None = None
    exclude_turns: bool = False
    """Sent only when true (a default is omitted); the resume reads the turns Codex lists (named_sessions)."""
    config: dict[str, Any] | None = None


class ThreadUnsubscribeParams(Camel):
    thread_id: str


class ThreadUnsubscribeResult(Camel):
    status: str
    """``unsubscribed`` (Codex unloads the thread, then sends ``thread/closed``), ``notSubscribed``, ``notLoaded``."""


class ThreadForkParams(Camel):
    thread_id: str
    ephemeral: bool = False
    exclude_turns: bool = False
    """Sent only when true (a default is omitted): Codex requires it of an ephemeral fork."""
    last_turn_id: str | None = None
    """Fork through this turn (inclusive): later turns stay out of the fork."""
    config: dict[str, Any] | None = None


class Thread(Camel):
    id: str
    turns: tuple[TurnRef, ...] = ()
    """The thread's turns, oldest first: Codex fills them in only for ``thread/resume``, ``thread/fork``
    and ``thread/read``."""


class ThreadResult(Camel):
    """Result of ``thread/start``, ``thread/resume`` and ``thread/fork``."""

    thread: Thread
    model: str = ""
    reasoning_effort: str | None = None
    """None: the model's default effort (no ``model_reasoning_effort`` configured, no override)."""


class ContentPart(msgspec.Struct):
    type: Literal["input_text", "output_text"]
    text: str


class ImagePart(msgspec.Struct):
    """An image in an injected message, as a ``data:`` URL (Codex refuses remote image URLs)."""

    image_url: str
    type: Literal["input_image"] = "input_image"
    detail: str | msgspec.UnsetType = msgspec.UNSET


class MessageItem(msgspec.Struct, tag_field="type", tag="message"):
    """A raw Responses API message item, as ``thread/inject_items`` takes it."""

    role: Literal["user", "assistant", "developer"]
    content: list[ContentPart | ImagePart]


class FunctionCallItem(msgspec.Struct, tag_field="type", tag="function_call"):
    """A raw Responses ``function_call`` item: a tool call the model made earlier."""

    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(msgspec.Struct, tag_field="type", tag="function_call_output"):
    """``output``: text, or content parts where the tool returned images."""

    call_id: str
    output: str | list[ContentPart | ImagePart]


InjectItem = MessageItem | FunctionCallItem | FunctionCallOutputItem


class InjectItemsParams(Camel):
    thread_id: str
    items: list[InjectItem]


class TextInput(msgspec.Struct):
    text: str
    type: Literal["text"] = "text"


class ImageInput(msgspec.Struct):
    """An image given inline (a ``data:`` URL: Codex refuses remote ones), which Codex may downscale
    before the model request."""

    url: str
    type: Literal["image"] = "image"
    detail: str | msgspec.UnsetType = msgspec.UNSET


UserInput = TextInput | ImageInput


class SandboxPolicy(msgspec.Struct):
    type: str

    @classmethod
    def from_mode(cls, mode: str) -> SandboxPolicy:
        """``workspace-write`` (a thread/start sandbox mode) is ``workspaceWrite`` as a turn policy."""
        head, *rest = mode.split("-")
        return cls(type=head + "".join(part.title() for part in rest))


class TurnStartParams(Camel):
    thread_id: str
    input: list[UserInput]
    model: str | None = None
    effort: str | None = None
    summary: str | None = None
    output_schema: Any = None
    cwd: str | None = None
    approval_policy: str | None = None
    sandbox_policy: SandboxPolicy | None = None


class TurnRef(Camel):
    id: str


class TurnStartResult(Camel):
    turn: TurnRef


class TurnInterruptParams(Camel):
    thread_id: str
    turn_id: str


class BackgroundTerminalsListParams(Camel):
    thread_id: str
    cursor: str | None = None


class BackgroundTerminal(Camel):
    """A process a command of the thread started and left running (Codex's unified exec)."""

    item_id: str
    process_id: str


class BackgroundTerminalsList(Camel):
    data: list[BackgroundTerminal]
    next_cursor: str | None = None


class BackgroundTerminalTerminateParams(Camel):
    thread_id: str
    process_id: str


class ThreadRevertParams(Camel):
    """Drop ``before_turn_id`` and every later turn from the thread's history (not files changed)."""

    thread_id: str
    before_turn_id: str


class ThreadIdParams(Camel):
    thread_id: str


class ModelListParams(Camel):
    cursor: str | None = None
    include_hidden: bool | None = None


class CodexModel(Camel):
    id: str
    model: str = ""
    display_name: str = ""
    description: str = ""
    hidden: bool = False
    is_default: bool = False
    default_reasoning_effort: str | None = None


class ModelListResult(Camel):
    data: list[CodexModel]
    next_cursor: str | None = None


# --- server → client requests (approvals) -----------------------------------------------


class CommandApprovalParams(Camel):
    thread_id: str
    turn_id: str
    item_id: str
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None


class FileChangeApprovalParams(Camel):
    thread_id: str
    turn_id: str
    item_id: str
    reason: str | None = None
    grant_root: str | None = None


class ApprovalDecisionResult(msgspec.Struct):
    decision: str


# --- caller-defined (dynamic) tools -------------------------------------------------------------


class DynamicToolCallParams(Camel):
    """``item/tool/call``: Codex waits for the caller to run a dynamic tool."""

    thread_id: str
    turn_id: str
    call_id: str
    tool: str
    arguments: Any = None
    namespace: str | None = None


class InputTextContent(msgspec.Struct, tag_field="type", tag="inputText"):
    text: str


class InputImageContent(msgspec.Struct, tag_field="type", tag="inputImage", rename="camel"):
    """An image a tool returned, as a ``data:`` URL; Codex has no ``detail`` for it."""

    image_url: str


class DynamicToolCallResponse(Camel):
    content_items: list[InputTextContent | InputImageContent]
    success: bool
