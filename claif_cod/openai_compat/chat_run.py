"""One chat request's turns: its threads or suspended turns, one choice each, merged into a
completion or a stream of chunks (stop sequences, tool calls, deadlines and retries included)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire_items
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.engine import Engine, Suspension, ThreadHandle, Turn, TurnOptions
from claif_cod.engine.errors import CallerGone, ThreadUnloaded, TurnFailed, TurnNotStarted, TurnTimedOut
from claif_cod.engine.events import (
    ItemCompleted,
    ItemStarted,
    TextDelta,
    TextReset,
    ToolCallsRequested,
    TurnEvent,
    TurnFinished,
    TurnUsage,
    UsageUpdated,
)
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.session_order import Ticket
from claif_cod.engine.tools import DEFAULT_TOOL_TIMEOUT_S, ToolCall
from claif_cod.engine.waiting import within
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.request import ParsedRequest
from claif_cod.openai_compat.schema import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FinishReason,
    Usage,
)
from claif_cod.openai_compat.text import ChoiceText, Narration
from claif_cod.openai_compat.tool_calls import tool_call_deltas

log = get_logger("claif_cod.service")


STOP_USAGE_WAIT_S = 1.0
"""After a stop sequence, how long the model request that produced it may take to finish (and be
counted by Codex) before the turn is interrupted: Codex never counts a request it abandoned."""


@dataclass
class _ChoiceResult:
    index: int
    handle: ThreadHandle
    text: ChoiceText
    finish_reason: FinishReason = "stop"
    usage: TurnUsage = field(default_factory=TurnUsage)
    clean: bool = True
    """False when the thread's history no longer matches what the caller saw (stop cut, length)."""
    tool_calls: tuple[ToolCall, ...] = ()
    interrupted: bool = False
    """The turn was interrupted from outside (``turn.interrupt``), not cut by a stop sequence."""


@dataclass(frozen=True)
class _Piece:
    index: int
    text: str
    calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class _Replay:
    """A retried request whose turn is suspended on tool calls: answered with the same calls again."""

    suspension: Suspension


_Source = ThreadHandle | Suspension | _Replay
"""Where a choice comes from: a thread to start a turn on, a suspended turn to resume, or a replay."""


class _Done:
    pass


_Sink = Inbox[_Piece | _Done]


def _narrated(text: ChoiceText, narration: Narration | None) -> str:
    """The held commentary, as the answer of a turn that said nothing else (see :class:`Narration`)."""
    out = ""
    for item_id, said in narration.unanswered().items() if narration is not None else ():
        out += text.complete(item_id, said)
    return out


