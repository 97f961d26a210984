"""What a running turn reports, independent of Codex's wire format and of OpenAI's."""

from __future__ import annotations

from typing import Literal

import msgspec

from claif_cod.engine.tools import ToolCall
from claif_cod.engine.wire_items import ThreadItem


class TurnUsage(msgspec.Struct):
    """Token usage of one turn: the sum of Codex's ``last`` usage over the turn's model requests."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0

    def add(self, other: TurnUsage) -> TurnUsage:
        return TurnUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_output_tokens=self.reasoning_output_tokens + other.reasoning_output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            requests=self.requests + other.requests,
        )


class TextDelta(msgspec.Struct, tag="text_delta"):
    item_id: str
    delta: str


class ReasoningDelta(msgspec.Struct, tag="reasoning_delta"):
    """Streamed reasoning summary text; ``part_added`` (empty ``delta``) opens summary part ``summary_index``."""

    item_id: str
    summary_index: int
    delta: str
    part_added: bool = False


class TextReset(msgspec.Struct, tag="text_reset"):
    """Codex retried the model request: the text streamed so far for ``item_id`` is void."""

    item_id: str


class ItemStarted(msgspec.Struct, tag="item_started"):
    item: ThreadItem


class ItemCompleted(msgspec.Struct, tag="item_completed"):
    item: ThreadItem


class UsageUpdated(msgspec.Struct, tag="usage"):
    usage: TurnUsage


class TurnFinished(msgspec.Struct, tag="finished"):
    status: Literal["completed", "interrupted", "failed"]
    usage: TurnUsage
    error_message: str | None = None
    error_info: object = None
    acted: bool = False
    """Codex ran a command, changed files or called a tool in the turn (see ``wire_items.acts``)."""

    @property
    def cut_for_length(self) -> bool:
        """The model stopped for length: an answer (``finish_reason="length"``, an ``incomplete``
        response), which Codex 0.163 reports as a failed turn whose message names the limit."""
        return self.status == "failed" and "max_output_tokens" in (self.error_message or "")

    @property
    def failed(self) -> bool:
        """A failure of the request, not an answer cut for length."""
        return self.status == "failed" and not self.cut_for_length


class ToolCallsRequested(msgspec.Struct, tag="tool_calls"):
    """The model called caller tools: every call of its response, and that response's usage.

    The turn is suspended after this event (see :mod:`claif_cod.engine.tools`)."""

    calls: tuple[ToolCall, ...]
    usage: TurnUsage


TurnEvent = (
    TextDelta
    | ReasoningDelta
    | TextReset
    | ItemStarted
    | ItemCompleted
    | UsageUpdated
    | ToolCallsRequested
    | TurnFinished
)
