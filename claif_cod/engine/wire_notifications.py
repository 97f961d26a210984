"""The notifications `codex app-server` streams during a turn (the subset claif_cod reads, and those it
asks Codex not to send).

Each carries its ``threadId``, by which the app-server client routes it to the turn waiting on
that thread; items inside ``item/*`` notifications are decoded by :mod:`.wire_items`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from claif_cod.engine.wire import Camel, TurnRef

UNUSED_NOTIFICATIONS = ["turn/started", "thread/status/changed", "account/rateLimits/updated"]
"""Asked not to be sent (``initialize``'s ``optOutNotificationMethods``): four of the ~17 lines of
every turn, which Codex would encode and write, and the engine read, decode and wake the turn's
task for, only to drop them (the turn's id comes with ``turn/start``'s answer)."""


class ThreadScoped(Camel):
    """Just enough of any notification's params to route it to its thread."""

    thread_id: str | None = None


class AgentMessageDelta(Camel):
    thread_id: str
    turn_id: str
    item_id: str
    delta: str


class ReasoningSummaryDelta(Camel):
    """``item/reasoning/summaryTextDelta``; also ``item/reasoning/summaryPartAdded`` (without ``delta``)."""

    thread_id: str
    turn_id: str
    item_id: str
    summary_index: int = 0
    delta: str = ""


class ItemNotification(Camel):
    """``item/started`` and ``item/completed``; ``item`` is decoded by :func:`.wire_items.decode_item`."""

    thread_id: str
    turn_id: str
    item: msgspec.Raw


class TokenUsageBreakdown(Camel):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


class ThreadTokenUsage(Camel):
    last: TokenUsageBreakdown
    total: TokenUsageBreakdown


class TokenUsageUpdated(Camel):
    thread_id: str
    turn_id: str
    token_usage: ThreadTokenUsage


class TurnError(Camel):
    message: str
    codex_error_info: Any = None
    additional_details: str | None = None


class ErrorNotification(Camel):
    thread_id: str
    turn_id: str
    error: TurnError
    will_retry: bool = False


class CompletedTurn(Camel):
    id: str
    status: Literal["completed", "interrupted", "failed", "inProgress"]
    error: TurnError | None = None


class TurnCompleted(Camel):
    thread_id: str
    turn: CompletedTurn


class TurnStarted(Camel):
    thread_id: str
    turn: TurnRef


class RawResponseItem(msgspec.Struct):
    """A model output item as the Responses API sent it (``experimentalRawEvents``); only calls are read."""

    type: str
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    namespace: str | None = None


class RawResponseItemCompleted(Camel):
    thread_id: str
    turn_id: str
    item: RawResponseItem


class RawResponseCompleted(Camel):
    """One model response is complete (every item of it has been announced)."""

    thread_id: str
    turn_id: str
    usage: TokenUsageBreakdown | None = None