async def _usage_after_stop(turn: Turn, events: AsyncGenerator[TurnEvent, None]) -> TurnUsage:
    """The usage Codex counted for a turn cut by a stop sequence.

    The model request that completed the stop sequence has usually sent all its text already, and
    Codex reports its usage when it ends: wait for that (at most ``STOP_USAGE_WAIT_S``; the text
    is final meanwhile), then interrupt the turn and wait for Codex to end it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_USAGE_WAIT_S
    try:
        while (remaining := deadline - loop.time()) > 0:
            # (not asyncio.wait_for: on CPython < 3.12 it may swallow the request's cancellation)
            event = await within(events.__anext__(), remaining)
            if isinstance(event, TurnFinished):
                return event.usage
            if isinstance(event, UsageUpdated):
                break
    except (asyncio.TimeoutError, StopAsyncIteration):
        pass  # a request still running when interrupted is not counted by Codex
    return await turn.stop()


def session_of(parsed: ParsedRequest, options: RequestOptions) -> str | None:
    """The named session a chat request continues: the body's ``session_id``, else the client's."""
    return options.session_id if parsed.request.session_id is None else parsed.request.session_id


class ChatRun:
    """One ``create()`` call: n choices, each a turn on its own thread."""

    def __init__(
        self,
        engine: Engine,
        key: ProcessKey,
        options: RequestOptions,
        parsed: ParsedRequest,
        deadline: float | None,
        ticket: Ticket | None = None,
    ) -> None:
        self.engine = engine
        self.key = key
        self.options = options
        self.parsed = parsed
        self.session_id = session_of(parsed, options)
        self.ticket = ticket
        """The request's place in its named session's line (taken as it arrived), given back once its turn started."""
        self.completion_id = f"chatcmpl-{os.urandom(16).hex()}"  # 32 hex digits, as uuid4's, at a quarter of its cost
        self.created = int(time.time())
        self.model = parsed.request.model or "codex-default"
        self.deadline = deadline
        """The request's, from its start: starting Codex, the threads and the turns count."""
        stream_options = parsed.request.stream_options
        self._with_usage = stream_options is not None and stream_options.include_usage

    async def _sources(self) -> list[_Source]:
        """A suspended turn these tool results answer, a replay for a retried request, else threads."""
        conversation, tools = self.parsed.conversation, self.parsed.tools
        results = conversation.pending_results()
        suspensions = self.engine.suspensions
        if results:
            suspension = suspensions.for_results(results)
            if suspension is not None:
                if self.engine.resumable(suspension, self.key, tools, self._turn_options()):
                    return [suspension]
                self.engine.release(suspension)  # replayed as a transcript below
        else:
            self.engine.release_answered(conversation.history)
            retried = suspensions.for_origin(self._origin()) if tools.enabled else None
            if retried is not None:
                return [_Replay(retried)]
        return list(await self._threads())

    def _origin(self) -> str:
        return self.parsed.conversation.sent_digest(self.key, self.parsed.tools)

    async def _turn(self, source: ThreadHandle | Suspension) -> Turn:
        if isinstance(source, Suspension):
            return self.engine.resume_tools(source, self.parsed.conversation.pending_results(), self._turn_options())
        conversation = self.parsed.conversation
        try:
            try:
                return await self.engine.start_turn(
                    source, conversation.prompt, self._turn_options(), images=conversation.prompt_images
                )
            except ThreadUnloaded:  # (a conversation's: a session's thread is resumed)
                log.info("service.thread_reseeded", thread_id=source.thread_id)
                [fresh] = await self._threads(n=1)  # nothing of the request ran: seeded anew
                return await self.engine.start_turn(
                    fresh, conversation.prompt, self._turn_options(), images=conversation.prompt_images
                )
        finally:
            if self.ticket is not None:
                self.ticket.done()

    async def _threads(self, n: int | None = None) -> list[ThreadHandle]:
        conversation = self.parsed.conversation
        api_key = self.options.config.api_key
        model = self.parsed.request.model
        if self.session_id is not None:
            if self.ticket is not None:
                await self.ticket.turn()
            handle, _ = await self.engine.named.thread(self.session_id, self.key, api_key, conversation, model=model)
            return [handle]
        handles, warm = await self.engine.threads.open_conversation(
            self.key, api_key, conversation, model=model, n=n or self.parsed.request.choices, tools=self.parsed.tools
        )
        log.debug("service.threads", warm=warm, n=len(handles))
        return handles

    def _turn_options(self) -> TurnOptions:
        request = self.parsed.request
        return TurnOptions(
            model=request.model,
            effort=request.reasoning_effort,
            output_schema=self.parsed.output_schema,
            deadline=self.deadline,
            gap_timeout=self.options.timeout if request.stream else None,
            approvals=self.options.approvals,
            tool_timeout=request.tool_timeout or DEFAULT_TOOL_TIMEOUT_S,
            forget_failed=self.session_id is not None,
            interrupted=self._interrupted,
        )

    def _interrupted(self) -> bool:
        return self.options.control is not None and self.options.control.requested

    async def _run_choice(self, index: int, source: _Source, sink: _Sink | None) -> _ChoiceResult:
        """One choice in a task of its own: its pieces go to ``sink`` (None: not streamed)."""
        results: list[_ChoiceResult] = []
        async with contextlib.aclosing(self._choice(index, source, sink is not None, results)) as pieces:
            async for piece in pieces:
                assert sink is not None  # only a streamed choice has pieces
                sink.put_nowait(piece)
        return results[0]

    async def _choice(
        self, index: int, source: _Source, streaming: bool, results: list[_ChoiceResult]
    ) -> AsyncGenerator[_Piece, None]:
        """One choice's pieces as Codex produces them (streaming only); its result is appended to
        ``results`` once it is done."""
        if isinstance(source, _Replay):
            result, pieces = self._replay(index, source.suspension, streaming)
            for piece in pieces:
                yield piece
            results.append(result)
            return
        try:
            turn = await self.options.before(self.deadline, self._turn(source))
        except TurnNotStarted:  # interrupted while it waited for a busy session: nothing happened
            assert isinstance(source, ThreadHandle)
            result = _ChoiceResult(index, source, ChoiceText((), streaming=streaming), clean=False)
            self._finish(result, TurnFinished(status="interrupted", usage=TurnUsage()))
            results.append(result)
            return
        handle = turn.handle
        result = _ChoiceResult(index=index, handle=handle, text=ChoiceText(self.parsed.stop, streaming=streaming))
        if self.options.control is not None:
            await self.options.control.attach(turn)
        events = turn.events()
        finished: TurnFinished | None = None
        narration = Narration() if self.parsed.output_schema is not None else None
        try:
            async for event in events:
                out = ""
                if isinstance(event, TextDelta):
                    if narration is None or event.item_id not in narration.held:
                        out = result.text.delta(event.item_id, event.delta)
                elif isinstance(event, TextReset):
                    if narration is None or event.item_id not in narration.held:
                        result.text.reset(event.item_id)
                elif isinstance(event, ItemStarted):
                    if narration is not None and isinstance(event.item, wire_items.AgentMessageItem):
                        narration.started(event.item)
                elif isinstance(event, ItemCompleted) and isinstance(event.item, wire_items.AgentMessageItem):
                    if narration is not None and narration.completed(event.item):
                        continue  # commentary, held back
                    if event.item.withheld:  # Codex's moderation hid or blocked the answer
                        result.text.withhold(event.item.id)
                        result.finish_reason = "content_filter"
                        result.clean = False
                    else:
                        out = result.text.complete(event.item.id, event.item.text)
                elif isinstance(event, TurnFinished):
                    finished = event  # the last event: let the turn close itself before judging it
                    if self.options.caller_gone():
                        raise CallerGone()  # not taken: a session's turn is dropped
                    turn.forget = turn.forget and event.failed  # (a session's turn, taken as an answer or not)
                    continue
                elif isinstance(event, ToolCallsRequested):
                    result.tool_calls, result.usage = event.calls, event.usage
                    out = _narrated(result.text, narration) + result.text.finish()
                if out and streaming:
                    yield _Piece(index, out)
                if result.text.stopped:
                    result.clean = False
                    # Cut at the stop sequence, but an answer: once the turn has ended, unless the
                    # request is cancelled before (its caller then gets no answer: a session drops it).
                    turn.hold_end()
                    taken = False
                    try:
                        result.usage = await _usage_after_stop(turn, events)
                        if self.options.caller_gone():
                            raise CallerGone()
                        taken = True
                    finally:
                        turn.settle(taken)
                    break
        except TurnTimedOut as exc:  # reported as the request's deadline (rounded, with its source)
            if type(exc) is not TurnTimedOut or self.options.timeout is None:
                raise
            raise TurnTimedOut(
                self.options.timeout, self.options.timeout_source, between_events=exc.between_events, acted=exc.acted
            ) from exc
        finally:
            await events.aclose()
        if result.tool_calls:
            self._suspended(result)  # before the calls go out: their results may come back at once
            if streaming:
                yield _Piece(index, "", result.tool_calls)
            results.append(result)
            return
        if finished is not None:
            result.usage = finished.usage
            self._finish(result, finished)
            out = _narrated(result.text, narration) + result.text.finish()
            if out and streaming:
                yield _Piece(index, out)
            if result.text.stopped:
                result.clean = False
        if result.clean and self.session_id is None:  # a session's thread is continued by name only
            self.engine.threads.remember(handle, self.parsed.conversation, (result.text.text,))
        prompt = self.parsed.conversation.prompt
        if self.session_id is not None and prompt is not None:  # named.thread refused anything else
            self.engine.named.turn_done(
                self.session_id, handle, turn.turn_id, self.parsed.request.model, prompt, result.text.text
            )
        results.append(result)

    def _suspended(self, result: _ChoiceResult) -> None:
        """The turn waits for the caller's tool results: answer with its calls; a retry gets them again."""
        result.finish_reason, result.clean = "tool_calls", False
        suspension = self.engine.suspensions.for_thread(result.handle.thread_id)
        if suspension is not None:
            suspension.text = result.text.text
            self.engine.suspensions.tag_origin(suspension, self._origin())

    def _replay(self, index: int, suspension: Suspension, streaming: bool) -> tuple[_ChoiceResult, list[_Piece]]:
        handle = suspension.turn.handle
        result = _ChoiceResult(index, handle, ChoiceText((), streaming=streaming), usage=suspension.usage)
        result.tool_calls = suspension.calls
        text = result.text.complete("replay", suspension.text) + result.text.finish()
        result.finish_reason, result.clean = "tool_calls", False
        if not streaming:
            return result, []
        pieces = [_Piece(index, text)] if text else []
        return result, [*pieces, _Piece(index, "", suspension.calls)]

    def _finish(self, result: _ChoiceResult, event: TurnFinished) -> None:
        if event.failed:
            message = event.error_message or "Codex turn failed"
            raise TurnFailed(message, event.error_info, result.text.text, acted=event.acted)
        if event.status == "failed":  # a model response cut for length: an answer, not a failure
            result.finish_reason = "length"
            result.clean = False
            return
        if event.status == "interrupted":
            result.clean = False
            result.interrupted = True
            if self.options.control is not None:
                self.options.control.interrupted = True

    async def gather(self) -> list[_ChoiceResult]:
        handles = await self.options.before(self.deadline, self._sources())
        if len(handles) == 1:  # the usual n=1: no task to start and gather, a few loop steps fewer
            return [await self._run_choice(0, handles[0], None)]
        tasks = [asyncio.create_task(self._run_choice(i, h, None)) for i, h in enumerate(handles)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def chunks(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        handles = await self.options.before(self.deadline, self._sources())
        results: list[_ChoiceResult] = []
        # the usual n=1 runs in the caller's task: each piece reaches the stream one loop step sooner
        pieces = self._choice(0, handles[0], True, results) if len(handles) == 1 else self._merged(handles, results)
        started: set[int] = set()
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                if not started and len(handles) > 1:  # each choice starts in index order, as OpenAI's do:
                    for index in range(len(handles)):  # openai's stream helper reads choices in that order
                        yield self._chunk([ChunkChoice(index=index, delta=Delta(role="assistant", content=""))])
                    started.update(range(len(handles)))
                delta = Delta(tool_calls=tool_call_deltas(piece.calls)) if piece.calls else Delta(content=piece.text)
                if piece.index not in started:
                    started.add(piece.index)
                    delta.role = "assistant"
                yield self._chunk([ChunkChoice(index=piece.index, delta=delta)])
        for r in results:
            if r.index not in started:  # nothing said: its role comes first, alone, as OpenAI's does
                yield self._chunk([ChunkChoice(index=r.index, delta=Delta(role="assistant", content=""))])
            finish = self._chunk([ChunkChoice(index=r.index, delta=Delta(), finish_reason=r.finish_reason)])
            if r.interrupted:
                finish.interrupted = True
            yield finish
        if self._with_usage:
            yield self._chunk([], usage=Usage.from_turns([r.usage for r in results]))

    async def _merged(self, handles: list[_Source], results: list[_ChoiceResult]) -> AsyncGenerator[_Piece, None]:
        """n > 1: every choice's pieces as they come, each choice in a task of its own; their
        results are appended to ``results`` in choice order once all are done."""
        sink: _Sink = Inbox()
        tasks = [asyncio.create_task(self._run_choice(i, h, sink)) for i, h in enumerate(handles)]
        for task in tasks:
            task.add_done_callback(lambda _t: sink.put_nowait(_Done()))
        try:
            pending = len(tasks)
            while pending:
                piece = await sink.get()
                if isinstance(piece, _Done):
                    pending -= 1
                    for task in tasks:
                        if task.done() and not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                    continue
                yield piece
            results.extend(task.result() for task in tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.completion_id,
            created=self.created,
            model=self.model,
            choices=choices,
            usage=usage if self._with_usage else msgspec.UNSET,
        )
