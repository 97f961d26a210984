"""Turns: a running Codex turn, which owns its thread's handle while it runs.

A :class:`Turn` reads its thread's notifications, translates them into engine events, enforces the
caller's deadline, and, when the caller stops listening early, interrupts the turn and keeps the
thread locked until Codex confirms that it ended (so a later turn can never steer this one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Literal

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire, wire_items, wire_notifications
from claif_cod.engine.approvals import ApprovalHandler, FileChange, decline_all, file_changes
from claif_cod.engine.errors import CodexRpcError, TurnTimedOut
from claif_cod.engine.events import (
    ItemCompleted,
    ItemStarted,
    ReasoningDelta,
    TextDelta,
    TextReset,
    ToolCallsRequested,
    TurnEvent,
    TurnFinished,
    TurnUsage,
    UsageUpdated,
)
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.terminals import end_later
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.thread_messages import Notification, ProcessExit, ThreadMessage, Wakeup
from claif_cod.engine.tools import DEFAULT_TOOL_TIMEOUT_S, CallBatch
from claif_cod.engine.turn_wait import TurnWait
from claif_cod.engine.waiting import within

log = get_logger("claif_cod.engine")

TurnOutcome = Literal["done", "broken", "died"]
"""How a turn let go of its thread: Codex ended it; it never confirmed its end; its process went."""
INTERRUPT_RETRY_S = 0.005
"""First pause before asking again when Codex refused an interrupt because the turn it has just
started is not active yet (seen on Codex 0.163 under load); doubled each time, within the grace."""


@dataclass(frozen=True)
class TurnOptions:
    model: str | None = None
    effort: str | None = None
    summary: str | None = None
    output_schema: object = None
    deadline: float | None = None
    """When the request must be done (``time.monotonic()``): what is left of it bounds the turn."""
    gap_timeout: float | None = None
    """For a stream: each event of the turn gives it this many seconds more (see ``TurnWait.limit``)."""
    approvals: ApprovalHandler = decline_all
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT_S
    """How long the turn may stay suspended on caller tool calls (see :mod:`claif_cod.engine.tools`)."""
    forget_failed: bool = False
    """A named session's turn: dropped from its thread unless its caller takes its end (``Turn.forget``)."""
    interrupted: Callable[[], bool] = lambda: False
    """Asked once the thread is free, right before ``turn/start``: True when ``turn.interrupt`` named
    the request while it waited (see engine/control.py), so that no turn starts (``TurnNotStarted``):
    a turn started only to be interrupted may well complete first."""

    def timeout(self) -> float | None:
        """What is left of the deadline, now."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


class Turn:
    """A running turn: iterate for events; :meth:`interrupt` to stop it early."""

    def __init__(
        self,
        handle: ThreadHandle,
        turn_id: str,
        queue: Inbox[ThreadMessage],
        timeout: float | None,
        on_done: Callable[[Turn, TurnOutcome], None],
        on_suspend: Callable[[Turn, ToolCallsRequested], None] | None = None,
        on_interrupted: Callable[[Turn], None] | None = None,
        *,
        gap: float | None = None,
    ) -> None:
        self.handle = handle
        self.turn_id = turn_id
        self.server = handle.server
        """The process this turn runs on (the handle may move to another one afterwards)."""
        self._liveness = handle.server.liveness
        self._queue = queue
        self._wait = TurnWait(queue, self._liveness.turn_silence, self.server.check_alive_soon)
        self._wait.limit(timeout, gap)
        self._on_done = on_done
        self._on_suspend = on_suspend
        self._on_interrupted = on_interrupted
        """Called once the interrupt is sent: Codex cannot end a turn that still waits on a tool call."""
        self._finished = False
        self._interrupt_sent = False
        self._abandoning: asyncio.Task[None] | None = None
        self._batch = CallBatch(handle.tools.names()) if handle.tools.enabled else None
        self.suspended = False
        """Waiting for caller tool results: ``events()`` ended without the turn ending."""
        self.forget = False
        """Its caller is told it failed: when it ends, its thread (a named session's, which persists)
        drops it before it takes another turn. A session's turn starts with it set
        (``TurnOptions.forget_failed``: an error, a dead process, a caller gone); its caller clears
        it when it takes the turn's end as an answer, on its ``TurnFinished`` (or :meth:`settle`)."""
        self._settled: asyncio.Future[None] | None = None
        """Not done while its caller has yet to say whether it takes the turn's end (:meth:`hold_end`)."""
        self.usage = TurnUsage()
        """Usage of the model requests since the turn started, or since it was last resumed."""
        self._last_error: wire_notifications.TurnError | None = None
        self.acted = False
        """Codex ran a command, changed files or called a tool in this turn: running it again
        (a retry) would do so again."""
        self._file_changes: dict[str, tuple[FileChange, ...]] = {}
        """The changes of the turn's ``fileChange`` items read so far, by item id."""
        self._commands: set[str] = set()
        """The ``commandExecution`` items of the turn since it last handed out tool calls (or began):
        what they left running ends if the turn is stopped before it answers."""
        self._answered_commands: set[str] = set()
        """The commands of the response that last handed out tool calls (whenever they begin)."""

    def resume(self, timeout: float | None, gap: float | None = None) -> None:
        """Leave the suspension (the results have been handed to Codex); ``events()`` goes on from here."""
        self.suspended = False
        self.usage = TurnUsage()
        self._wait.limit(timeout, gap)

    def give_up(self) -> None:
        """End a turn nobody reads (a suspension nobody resumes, a start whose caller left): interrupt,
        answer the pending calls as failed, release the thread once Codex confirms."""
        if self._abandoning is None and not self._finished:
            self.suspended = False
            self._abandoning = asyncio.get_running_loop().create_task(self._abandon())

    def hold_end(self) -> None:
        """Its caller takes the turn's end as its answer only once the turn has ended, and may be cancelled
        meanwhile (a stop sequence cut the answer, and the turn is being stopped): until :meth:`settle`,
        the engine neither lets the thread go nor keeps or drops the turn (``forget``), which it would
        otherwise decide as the turn ends."""
        self._settled = asyncio.get_running_loop().create_future()

    def settle(self, taken: bool) -> None:
        """Its caller took the turn's end as its answer (``taken``), or left before: a named session's
        turn is then dropped, as ``forget`` says."""
        if taken:
            self.forget = False
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(None)

    @property
    def unsettled(self) -> bool:
        """Its caller has yet to say whether it takes the turn's end (see :meth:`hold_end`)."""
        return self._settled is not None and not self._settled.done()

    async def settled(self) -> None:
        """Until its caller has said whether it takes the turn's end."""
        if self._settled is not None:
            await asyncio.shield(self._settled)

    @property
    def finished(self) -> bool:
        """Codex ended the turn (or its process went): interrupting it does nothing any more."""
        return self._finished

    async def interrupt(self) -> None:
        """Ask Codex to end the turn, and ask again while Codex says it has not started it yet (and
        nobody saw it end): the caller reading its events sees it end ``interrupted``."""
        if self._finished or self._interrupt_sent:
            return
        self._interrupt_sent = True
        deadline = time.monotonic() + self._liveness.interrupt_grace
        pause = INTERRUPT_RETRY_S
        while not await self._interrupt_once() and not self._finished and time.monotonic() + pause < deadline:
            await asyncio.sleep(pause)
            pause *= 2

    async def _interrupt_once(self) -> bool:
        """One ``turn/interrupt``; False when Codex refused it as too early, to be asked again."""
        try:
            # A hung process is found out here too: the request's deadline runs the probe.
            await self.server.request(
                "turn/interrupt",
                wire.TurnInterruptParams(thread_id=self.handle.thread_id, turn_id=self.turn_id),
                msgspec.Raw,
                timeout=self._liveness.interrupt_grace,
            )
        except CodexRpcError as exc:
            return not _not_active_yet(exc)
        except Exception:
            pass  # the process is gone or hung: the wait for turn/completed finds out
        return True

    async def stop(self) -> TurnUsage:
        """Interrupt, and wait (at most ``interrupt_grace``) for Codex to end the turn.

        Returns the usage Codex counted for the turn's model requests: a request that finished
        before the interrupt (as the one whose text hit a stop sequence usually has) reports its
        usage just before ``turn/completed``; one cut off mid-answer is never counted by Codex.
        Call it while iterating :meth:`events`; closing the iterator afterwards waits no longer.
        """
        if not self._finished and self._abandoning is None:
            self._abandoning = asyncio.get_running_loop().create_task(self._abandon())
        if self._abandoning is not None:
            await asyncio.wait({self._abandoning}, timeout=self._liveness.interrupt_grace)
        return self.usage

    async def events(self) -> AsyncGenerator[TurnEvent, None]:
        open_messages: set[str] = set()
        started_messages: set[str] = set()
        ended = False
        try:
            while True:
                try:
                    message = await self._wait.next()
                except TurnTimedOut as exc:
                    exc.acted = self.acted
                    raise
                if isinstance(message, ProcessExit):
                    self._finish("died")  # the turn went with its process; the thread can be resumed
                    raise message.error
                for event in self._translate(message, open_messages, started_messages):
                    if isinstance(event, ToolCallsRequested):
                        self.suspended = True
                        self._commands.clear()  # what they left running is the answered response's
                        if self._on_suspend is not None:
                            self._on_suspend(self, event)
                    ended = isinstance(event, TurnFinished)
                    yield event
                    if ended:
                        self._finish("done")
                        return
                    if self.suspended:
                        return
        finally:
            self._wait.stop()
            if ended and not self._finished:
                self._finish("done")  # closed as it handed out the turn's end: nothing to interrupt
            if not self._finished and self._abandoning is None and not self.suspended:
                # The caller stopped listening (cancelled, timed out, stop sequence): the
                # thread must not take another turn until Codex says this one is over.
                self._abandoning = asyncio.get_running_loop().create_task(self._abandon())

    def _translate(self, message: Notification, open_messages: set[str], started: set[str]) -> list[TurnEvent]:
        method, params = message.method, message.params
        if method == "item/agentMessage/delta":
            delta = msgspec.json.decode(params, type=wire_notifications.AgentMessageDelta)
            if delta.turn_id == self.turn_id:
                return [TextDelta(item_id=delta.item_id, delta=delta.delta)]
        elif method in ("item/reasoning/summaryTextDelta", "item/reasoning/summaryPartAdded"):
            summary = msgspec.json.decode(params, type=wire_notifications.ReasoningSummaryDelta)
            if summary.turn_id == self.turn_id:
                added = method == "item/reasoning/summaryPartAdded"
                return [ReasoningDelta(summary.item_id, summary.summary_index, summary.delta, part_added=added)]
        elif method in ("item/started", "item/completed"):
            note = msgspec.json.decode(params, type=wire_notifications.ItemNotification)
            if note.turn_id != self.turn_id:
                return []
            item = wire_items.decode_item(note.item)
            if isinstance(item, wire_items.FileChangeItem):
                self._file_changes[item.id] = file_changes(item)
            elif isinstance(item, wire_items.CommandExecutionItem) and item.id not in self._answered_commands:
                self._commands.add(item.id)
            if not self.acted and wire_items.acts(item):
                self.acted = True
            if method == "item/completed":
                open_messages.discard(item.id)
                return [ItemCompleted(item=item)]
            events: list[TurnEvent] = []
            if isinstance(item, wire_items.AgentMessageItem):
                if item.id in started:  # Codex retried and re-sends this message from the start
                    events.append(TextReset(item_id=item.id))
                started.add(item.id)
                open_messages.add(item.id)
            events.append(ItemStarted(item=item))
            return events
        elif self._batch is not None and method in ("rawResponseItem/completed", "rawResponse/completed"):
            return self._raw(method, params)
        elif method == "thread/tokenUsage/updated":
            update = msgspec.json.decode(params, type=wire_notifications.TokenUsageUpdated)
            if update.turn_id == self.turn_id and self._batch is None:  # with raw events, counted per response
                if update.token_usage.total == self.handle.usage_total:
                    return []  # the count repeated, no new model request in it
                self.handle.usage_total = update.token_usage.total
                self._count(update.token_usage.last)
                return [UsageUpdated(usage=self.usage)]
        elif method == "error":
            note_error = msgspec.json.decode(params, type=wire_notifications.ErrorNotification)
            if note_error.turn_id == self.turn_id and note_error.will_retry:
                # Codex retries the model on its own, up to its budget (see SPAWN_OPTIONS in
                # engine/child_process.py): what it says is the only sign of why a turn goes quiet.
                log.warning(
                    "turn.codex_retrying",
                    thread_id=self.handle.thread_id,
                    turn_id=self.turn_id,
                    said=note_error.error.message[:200],
                    details=(note_error.error.additional_details or "")[:200],
                )
                resets: list[TurnEvent] = [TextReset(item_id=item_id) for item_id in sorted(open_messages)]
                open_messages.clear()
                return resets
            if note_error.turn_id == self.turn_id:
                self._last_error = note_error.error  # the reason, should turn/completed not repeat it
        elif method == "turn/completed":
            done = msgspec.json.decode(params, type=wire_notifications.TurnCompleted)
            if done.turn.id == self.turn_id:
                status = "completed" if done.turn.status == "inProgress" else done.turn.status
                error = done.turn.error or (self._last_error if status == "failed" else None)
                return [
                    TurnFinished(
                        status=status,
                        usage=self.usage,
                        error_message=error.message if error else None,
                        error_info=error.codex_error_info if error else None,
                        acted=self.acted,
                    )
                ]
        return []

    def file_changes(self, item_id: str) -> tuple[FileChange, ...]:
        """The changes of the turn's ``fileChange`` item ``item_id``: Codex announces the item before
        it asks to approve it, so it has been read already, or it waits in the queue."""
        known = self._file_changes.get(item_id)
        if known is not None:
            return known
        for message in self._queue.queued():
            if isinstance(message, Notification) and message.method == "item/started":
                note = msgspec.json.decode(message.params, type=wire_notifications.ItemNotification)
                item = wire_items.decode_item(note.item)
                if isinstance(item, wire_items.FileChangeItem) and item.id == item_id:
                    return file_changes(item)
        return ()

    def _count(self, last: wire_notifications.TokenUsageBreakdown) -> None:
        """Add one model request's usage."""
        self.usage = self.usage.add(
            TurnUsage(
                input_tokens=last.input_tokens,
                cached_input_tokens=last.cached_input_tokens,
                output_tokens=last.output_tokens,
                reasoning_output_tokens=last.reasoning_output_tokens,
                total_tokens=last.total_tokens,
                requests=1,
            )
        )

    def _raw(self, method: str, params: msgspec.Raw) -> list[TurnEvent]:
        """Raw Responses events (threads with caller tools): collect calls, close the batch per response."""
        assert self._batch is not None
        if method == "rawResponseItem/completed":
            self._batch.raw_item(params, self.turn_id)
            return []
        done = msgspec.json.decode(params, type=wire_notifications.RawResponseCompleted)
        if done.turn_id != self.turn_id:
            return []
        events: list[TurnEvent] = []
        if done.usage is not None:
            self._count(done.usage)
            events.append(UsageUpdated(usage=self.usage))
        calls, codex_calls = self._batch.close()
        if calls:
            # Its commands may begin after the response is handed out (Codex runs the calls of a
            # response side by side): they are the answered response's too.
            self._answered_commands = codex_calls
            events.append(ToolCallsRequested(calls=tuple(calls), usage=self.usage))
        return events

    def _finish(self, outcome: TurnOutcome) -> None:
        if not self._finished:
            self._finished = True
            if outcome == "broken":
                self.handle.broken = True
            if self._interrupt_sent and self._commands and outcome != "died":
                end_later(self.server, self.handle.thread_id, self._commands, self._liveness.interrupt_grace)
            self._on_done(self, outcome)

    async def _abandon(self) -> None:
        """Interrupt, and wait for Codex to confirm; no confirmation → retire the thread, probe the process."""
        outcome: TurnOutcome = "broken"
        try:
            refused = False
            if not self._interrupt_sent:  # else asked already (and asked again, if need be, by interrupt())
                self._interrupt_sent = True
                refused = not await self._interrupt_once()
            if self._on_interrupted is not None:
                self._on_interrupted(self)
            outcome = await self._await_completion(self._liveness.interrupt_grace, ask_again=refused)
            if outcome == "broken":
                log.warning("engine.interrupt_unconfirmed", thread_id=self.handle.thread_id, pid=self.server.pid)
                if not await self.server.check_alive():
                    outcome = "died"  # hung: check_alive condemned it, the pool replaces it
        finally:
            self._finish(outcome)

    async def _await_completion(self, grace: float, *, ask_again: bool = False) -> TurnOutcome:
        """``turn/completed`` read within ``grace``; ``ask_again``: the interrupt was refused as too
        early, and is sent again (pausing twice as long each time) until Codex takes it."""
        deadline = time.monotonic() + grace
        pause = INTERRUPT_RETRY_S
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await within(self._queue.get(), min(remaining, pause) if ask_again else remaining)
            except asyncio.TimeoutError:
                if ask_again:
                    ask_again, pause = not await self._interrupt_once(), pause * 2
                continue
            if isinstance(message, ProcessExit):
                return "died"
            if isinstance(message, Wakeup):
                continue
            if message.method == "turn/completed":
                done = msgspec.json.decode(message.params, type=wire_notifications.TurnCompleted)
                if done.turn.id == self.turn_id:
                    return "done"
            elif message.method in ("thread/tokenUsage/updated", "item/started"):
                self._translate(message, set(), set())  # the usage of a request that finished; a command begun
        return "broken"


def _not_active_yet(error: CodexRpcError) -> bool:
    """Codex's refusal of an interrupt that came before the turn it had just started was active: it
    has no active turn yet, or still holds the thread's previous one active ("expected active turn
    id X but found Y", for a while after that turn's ``turn/completed`` when it was interrupted)."""
    return error.code == -32600 and ("no active turn" in error.message or "expected active turn id" in error.message)
