"""OpenAI Responses API objects as msgspec Structs: encoded straight to the JSON ``openai`` parses
into its own ``Response`` and ``ResponseStreamEvent`` types."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from claif_cod.engine.events import TurnUsage

ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "incomplete"]
ItemStatus = Literal["in_progress", "completed", "incomplete"]


class OutputText(msgspec.Struct, kw_only=True):
    text: str
    type: Literal["output_text"] = "output_text"
    annotations: list[Any] = []
    logprobs: list[Any] = []


class OutputMessage(msgspec.Struct, tag_field="type", tag="message", kw_only=True):
    id: str
    content: list[OutputText]
    status: ItemStatus
    role: Literal["assistant"] = "assistant"


class SummaryText(msgspec.Struct, kw_only=True):
    text: str
    type: Literal["summary_text"] = "summary_text"


class ReasoningOutput(msgspec.Struct, tag_field="type", tag="reasoning", kw_only=True):
    id: str
    summary: list[SummaryText]
    status: ItemStatus = "completed"


class FunctionCallOutput(msgspec.Struct, tag_field="type", tag="function_call", kw_only=True):
    """A call of one of the caller's function tools; ``call_id`` is Codex's."""

    id: str
    call_id: str
    name: str
    arguments: str
    status: ItemStatus = "completed"


OutputItem = OutputMessage | ReasoningOutput | FunctionCallOutput


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    """Codex does not report prompt-cache writes: always 0."""


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int

    @classmethod
    def from_turn(cls, usage: TurnUsage) -> ResponseUsage:
        return cls(
            input_tokens=usage.input_tokens,
            input_tokens_details=InputTokensDetails(usage.cached_input_tokens),
            output_tokens=usage.output_tokens,
            output_tokens_details=OutputTokensDetails(usage.reasoning_output_tokens),
            total_tokens=usage.total_tokens or usage.input_tokens + usage.output_tokens,
        )


class ResponseError(msgspec.Struct):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    reason: Literal["max_output_tokens", "content_filter", "interrupted"]
    """OpenAI's two reasons, and claif_cod's own ``interrupted`` (``turn.interrupt``, ``responses.cancel``)."""


class TextFormatEcho(msgspec.Struct, omit_defaults=True):
    type: str
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class TextEcho(msgspec.Struct):
    format: TextFormatEcho = msgspec.field(default_factory=lambda: TextFormatEcho(type="text"))


class ReasoningEcho(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class ConversationEcho(msgspec.Struct):
    id: str


class Response(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    model: str
    status: ResponseStatus
    output: list[OutputItem]
    object: Literal["response"] = "response"
    completed_at: int | None = None
    """Set with the status ``completed``, as OpenAI's."""
    usage: ResponseUsage | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    metadata: dict[str, str] = {}
    previous_response_id: str | None = None
    conversation: ConversationEcho | None = None
    reasoning: ReasoningEcho = msgspec.field(default_factory=ReasoningEcho)
    text: TextEcho = msgspec.field(default_factory=TextEcho)
    store: bool = True
    parallel_tool_calls: bool = True
    tool_choice: str = "auto"
    tools: list[Any] = []
    temperature: None = None
    top_p: None = None
    background: bool = False
    truncation: Literal["disabled"] = "disabled"
    """OpenAI's default; ``"auto"`` is reported, not honoured."""
    user: str | None = None
    safety_identifier: str | None = None


class ResponseDeleted(msgspec.Struct):
    """What ``DELETE /v1/responses/{id}`` answers (``openai`` itself discards it)."""

    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


# --- stream events: ``sequence_number`` is set as each event goes out ------------------------------


class _Event(msgspec.Struct, tag_field="type", kw_only=True):
    sequence_number: int = 0


class ResponseCreated(_Event, tag="response.created"):
    response: Response


class ResponseInProgress(_Event, tag="response.in_progress"):
    response: Response


class ResponseCompleted(_Event, tag="response.completed"):
    response: Response


class ResponseFailed(_Event, tag="response.failed"):
    response: Response


class ResponseIncomplete(_Event, tag="response.incomplete"):
    response: Response


class OutputItemAdded(_Event, tag="response.output_item.added"):
    output_index: int
    item: OutputItem


class OutputItemDone(_Event, tag="response.output_item.done"):
    output_index: int
    item: OutputItem


class ContentPartAdded(_Event, tag="response.content_part.added"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ContentPartDone(_Event, tag="response.content_part.done"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDelta(_Event, tag="response.output_text.delta"):
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = []


class OutputTextDone(_Event, tag="response.output_text.done"):
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = []


class FunctionCallArgumentsDelta(_Event, tag="response.function_call_arguments.delta"):
    item_id: str
    output_index: int
    delta: str


class FunctionCallArgumentsDone(_Event, tag="response.function_call_arguments.done"):
    item_id: str
    output_index: int
    arguments: str


class ReasoningSummaryPartAdded(_Event, tag="response.reasoning_summary_part.added"):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ReasoningSummaryPartDone(_Event, tag="response.reasoning_summary_part.done"):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ReasoningSummaryTextDelta(_Event, tag="response.reasoning_summary_text.delta"):
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class ReasoningSummaryTextDone(_Event, tag="response.reasoning_summary_text.done"):
    item_id: str
    output_index: int
    summary_index: int
    text: str


ResponseEvent = (
    ResponseCreated
    | ResponseInProgress
    | ResponseCompleted
    | ResponseFailed
    | ResponseIncomplete
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | ReasoningSummaryPartAdded
    | ReasoningSummaryPartDone
    | ReasoningSummaryTextDelta
    | ReasoningSummaryTextDone
)
TERMINAL_EVENTS = (ResponseCompleted, ResponseFailed, ResponseIncomplete)
