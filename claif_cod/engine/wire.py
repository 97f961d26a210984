"""Typed messages of `codex app-server`'s stdio JSON-RPC (the subset claif_cod uses).

Codex speaks JSON-RPC 2.0 *without* the ``"jsonrpc"`` member, one JSON object per line.
Only the fields we read are declared; msgspec ignores the rest, so new Codex fields
never break decoding.  Field names follow Codex's camelCase via ``rename="camel"``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

RequestId = int | str


class _Camel(msgspec.Struct, rename="camel", omit_defaults=True):
    pass


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


class ClientInfo(_Camel):
    name: str
    version: str


class InitializeCapabilities(msgspec.Struct, rename="camel"):
    """Sent in full: Codex's own default for ``experimentalApi`` is false."""

    experimental_api: bool = True
    opt_out_notification_methods: list[str] = []


class InitializeParams(_Camel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities


class InitializeResult(_Camel):
    user_agent: str = ""
    codex_home: str | None = None


class DynamicToolSpec(msgspec.Struct, rename="camel"):
    """A caller-defined function tool (experimental API), fixed for the thread; ``type`` always sent."""

    name: str
    description: str
    input_schema: Any
    type: Literal["function"] = "function"


class ThreadStartParams(_Camel):
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


class ThreadResumeParams(_Camel):
    thread_id: str
    cwd: str | None = None
    model: str | None = None
    sandbox: str | None = None
    approval_policy: str | None = None
    exclude_turns: bool = True


class ThreadUnsubscribeParams(_Camel):
    thread_id: str


class ThreadForkParams(_Camel):
    thread_id: str
    ephemeral: bool = False
    exclude_turns: bool = True
    last_turn_id: str | None = None
    """Fork through this turn (inclusive): later turns stay out of the fork."""


class Thread(_Camel):
    id: str


class ThreadResult(_Camel):
    """Result of ``thread/start``, ``thread/resume`` and ``thread/fork``."""

    thread: Thread
    model: str = ""


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
    call_id: str
    output: str


InjectItem = MessageItem | FunctionCallItem | FunctionCallOutputItem


class InjectItemsParams(_Camel):
    thread_id: str
    items: list[InjectItem]


class TextInput(msgspec.Struct):
    text: str
    type: Literal["text"] = "text"


class LocalImageInput(msgspec.Struct):
    """An image file Codex reads (and may downscale) before the model request."""

    path: str
    type: Literal["localImage"] = "localImage"
    detail: str | msgspec.UnsetType = msgspec.UNSET


UserInput = TextInput | LocalImageInput


class SandboxPolicy(msgspec.Struct):
    type: str

    @classmethod
    def from_mode(cls, mode: str) -> SandboxPolicy:
        """``workspace-write`` (a thread/start sandbox mode) is ``workspaceWrite`` as a turn policy."""
        head, *rest = mode.split("-")
        return cls(type=head + "".join(part.title() for part in rest))


class TurnStartParams(_Camel):
    thread_id: str
    input: list[UserInput]
    model: str | None = None
    effort: str | None = None
    summary: str | None = None
    output_schema: Any = None
    cwd: str | None = None
    approval_policy: str | None = None
    sandbox_policy: SandboxPolicy | None = None


class TurnRef(_Camel):
    id: str


class TurnStartResult(_Camel):
    turn: TurnRef


class TurnInterruptParams(_Camel):
    thread_id: str
    turn_id: str


class ThreadIdParams(_Camel):
    thread_id: str


class ModelListParams(_Camel):
    cursor: str | None = None
    include_hidden: bool | None = None


class CodexModel(_Camel):
    id: str
    model: str = ""
    display_name: str = ""
    description: str = ""
    hidden: bool = False
    is_default: bool = False


class ModelListResult(_Camel):
    data: list[CodexModel]
    next_cursor: str | None = None


# --- server → client notifications -----------------------------------------------------


class ThreadScoped(_Camel):
    """Just enough of any notification's params to route it to its thread."""

    thread_id: str | None = None


class AgentMessageDelta(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    delta: str


class ReasoningSummaryDelta(_Camel):
    """``item/reasoning/summaryTextDelta``; also ``item/reasoning/summaryPartAdded`` (without ``delta``)."""

    thread_id: str
    turn_id: str
    item_id: str
    summary_index: int = 0
    delta: str = ""


class ItemNotification(_Camel):
    """``item/started`` and ``item/completed``; ``item`` is decoded by :func:`decode_item`."""

    thread_id: str
    turn_id: str
    item: msgspec.Raw


class TokenUsageBreakdown(_Camel):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


class ThreadTokenUsage(_Camel):
    last: TokenUsageBreakdown
    total: TokenUsageBreakdown


class TokenUsageUpdated(_Camel):
    thread_id: str
    turn_id: str
    token_usage: ThreadTokenUsage


class TurnError(_Camel):
    message: str
    codex_error_info: Any = None
    additional_details: str | None = None


class ErrorNotification(_Camel):
    thread_id: str
    turn_id: str
    error: TurnError
    will_retry: bool = False


class CompletedTurn(_Camel):
    id: str
    status: Literal["completed", "interrupted", "failed", "inProgress"]
    error: TurnError | None = None


class TurnCompleted(_Camel):
    thread_id: str
    turn: CompletedTurn


class TurnStarted(_Camel):
    thread_id: str
    turn: TurnRef


# --- thread items ---------------------------------------------------------------------


class ModerationKind(_Camel):
    """A hidden answer's ``replacement`` or a blocked one's ``reason``: Codex 0.171 gives only a kind
    (``wellbeingPromptHelpline``; ``protection``, ``cyber``), no replacement text."""

    kind: str = ""


class AgentMessageDisplay(_Camel):
    """How Codex says to present a moderated answer: ``show``, ``hide`` or ``block``.

    One struct with an open ``mode`` rather than a tagged union: a mode a later Codex adds must
    not make the whole item undecodable.
    """

    mode: str
    replacement: ModerationKind | None = None
    reason: ModerationKind | None = None


class AgentMessageModeration(_Camel):
    """``agentMessage.moderation`` (Codex 0.171+)."""

    moderated: bool = False
    display: AgentMessageDisplay | None = None


class AgentMessageItem(_Camel, tag_field="type", tag="agentMessage"):
    id: str
    text: str = ""
    phase: str | None = None
    moderation: AgentMessageModeration | None = None

    @property
    def withheld(self) -> bool:
        """Moderation says this answer must not be shown (hidden or blocked)."""
        display = self.moderation.display if self.moderation is not None else None
        return display is not None and display.mode in ("hide", "block")


class ReasoningItem(_Camel, tag_field="type", tag="reasoning"):
    id: str
    summary: list[str] = []


class CommandExecutionItem(_Camel, tag_field="type", tag="commandExecution"):
    id: str
    command: str = ""
    cwd: str = ""
    status: str = "inProgress"
    exit_code: int | None = None
    aggregated_output: str | None = None


class PatchKind(msgspec.Struct):
    type: str


class FileUpdate(_Camel):
    path: str
    kind: PatchKind


class FileChangeItem(_Camel, tag_field="type", tag="fileChange"):
    id: str
    status: str = "inProgress"
    changes: list[FileUpdate] = []


class OtherItem(msgspec.Struct):
    """Any item type we do not interpret (user messages, web searches, ...)."""

    id: str
    type: str


KnownItem = AgentMessageItem | ReasoningItem | CommandExecutionItem | FileChangeItem
ThreadItem = KnownItem | OtherItem

_KNOWN_ITEM_TYPES = frozenset({"agentMessage", "reasoning", "commandExecution", "fileChange"})
_known_item_decoder = msgspec.json.Decoder(KnownItem)
_other_item_decoder = msgspec.json.Decoder(OtherItem)


def decode_item(raw: msgspec.Raw) -> ThreadItem:
    other = _other_item_decoder.decode(raw)
    if other.type in _KNOWN_ITEM_TYPES:
        known: KnownItem = _known_item_decoder.decode(raw)
        return known
    return other


# --- server → client requests (approvals) -----------------------------------------------


class CommandApprovalParams(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None


class FileChangeApprovalParams(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    reason: str | None = None
    grant_root: str | None = None


class ApprovalDecisionResult(msgspec.Struct):
    decision: str


# --- caller-defined (dynamic) tools -------------------------------------------------------------


class DynamicToolCallParams(_Camel):
    """``item/tool/call``: Codex waits for the caller to run a dynamic tool."""

    thread_id: str
    turn_id: str
    call_id: str
    tool: str
    arguments: Any = None
    namespace: str | None = None


class InputTextContent(msgspec.Struct, tag_field="type", tag="inputText"):
    text: str


class DynamicToolCallResponse(_Camel):
    content_items: list[InputTextContent]
    success: bool


class RawResponseItem(msgspec.Struct):
    """A model output item as the Responses API sent it (``experimentalRawEvents``); only calls are read."""

    type: str
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    namespace: str | None = None


class RawResponseItemCompleted(_Camel):
    thread_id: str
    turn_id: str
    item: RawResponseItem


class RawResponseCompleted(_Camel):
    """One model response is complete (every item of it has been announced)."""

    thread_id: str
    turn_id: str
    usage: TokenUsageBreakdown | None = None
