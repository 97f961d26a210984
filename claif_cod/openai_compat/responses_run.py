"""One ``responses.create`` call: its turn started on the thread its request names, its events, and
the response saved as it goes (see :mod:`.responses_service`)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncGenerator

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire_items
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.conversations import Conversation, HistoryItem
from claif_cod.engine.engine import Engine, ThreadHandle, Turn, TurnOptions
from claif_cod.engine.errors import (
    CallerToolsNotResumable,
    CodexRpcError,
    InvalidRequest,
    RolloutCutShort,
    ThreadUnloaded,
    ToolSetChanged,
    TurnFailed,
    TurnTimedOut,
)
from claif_cod.engine.events import ItemCompleted, ItemStarted, TurnEvent, TurnFinished
from claif_cod.engine.tools import DEFAULT_TOOL_TIMEOUT_S
from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_calls import calls_made, check_calls
from claif_cod.openai_compat.responses_items import listed_items
from claif_cod.openai_compat.responses_replay import replayed
from claif_cod.openai_compat.responses_request import ParsedResponses, conversation_id
from claif_cod.openai_compat.responses_schema import (
    TERMINAL_EVENTS,
    ConversationEcho,
    FunctionCallOutput,
    OutputMessage,
    ReasoningEcho,
    Response,
    ResponseCreated,
    ResponseEvent,
    ResponseInProgress,
    ResponseStatus,
    TextEcho,
    TextFormatEcho,
)
from claif_cod.openai_compat.responses_store import ResponseRecord, ResponseStore, forgotten
from claif_cod.openai_compat.responses_stream import ResponseBuilder
from claif_cod.openai_compat.text import Narration

log = get_logger("claif_cod.responses")

_encoder = msgspec.json.Encoder()


class ResponseRun:
    """One ``responses.create`` call: one turn on the thread its ``previous_response_id`` names."""

    def __init__(
        self,
        engine: Engine,
        store: ResponseStore,
        conversations: ConversationsService,
        parsed: ParsedResponses,
        options: RequestOptions,
        streaming: bool,
    ):
        self.engine, self.store, self.conversations = engine, store, conversations
        self.parsed = parsed
        self.options = options
        self.streaming = streaming
        self.deadline = options.deadline()
        """The request's, from its start: starting Codex, the thread and the turn count."""
        self.request = parsed.request
        self.conversation_id = conversation_id(parsed.request)
        self.response = Response(
            id=f"resp_{os.urandom(16).hex()}",
            created_at=int(time.time()),
            model=parsed.request.model or "codex-default",
            status="in_progress",
            output=[],
            instructions=parsed.request.instructions,
            metadata=parsed.request.metadata or {},
            previous_response_id=parsed.request.previous_response_id,
            conversation=None if self.conversation_id is None else ConversationEcho(self.conversation_id),
            reasoning=ReasoningEcho(
                effort=parsed.request.reasoning.effort if parsed.request.reasoning else None,
                summary=parsed.request.reasoning.summary if parsed.request.reasoning else None,
            ),
            text=TextEcho(format=_format_echo(parsed)),
            store=parsed.request.stored,
            user=parsed.request.user,
            safety_identifier=parsed.request.safety_identifier,
        )
        self.instructions = parsed.instructions
        narration = Narration() if parsed.output_schema is not None else None
        self.builder = ResponseBuilder(self.response, streaming=streaming, narration=narration)
        # The input is kept for input_items.list and replays, and added to the conversation once the
        # response completed; store=false keeps it nowhere else.
        keep = parsed.request.stored or self.conversation_id is not None
        self.listed = listed_items(parsed.request.input) if keep else []
        self.input_items = _encoder.encode(self.listed) if parsed.request.stored else b"[]"
        self.handle: ThreadHandle | None = None
        self.turn: Turn | None = None
        self.conversation: Conversation | None = None
        """The input as a stateless conversation, when it started or continued one by its history."""
        self.ended = False
        """Its terminal event was made (and the response saved as it ended)."""
        self.seen = False
        """The caller has the response's id: a stream handed out its first event, or the whole
        response is being returned. Until then, a request that ends leaves no response behind."""
        if self.conversation_id is not None:
            # its items were read just now by the parse, with no await since: it runs on the newest
            self.conversations.claim(self.conversation_id)
        self.holds_conversation = self.conversation_id is not None

    # --- starting ------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.options.config
        previous_id = self.request.previous_response_id
        previous = None if previous_id is None else self._previous(previous_id)  # None once its chain is replayed
        if previous is not None:
            check_calls(self.parsed.history, waiting=calls_made(previous.body))
        key = await self.engine.resolve(config, self.options.warn)
        inject: list[HistoryItem | str] = []
        results = self.parsed.pending_results()
        suspension = self.engine.suspensions.for_results(results) if results else None
        options = self._turn_options()
        # a turn cannot take other developer instructions midway, as it cannot another model
        other_instructions = previous is not None and self.instructions not in (None, previous.instructions)
        if suspension is not None and (
            other_instructions or not self.engine.resumable(suspension, key, self.parsed.tools, options)
        ):
            self.engine.release(suspension)  # the transcript goes to a new thread below, as for a turn gone
            suspension = None
        if suspension is not None:
            # The input answers calls a suspended turn is waiting for: that same turn goes on.
            if previous is not None:
                self.instructions = previous.instructions  # its thread's, for a replay of this chain
            self._claim(suspension.turn.handle)
            if previous is None:  # a whole transcript: its answer is remembered, as a new thread's
                self.conversation = self._as_conversation()
            try:
                self.turn = self.engine.resume_tools(suspension, results, options)
            except BaseException:
                self.store.delete(self.response.id)
                raise
            await self._attach()
            return
        if results and previous is not None:
            # The turn that made the calls is gone (a restart, its tool_timeout): replay the stored chain.
            gone = f"the tool calls of response '{previous.response_id}' are no longer waiting for results"
            await self._replay(previous.response_id, gone)
            previous = None
        if previous is not None and self.engine.suspensions.for_thread(previous.thread_id) is not None:
            # Its thread's turn waits for outputs (a later response's calls, or this one's answered
            # with a message after them): no turn can start there, so the chain takes a thread of its own.
            await self._replay(
                previous.response_id, f"the thread of response '{previous.response_id}' waits for outputs"
            )
            previous = None
        if previous is not None:
            try:
                tools = self.parsed.tools
                source = await self.engine.threads.resume(key, config.api_key, previous.thread_id, tools=tools)
                if self.store.tip(previous.thread_id) != previous.response_id:
                    source = await self.engine.threads.fork(source, last_turn_id=previous.turn_id)
                    log.info("responses.branch", previous=previous.response_id, thread_id=source.thread_id)
            except (CallerToolsNotResumable, ToolSetChanged) as exc:
                # Codex would not report the calls of a resumed or forked thread, and cannot change a
                # thread's tools: a new thread gets the chain.
                why = "has caller tools" if isinstance(exc, CallerToolsNotResumable) else "was started with other tools"
                await self._replay(previous.response_id, f"the thread of response '{previous.response_id}' {why}")
                previous = None
            except (CodexRpcError, RolloutCutShort) as exc:
                # Codex's rollout of the thread is gone, unreadable or cut short (it would go on with
                # part of the chain): the store keeps the chain, as a named session's registry does.
                said = exc.message[:300]
                log.warning(
                    "responses.thread_lost", previous=previous.response_id, thread_id=previous.thread_id, error=said
                )
                gone = f"the Codex thread of response '{previous.response_id}' cannot be continued as recorded ({said})"
                await self._replay(previous.response_id, gone)
                previous = None
            else:
                handle = source
                self._claim(handle)  # no await since the tip check: nobody else can claim it in between
                if self.instructions and self.instructions != previous.instructions:
                    inject.append(self.instructions)
                else:
                    self.instructions = previous.instructions
                inject.extend(self.parsed.history)
        if not results:  # (once the chain's thread is chosen: not the one whose turn waited, then given up)
            self.engine.release_answered(self.parsed.history)
        if previous is None:
            handle = await self._start_thread(key)
        self.handle = handle
        try:
            try:
                self.turn = await self._start_turn(handle, inject)
            except ThreadUnloaded:
                if previous is not None:  # (a stored response's thread is resumed, not lost)
                    raise
                log.info("responses.thread_reseeded", thread_id=handle.thread_id)
                self.turn = await self._start_turn(await self._start_thread(key), inject)  # nothing of it ran
        except BaseException:
            # The caller is told it failed: it must not have happened. Codex may have the history
            # injected, or the turn given up once named: a tombstone, not a deletion, keeps the
            # thread's order, so that a continuation of the response before it forks past them.
            self.store.forget(self.response.id)
            raise
        await self._attach()

    async def _start_turn(self, handle: ThreadHandle, inject: list[HistoryItem | str]) -> Turn:
        await self.engine.threads.inject(handle, inject)
        return await self.engine.start_turn(
            handle, self.parsed.prompt, self._turn_options(), images=self.parsed.prompt_images
        )

    def abandon(self) -> None:
        """The request failed before it was handed out (its deadline, a cancel): a turn it started is
        given up, and a response it recorded leaves a tombstone, as in :meth:`events`."""
        if self.turn is not None:
            self.turn.give_up()
        self.store.forget(self.response.id)  # (nothing when it recorded none)

    async def _attach(self) -> None:
        """The turn is under way: recorded, and interruptible by ``turn.interrupt`` naming the request."""
        self._save(None)
        if self.options.control is not None and self.turn is not None:
            await self.options.control.attach(self.turn)

    async def _start_thread(self, key: ProcessKey) -> ThreadHandle:
        """The thread for an input without ``previous_response_id``: warm when the input is the whole
        transcript of an earlier response's conversation (what most agent libraries re-send each
        turn), else a new one seeded with the input's history, as for ``chat.completions``."""
        self.conversation = self._as_conversation()
        (handle,), warm = await self.engine.threads.open_conversation(
            key,
            self.options.config.api_key,
            self.conversation,
            model=self.request.model,
            tools=self.parsed.tools,
            # A stored response is continued or branched by id, also after a restart: that needs a
            # rollout. One that is not stored cannot be referred to again, so it costs no rollout.
            ephemeral=not self.request.stored,
        )
        log.debug("responses.thread", warm=warm)
        self._claim(handle)
        return handle

    def _as_conversation(self) -> Conversation:
        return Conversation(
            self.instructions, self.parsed.history, self.parsed.prompt, self.parsed.prompt_images, api="responses"
        )

    def _remember(self) -> None:
        """A completed response without calls is its conversation's warm continuation: the caller that
        re-sends the whole input next time, with its messages in it, continues the thread."""
        if self.conversation is None or self.handle is None or self.response.status != "completed":
            return
        if any(isinstance(item, FunctionCallOutput) for item in self.response.output):
            return
        replies = tuple(
            "\n".join(part.text for part in item.content)  # as the parser joins a message's parts
            for item in self.response.output
            if isinstance(item, OutputMessage)
        )
        self.engine.threads.remember(self.handle, self.conversation, replies)

    def _ended(self) -> None:
        """The response is complete, and its last event goes out next: a stream's consumer may act on
        that event at once (and never ask for another), so what it may rely on is in place first: the
        warm thread remembered, the conversation's new items, the record."""
        self._remember()
        self._add_to_conversation()
        self.release_conversation()
        self.seen = True
        self._save(None)
        self.ended = True

    def _add_to_conversation(self) -> None:
        """As OpenAI does once a response completed: its input, then its output, become items of its
        conversation (before the caller has the response, so that its next request finds them)."""
        if self.conversation_id is None or self.response.status not in ("completed", "incomplete"):
            return
        output = [msgspec.to_builtins(item) for item in self.response.output]
        self.conversations.append(self.conversation_id, [*self.listed, *output])

    def release_conversation(self) -> None:
        """The next response on the conversation may start (once: by then another may hold it)."""
        if self.holds_conversation:
            self.holds_conversation = False
            assert self.conversation_id is not None
            self.conversations.release(self.conversation_id)

    async def _replay(self, previous_id: str, why: str) -> None:
        """Make this request the whole transcript of ``previous_id``'s conversation plus its own input."""
        options = self.options
        replay = replayed(
            self.store, self.parsed, previous_id, default_model=options.default_model, strict=options.strict
        )
        if replay is None:
            message = (
                f"{why}, and a response of its conversation is gone; "
                "send the whole transcript without previous_response_id"
            )
            raise InvalidRequest(message, param="previous_response_id")
        await replay.with_images()
        self.parsed, self.instructions = replay, replay.instructions
        log.info("responses.replayed", previous=previous_id, items=len(replay.history))

    def _previous(self, previous_id: str) -> ResponseRecord:
        previous = self.store.get(previous_id)
        if previous is None or not previous.stored or previous.turn_id is None:
            message = f"Previous response with id '{previous_id}' not found."
            raise InvalidRequest(message, param="previous_response_id", code="previous_response_not_found")
        return previous

    def _claim(self, handle: ThreadHandle) -> None:
        """Record the response (in progress) as its thread's newest, before anything can race it.
        The thread moves on from whatever transcript it was the warm continuation of."""
        self.handle = handle
        self.engine.threads.forget(handle.thread_id)
        self._save(None)

    def _turn_options(self) -> TurnOptions:
        reasoning = self.request.reasoning
        return TurnOptions(
            model=self.request.model,
            effort=reasoning.effort if reasoning else None,
            summary=reasoning.summary if reasoning else None,
            output_schema=self.parsed.output_schema,
            deadline=self.deadline,
            gap_timeout=self.options.timeout if self.request.stream else None,
            approvals=self.options.approvals,
            tool_timeout=self.request.tool_timeout or DEFAULT_TOOL_TIMEOUT_S,
        )

    def _save(self, status: ResponseStatus | None) -> None:
        if status is not None:
            self.response.status = status
        assert self.handle is not None
        if self.request.stored and self.store.deleted(self.response.id):
            return  # deleted (responses.delete) as soon as it ended: it stays deleted
        record = ResponseRecord(
            response_id=self.response.id,
            thread_id=self.handle.thread_id,
            turn_id=self.turn.turn_id if self.turn else None,
            working_dir=self.handle.key.working_dir,
            instructions=self.instructions,
            created_at=self.response.created_at,
            stored=self.request.stored,
            body=_encoder.encode(self.response),
            input=self.input_items,
        )
        # store=false: only its place in its thread is kept (a later turn there makes an older
        # response's continuation a fork), nothing the caller sent or got
        self.store.put(record if self.request.stored else forgotten(record))

    # --- events --------------------------------------------------------------------------------

    def handed_out(self) -> None:
        """A stream's consumer asked for its first event: from then on the caller has the id."""
        self.seen = True

    async def events(self) -> AsyncGenerator[ResponseEvent, None]:
        assert self.turn is not None
        turn_events = self.turn.events()
        opened = False
        try:
            async for event in turn_events:
                if isinstance(event, TurnFinished):
                    if not opened:
                        self._raise_if_failed_early(event)
                    if event.status == "interrupted" and self.options.control:
                        self.options.control.interrupted = True
                # The response begins once the model has taken the request, as OpenAI's: with its first
                # output or item (a command it runs, its reasoning), or its end. A turn that fails before
                # (the user's message echoed back is no sign of the model) fails the request itself,
                # with an HTTP status.
                opening: list[ResponseEvent] = (
                    []
                    if opened
                    else [
                        ResponseCreated(response=self.builder.snapshot()),
                        ResponseInProgress(response=self.builder.snapshot()),
                    ]
                )
                events = self.builder.translate(event)
                if not events and (opened or not _of_the_model(event)):
                    continue
                opened = True
                for translated in self.builder.numbered([*opening, *events]):
                    if isinstance(translated, TERMINAL_EVENTS):
                        self._ended()
                    yield translated
        except TurnTimedOut as exc:  # its deadline: failed, saying so, as over HTTP (not cancelled)
            if self.response.status == "in_progress":
                self.builder.fail(str(exc))
            raise
        finally:
            await turn_events.aclose()
            self.release_conversation()
            if self.response.status == "in_progress":
                self.builder.cancel()  # the caller stopped listening or the turn raised
            if not self.seen:
                # The caller was told the request failed (or gave up on it) without ever seeing its
                # id: it must not have happened. A tombstone keeps the thread's order, so that a
                # continuation of the response before it forks past the abandoned turn.
                self.store.forget(self.response.id)
            elif not self.ended:  # (one that ended was saved then)
                self._save(None)

    def cut_short(self, message: str) -> list[ResponseEvent]:
        """``response.failed``, saying why; for a stream begun before its first event (``claif-codd
        --http`` keeping a slow start alive), opened first, as OpenAI's streams always are."""
        if self.seen:
            out = self.builder.numbered(self.builder.fail(message))
            self._save(None)  # the events generator has already ended (and saved it as cancelled)
            return out
        # the caller had no id until now: the response was forgotten as it failed, and stays so
        opened = msgspec.structs.replace(self.builder.snapshot(), status="in_progress")
        opening: list[ResponseEvent] = [ResponseCreated(response=opened), ResponseInProgress(response=opened)]
        return self.builder.numbered([*opening, *self.builder.fail(message)])

    def _raise_if_failed_early(self, event: TurnFinished) -> None:
        """A turn that failed before saying anything fails the request itself (an HTTP status)."""
        if event.failed:
            self.response.status = "failed"
            raise TurnFailed(event.error_message or "Codex turn failed", event.error_info, acted=event.acted)


def _of_the_model(event: TurnEvent) -> bool:
    """An item the model's answer made (anything but the user's message, which Codex echoes first)."""
    if not isinstance(event, ItemStarted | ItemCompleted):
        return False
    return not (isinstance(event.item, wire_items.OtherItem) and event.item.type == "userMessage")


def _format_echo(parsed: ParsedResponses) -> TextFormatEcho:
    text = parsed.request.text
    fmt = text.format if text else None
    if fmt is None:
        return TextFormatEcho(type="text")
    return TextFormatEcho(type=fmt.type, name=fmt.name, schema=fmt.schema, strict=fmt.strict)
