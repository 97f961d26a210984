"""One response's output as OpenAI's ``ResponseStreamEvent`` sequence, built from a turn's engine events.

Codex's agent messages become ``message`` items (text streamed as ``output_text`` deltas), its
reasoning summaries ``reasoning`` items (streamed as ``reasoning_summary_part`` /
``reasoning_summary_text`` events when Codex streams them, else reported whole when the item
completes), and calls of the caller's tools ``function_call`` items. The builder owns the
``Response`` object and numbers every event it hands out (``sequence_number``).

With a JSON schema asked for (``text.format``), the model's ``commentary`` messages are held back as
chat holds them (see :class:`~claif_cod.openai_compat.text.Narration`): openai's ``responses.parse()``
parses every message of the output, and ``output_text`` joins them, so narration beside the answer
made neither the answer's JSON.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import msgspec

from claif_cod.engine import wire_items
from claif_cod.engine.errors import TurnFailed
from claif_cod.engine.events import (
    ItemCompleted,
    ItemStarted,
    ReasoningDelta,
    TextDelta,
    TextReset,
    ToolCallsRequested,
    TurnEvent,
    TurnFinished,
)
from claif_cod.openai_compat.errors import response_error
from claif_cod.openai_compat.responses_schema import (
    ContentPartAdded,
    ContentPartDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    FunctionCallOutput,
    IncompleteDetails,
    ItemStatus,
    OutputItem,
    OutputItemAdded,
    OutputItemDone,
    OutputMessage,
    OutputText,
    OutputTextDelta,
    OutputTextDone,
    ReasoningOutput,
    ReasoningSummaryPartAdded,
    ReasoningSummaryPartDone,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    Response,
    ResponseCompleted,
    ResponseError,
    ResponseEvent,
    ResponseFailed,
    ResponseIncomplete,
    ResponseUsage,
    SummaryText,
)
from claif_cod.openai_compat.text import ChoiceText, Narration


def _item_id(prefix: str, codex_id: str) -> str:
    """An output item's id: Codex passes on the model's own (``msg_...``), which keeps it; others get the prefix."""
    return codex_id if codex_id.startswith(prefix) else prefix + codex_id


@dataclass
class _Message:
    index: int
    item: OutputMessage
    text: ChoiceText
    abandoned: bool = False
    """Codex retried the model's response after this message began, and sends its text again as
    another item: this one holds nothing (streamed, it ends empty and incomplete; else it is left out)."""


@dataclass
class _Reasoning:
    index: int
    item: ReasoningOutput
    open_part: int | None = None
    closed: set[int] = field(default_factory=set)


class ResponseBuilder:
    def __init__(self, response: Response, *, streaming: bool, narration: Narration | None = None) -> None:
        self.response = response
        self.streaming = streaming
        self._narration = narration
        """Set when the response has a JSON schema: its commentary messages are held back."""
        self._numbers = itertools.count()
        self._messages: dict[str, _Message] = {}
        self._last_item: object = None
        """The item Codex last started or completed: a turn cut for length was cut in it."""
        self._reasoning: dict[str, _Reasoning] = {}
        self._filtered = False
        """Codex's moderation withheld a message (Codex 0.171+): the response ends ``content_filter``."""
        self._unsaid: list[ResponseEvent] = []
        """What :meth:`cancel` closed without a stream to say it on, should :meth:`fail` end one."""

    def numbered(self, events: list[ResponseEvent]) -> list[ResponseEvent]:
        for event in events:
            event.sequence_number = next(self._numbers)
        return events

    def snapshot(self) -> Response:
        return msgspec.structs.replace(self.response, output=list(self.response.output))

    def translate(self, event: TurnEvent) -> list[ResponseEvent]:
        if isinstance(event, (ItemStarted, ItemCompleted)):
            self._last_item = event.item
        if self._held(event):
            return []
        if isinstance(event, ItemStarted) and isinstance(event.item, wire_items.AgentMessageItem):
            return self._open(event.item.id)
        if isinstance(event, TextDelta):
            out = self._open(event.item_id)
            message = self._messages[event.item_id]
            message.abandoned = False  # (the same item sent again from its start)
            out.extend(self._delta(message, message.text.delta(event.item_id, event.delta)))
            return out
        if isinstance(event, ReasoningDelta):
            return self._reasoning_delta(event)
        if isinstance(event, TextReset) and event.item_id in self._messages:
            message = self._messages[event.item_id]
            message.text.reset(event.item_id)
            message.abandoned = True
        elif isinstance(event, ItemCompleted) and isinstance(event.item, wire_items.AgentMessageItem):
            return self._close(event.item)
        elif isinstance(event, ItemCompleted) and isinstance(event.item, wire_items.ReasoningItem):
            return self._reasoning_done(event.item)
        elif isinstance(event, ToolCallsRequested):
            return self._calls(event)
        elif isinstance(event, TurnFinished):
            return self._finish(event)
        return []

    def _held(self, event: TurnEvent) -> bool:
        """Whether ``event`` is of a commentary message held back (see :class:`Narration`)."""
        narration = self._narration
        if narration is None:
            return False
        if isinstance(event, ItemStarted) and isinstance(event.item, wire_items.AgentMessageItem):
            narration.started(event.item)
            return event.item.id in narration.held
        if isinstance(event, (TextDelta, TextReset)):
            return event.item_id in narration.held
        if isinstance(event, ItemCompleted) and isinstance(event.item, wire_items.AgentMessageItem):
            return narration.completed(event.item)
        return False

    def _narrated(self) -> list[ResponseEvent]:
        """The held commentary, as the answer of a turn whose other messages said nothing."""
        out: list[ResponseEvent] = []
        for item_id, said in self._narration.unanswered().items() if self._narration is not None else ():
            out += self._close(wire_items.AgentMessageItem(id=item_id, text=said))
        return out

    def fail(self, message: str) -> list[ResponseEvent]:
        """The stream is cut short from outside (the daemon stopping): ``response.failed`` says so."""
        out = [*self._unsaid, *self._close_all("incomplete")]
        self._unsaid = []
        self.response.status = "failed"
        self.response.error = ResponseError(code="server_error", message=message)
        return [*out, ResponseFailed(response=self.snapshot())]

    def _completed(self) -> None:
        self.response.status = "completed"
        self.response.completed_at = int(time.time())

    def cancel(self) -> None:
        """The caller stopped reading (or the turn raised): what was still open stays incomplete,
        holding what was sent of it."""
        self._unsaid = self._close_all("incomplete")
        self.response.status = "cancelled"

    # --- messages ------------------------------------------------------------------------------

    def _append(self, item: OutputItem) -> int:
        self.response.output.append(item)
        return len(self.response.output) - 1

    def _open(self, codex_id: str) -> list[ResponseEvent]:
        if codex_id in self._messages:
            return []
        item = OutputMessage(id=_item_id("msg_", codex_id), content=[OutputText(text="")], status="in_progress")
        index = self._append(item)
        self._messages[codex_id] = _Message(index, item, ChoiceText())
        empty = OutputMessage(id=item.id, content=[], status="in_progress")
        return [
            OutputItemAdded(output_index=index, item=empty),
            ContentPartAdded(item_id=item.id, output_index=index, content_index=0, part=OutputText(text="")),
        ]

    def _delta(self, message: _Message, text: str) -> list[ResponseEvent]:
        if not text:
            return []
        message.item.content[0].text = message.text.sent
        return [OutputTextDelta(item_id=message.item.id, output_index=message.index, content_index=0, delta=text)]

    def _close(self, item: wire_items.AgentMessageItem) -> list[ResponseEvent]:
        out = self._open(item.id)
        message = self._messages[item.id]
        message.abandoned = False
        if item.withheld:  # as chat's content_filter: its text is left out (a stream keeps what it sent)
            self._filtered = True
            message.text.withhold(item.id)
            if not self.streaming:
                message.text.sent = ""
            return out + self._done(message, "incomplete")
        out.extend(self._delta(message, message.text.complete(item.id, item.text) + message.text.finish()))
        return out + self._done(message, "completed")

    def _done(self, message: _Message, status: ItemStatus) -> list[ResponseEvent]:
        if message.item.status != "in_progress":
            return []
        # An unfinished message keeps what was streamed of it (a stream cannot take text back), unless
        # Codex's retry sends it again: then its final text is none, and the retry's item holds it.
        if message.abandoned:
            text, status = "", "incomplete"
        else:
            text = message.text.text if status == "completed" else message.text.sent
        part = OutputText(text=text)
        message.item.content = [part]
        message.item.status = status
        ids = {"item_id": message.item.id, "output_index": message.index, "content_index": 0}
        return [
            OutputTextDone(text=text, **ids),  # type: ignore[arg-type]
            ContentPartDone(part=part, **ids),  # type: ignore[arg-type]
            OutputItemDone(output_index=message.index, item=message.item),
        ]

    # --- reasoning summaries -------------------------------------------------------------------

    def _reasoning_delta(self, event: ReasoningDelta) -> list[ResponseEvent]:
        out: list[ResponseEvent] = []
        reasoning = self._reasoning.get(event.item_id)
        if reasoning is None:
            item = ReasoningOutput(id=_item_id("rs_", event.item_id), summary=[], status="in_progress")
            reasoning = self._reasoning[event.item_id] = _Reasoning(self._append(item), item)
            out.append(OutputItemAdded(output_index=reasoning.index, item=msgspec.structs.replace(item, summary=[])))
        summary = reasoning.item.summary
        while len(summary) <= event.summary_index:  # a new part: the one before it is finished
            out.extend(self._part_done(reasoning))
            summary.append(SummaryText(text=""))
            reasoning.open_part = len(summary) - 1
            out.append(
                ReasoningSummaryPartAdded(
                    item_id=reasoning.item.id,
                    output_index=reasoning.index,
                    summary_index=reasoning.open_part,
                    part=SummaryText(text=""),
                )
            )
        if event.delta and event.summary_index not in reasoning.closed:
            summary[event.summary_index].text += event.delta
            out.append(
                ReasoningSummaryTextDelta(
                    item_id=reasoning.item.id,
                    output_index=reasoning.index,
                    summary_index=event.summary_index,
                    delta=event.delta,
                )
            )
        return out

    def _part_done(self, reasoning: _Reasoning) -> list[ResponseEvent]:
        index = reasoning.open_part
        if index is None:
            return []
        reasoning.open_part = None
        reasoning.closed.add(index)
        text = reasoning.item.summary[index].text
        ids = {"item_id": reasoning.item.id, "output_index": reasoning.index, "summary_index": index}
        return [
            ReasoningSummaryTextDone(text=text, **ids),  # type: ignore[arg-type]
            ReasoningSummaryPartDone(part=SummaryText(text=text), **ids),  # type: ignore[arg-type]
        ]

    def _reasoning_done(self, item: wire_items.ReasoningItem) -> list[ResponseEvent]:
        reasoning = self._reasoning.get(item.id)
        if reasoning is None:  # not streamed: the whole summary at once (none: no item, as before)
            if not item.summary:
                return []
            whole = ReasoningOutput(id=_item_id("rs_", item.id), summary=[SummaryText(text=t) for t in item.summary])
            index = self._append(whole)
            return [OutputItemAdded(output_index=index, item=whole), OutputItemDone(output_index=index, item=whole)]
        out = self._part_done(reasoning)
        if len(item.summary) == len(reasoning.item.summary):
            reasoning.item.summary = [SummaryText(text=t) for t in item.summary]  # Codex's word is final
        return out + self._reasoning_closed(reasoning, "completed")

    def _reasoning_closed(self, reasoning: _Reasoning, status: ItemStatus) -> list[ResponseEvent]:
        if reasoning.item.status != "in_progress":
            return []
        out = self._part_done(reasoning)
        reasoning.item.status = status
        return [*out, OutputItemDone(output_index=reasoning.index, item=reasoning.item)]

    # --- the end -------------------------------------------------------------------------------

    def _close_all(self, status: ItemStatus) -> list[ResponseEvent]:
        out: list[ResponseEvent] = []
        for reasoning in self._reasoning.values():
            out.extend(self._reasoning_closed(reasoning, status))
        for message in self._messages.values():
            out.extend(self._done(message, status))
        if not self.streaming:  # nobody saw an abandoned message: the response does not hold it
            dropped = {id(m.item) for m in self._messages.values() if m.abandoned}
            self.response.output = [item for item in self.response.output if id(item) not in dropped]
        return out

    def _calls(self, event: ToolCallsRequested) -> list[ResponseEvent]:
        """The model called the caller's tools: the response ends here, and the turn waits for the results."""
        out = [*self._narrated(), *self._close_all("completed")]
        for call in event.calls:
            item = FunctionCallOutput(id=f"fc_{call.call_id}", call_id=call.call_id, name=call.name, arguments="")
            index = self._append(item)
            added = msgspec.structs.replace(item, status="in_progress")
            item.arguments = call.arguments
            out += [
                OutputItemAdded(output_index=index, item=added),
                FunctionCallArgumentsDelta(item_id=item.id, output_index=index, delta=call.arguments),
                FunctionCallArgumentsDone(item_id=item.id, output_index=index, arguments=call.arguments),
                OutputItemDone(output_index=index, item=item),
            ]
        self.response.usage = ResponseUsage.from_turn(event.usage)
        self._completed()
        out.append(ResponseCompleted(response=self.snapshot()))
        return out

    def _finish(self, event: TurnFinished) -> list[ResponseEvent]:
        message_error = event.error_message or "Codex turn failed"
        length = event.cut_for_length
        # Whatever Codex did not complete stays incomplete, also in a completed turn: a message or
        # reasoning item of a model request Codex retried (its replacement comes as a new item).
        out = [*self._narrated(), *self._close_all("incomplete")]
        self.response.usage = ResponseUsage.from_turn(event.usage)
        if event.status == "completed" and self._filtered:
            self.response.status = "incomplete"
            self.response.incomplete_details = IncompleteDetails(reason="content_filter")
            out.append(ResponseIncomplete(response=self.snapshot()))
        elif event.status == "completed":
            self._completed()
            out.append(ResponseCompleted(response=self.snapshot()))
        elif length or event.status == "interrupted":
            self.response.status = "incomplete"
            cut = self._last_item
            if length and isinstance(cut, wire_items.AgentMessageItem) and cut.id in self._messages:
                self._messages[cut.id].item.status = "incomplete"  # (streamed: its done event said completed)
            self.response.incomplete_details = IncompleteDetails(
                reason="max_output_tokens" if length else "interrupted"
            )
            out.append(ResponseIncomplete(response=self.snapshot()))
        else:
            self.response.status = "failed"
            self.response.error = ResponseError(*response_error(message_error, event.error_info))
            if not self.streaming:
                raise TurnFailed(message_error, event.error_info, "", acted=event.acted)
            out.append(ResponseFailed(response=self.snapshot()))
        return out
