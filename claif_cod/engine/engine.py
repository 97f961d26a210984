"""The engine: warm Codex processes, threads and turns, shared by the client and the daemon.

Callers speak in conversations and turns; the engine decides which process and thread
serve them (warm continuation, fork or fresh start), runs one turn at a time per thread,
enforces deadlines with ``turn/interrupt`` and routes approval requests to whoever owns
the running turn.

Failure rules (timings from :class:`~claif_cod.engine.liveness.Liveness`):

* A turn whose process exits fails at once with :class:`CodexProcessDied`; its thread
  is resumed on a fresh process by the next request that needs it.
* A turn past its caller's deadline raises :class:`TurnTimedOut`; in the background it
  is interrupted, and if no ``turn/completed`` follows within ``interrupt_grace`` the
  thread is retired and the process probed: a process that does not answer the probe is
  hung, so it is killed and replaced on the next request.
* A turn with no deadline may run as long as Codex needs, but when it has heard
  nothing for ``turn_silence`` the process is probed; a hung process is killed and the
  turn fails with :class:`CodexProcessHung`.
* Requests (thread/start, turn/start, inject, resume, model/list...) have a deadline of
  their own (``request_timeout``) and the same probe when it passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import idle, wire
from claif_cod.engine import liveness as _liveness
from claif_cod.engine.approval_asks import ApprovalAsks
from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest, Decision, FileChange, decline_all
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.binaries import Binaries
from claif_cod.engine.config import CodexConfig, ProcessKey
from claif_cod.engine.conversations import HistoryItem, results_then_said
from claif_cod.engine.discovery import CodexBinary
from claif_cod.engine.errors import (
    CodexProcessDied,
    CodexProcessHung,
    CodexRequestTimedOut,
    CodexRpcError,
    TurnNotStarted,
)
from claif_cod.engine.events import ToolCallsRequested
from claif_cod.engine.idle import UNLOAD_DELAY_OVERRIDE
from claif_cod.engine.images import Image, turn_images
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.liveness import Liveness
from claif_cod.engine.named_sessions import NamedSessions
from claif_cod.engine.pool import ProcessPool
from claif_cod.engine.sessions import MemorySessionStore, SessionStore
from claif_cod.engine.suspensions import DEFAULT_MAX_SUSPENDED, Suspension, Suspensions
from claif_cod.engine.thread_handle import ThreadHandle, retarget_params
from claif_cod.engine.thread_messages import ThreadMessage
from claif_cod.engine.threads import Threads
from claif_cod.engine.tools import DEFAULT_TOOL_TIMEOUT_S, ThreadTools, ToolResult, ToolRouter
from claif_cod.engine.turns import Turn, TurnOptions, TurnOutcome
from claif_cod.engine.waiting import within

log = get_logger("claif_cod.engine")


class Engine:
    """Runs conversations on warm Codex processes; one instance per client or per daemon."""

    def __init__(
        self,
        *,
        max_processes: int = 8,
        env: Mapping[str, str] | None = None,
        sessions: SessionStore | None = None,
        liveness: Liveness | None = None,
        thread_idle_timeout: float | Literal["default"] | None = "default",
        max_suspended_turns: int = DEFAULT_MAX_SUSPENDED,
    ) -> None:
        self._env = env
        self.liveness = liveness or _liveness.DEFAULT_LIVENESS
        """Deadlines that tell a slow Codex from a hung one (see the module documentation)."""
        self._pool = ProcessPool(
            handle_server_request=self._on_server_request,
            max_processes=max_processes,
            base_env=env,
            liveness=self.liveness,
            config_overrides=[UNLOAD_DELAY_OVERRIDE],
        )
        self._active: dict[str, Turn] = {}
        self._running: dict[str, TurnOptions] = {}
        """The options of each thread's running turn: its approvals and tool timeout are asked for as it
        runs, and those of the request whose tool results resumed it replace them."""
        self._binaries = Binaries(env)
        if thread_idle_timeout == "default":
            thread_idle_timeout = idle.DEFAULT_THREAD_IDLE_TIMEOUT_S  # read now, so tests may replace it
        self.threads = Threads(
            self._pool, self._codex_version, thread_idle_timeout, after_sweep=lambda: self.named.prune_locks()
        )
        """Which thread serves a conversation (see engine/threads.py)."""
        self.named = NamedSessions(sessions or MemorySessionStore(), self.threads, env, self._active.get)
        """Named sessions and their threads (see engine/named_sessions.py)."""
        self._tool_router = ToolRouter()
        self._asks = ApprovalAsks(self._approvals_of, self._file_changes)
        self._giving_up: set[asyncio.Task[None]] = set()
        """Turns whose caller left before Codex named them (see :meth:`start_turn`), and failed turns
        a named session's thread drops (:meth:`_forget`)."""
        self.suspensions = Suspensions(self._suspension_expired, max_suspended_turns)
        """Turns waiting for caller tool results (see :mod:`claif_cod.engine.tools`)."""

    @property
    def sessions(self) -> SessionStore:
        return self.named.book.store

    @sessions.setter
    def sessions(self, store: SessionStore) -> None:
        self.named.book.store = store

    # --- resolution ---------------------------------------------------------------------

    async def binary(self, codex_path: str | None) -> CodexBinary:
        return await self._binaries.binary(codex_path)

    def known_binary(self, path: str) -> CodexBinary | None:
        return self._binaries.known(path)

    async def resolve(self, config: CodexConfig, warn: Callable[[str], None] | None = None) -> ProcessKey:
        """The process ``config`` selects (see engine/binaries.py), its directories there (a warm
        process outlives the deletion of its working directory: see ``ProcessKey.missing_directory``)."""
        key = await self._binaries.resolve(config, warn)
        missing = key.missing_directory()
        if missing is not None:
            raise missing
        return key

    async def _codex_version(self, path: str) -> str:
        binary = self.known_binary(path)
        if binary is None:
            binary = await self.binary(path)
        return binary.version

    # --- turns ---------------------------------------------------------------------------

    async def start_turn(
        self, handle: ThreadHandle, text: str | None, options: TurnOptions, *, images: Sequence[Image] = ()
    ) -> Turn:
        """Start a turn once the thread is free; the returned :class:`Turn` owns the thread until it ends.

        ``text`` None starts a turn without a new user message: the model answers the history as it
        stands (tool results injected with the thread, by a caller replaying a transcript).  Cancelled
        once Codex has ``turn/start``, the turn starts anyway: it is given up once Codex names it
        (interrupted; the thread stays taken until Codex confirms), as a turn whose caller left is.
        Interrupted before (``options.interrupted``), it starts nothing: :class:`TurnNotStarted`."""
        await self.threads.tools_setup.check_model(handle, options.model)  # caller tools in code mode
        await handle.lock.acquire()
        held: AppServer | None = None
        image_inputs: list[wire.UserInput] = []
        queue: Inbox[ThreadMessage] | None = None
        given_up: list[asyncio.Future[msgspec.Raw]] = []
        try:
            await self.threads.ensure_loaded(handle)
            await self.named.before_turn(handle)
            held = handle.server
            self._pool.hold(held)  # let go in _turn_done: a process with a turn in flight is never evicted
            queue = handle.server.subscribe(handle.thread_id)
            self._running[handle.thread_id] = options
            image_inputs = await turn_images(images)
            effort = await self._effort_change(handle, options.effort)
            if options.interrupted():  # (the last await before turn/start is behind us)
                raise TurnNotStarted()
            # A request without a summary wants none, as OpenAI's do ("none" undoes an earlier turn's).
            summary = None if options.summary == handle.summary else (options.summary or "none")
            result = await handle.server.request(
                "turn/start",
                wire.TurnStartParams(
                    thread_id=handle.thread_id,
                    input=[*([] if text is None else [wire.TextInput(text=text)]), *image_inputs],
                    model=None if options.model == handle.model else options.model,
                    effort=effort,
                    summary=summary,
                    output_schema=options.output_schema,
                    **retarget_params(handle),
                ),
                wire.TurnStartResult,
                cancelled=given_up.append,
            )
            self._started(handle, options, effort)
        except BaseException as exc:
            if given_up and queue is not None:  # Codex has the turn/start
                giving_up = self._give_up_once_named(handle, queue, options, effort, given_up[0])
                task = asyncio.get_running_loop().create_task(giving_up)
                self._giving_up.add(task)
                task.add_done_callback(self._giving_up.discard)
            else:
                self._start_failed(handle, held, exc)
            raise
        return self._turn(handle, result.turn.id, queue, options)

    def _started(self, handle: ThreadHandle, options: TurnOptions, effort: str | None) -> None:
        handle.retarget = False
        if options.model:
            handle.model = options.model  # a turn's model and effort stay the thread's
        if effort is not None:
            handle.effort = options.effort or handle.base_effort
        handle.summary = options.summary

    def _start_failed(self, handle: ThreadHandle, held: AppServer | None, exc: BaseException) -> None:
        if held is not None:
            self._pool.let_go(held)
        self._running.pop(handle.thread_id, None)
        handle.server.unsubscribe(handle.thread_id)
        if isinstance(exc, CodexRequestTimedOut):
            # Codex may still start the turn; a later turn/start would then steer it.
            handle.broken = True
            self.threads.forget(handle.thread_id)
        handle.lock.release()

    def _turn(self, handle: ThreadHandle, turn_id: str, queue: Inbox[ThreadMessage], options: TurnOptions) -> Turn:
        handle.turns += 1
        handle.last_used = time.time()
        turn = Turn(
            handle,
            turn_id,
            queue,
            options.timeout(),
            self._turn_done,
            self._suspended,
            self._interrupted,
            gap=options.gap_timeout,
        )
        turn.forget = options.forget_failed
        self._active[handle.thread_id] = turn
        return turn

    async def _give_up_once_named(
        self,
        handle: ThreadHandle,
        queue: Inbox[ThreadMessage],
        options: TurnOptions,
        effort: str | None,
        answer: asyncio.Future[msgspec.Raw],
    ) -> None:
        """A turn started for a caller who left before Codex named it: given up once named."""
        try:
            raw = await within(answer, handle.server.liveness.request_timeout)
            turn_id = msgspec.json.decode(raw, type=wire.TurnStartResult).turn.id
        except Exception as exc:  # no turn, or none known: its thread's state is in doubt
            handle.broken = True
            self.threads.forget(handle.thread_id)
            self._start_failed(handle, handle.server, exc)
            return
        self._started(handle, options, effort)
        self._turn(handle, turn_id, queue, options).give_up()

    async def _effort_change(self, handle: ThreadHandle, wanted: str | None) -> str | None:
        """The effort ``turn/start`` must carry: None when the thread already runs at the one wanted
        (a turn that names none wants the thread's own, which may mean undoing an earlier turn's)."""
        target = wanted or handle.base_effort
        if target == handle.effort:
            return None
        if target is None:  # back to the model's default, which Codex only names in its model list
            try:
                models = await _models_of(handle.server)
            except CodexRpcError as exc:  # not worth failing the turn over: it runs at the old effort
                log.warning("turn.effort_not_reset", model=handle.model, effort=handle.effort, error=str(exc))
                return None
            target = next((m.default_reasoning_effort for m in models if handle.model in (m.id, m.model)), None)
            if target is None:
                log.warning("turn.effort_not_reset", model=handle.model, effort=handle.effort)
        return target

    # --- caller tools (see claif_cod.engine.tools) ------------------------------------------

    def _suspended(self, turn: Turn, event: ToolCallsRequested) -> None:
        suspension = Suspension(turn, event.calls, "", event.usage, turn.handle.tools)
        running = self._running.get(turn.handle.thread_id)
        self.suspensions.add(suspension, running.tool_timeout if running is not None else DEFAULT_TOOL_TIMEOUT_S)

    def resumable(self, suspension: Suspension, key: ProcessKey, tools: ThreadTools, options: TurnOptions) -> bool:
        """Whether a request whose tool results answer ``suspension`` can go on in its turn: its process
        is still there, and the request asks for the same Codex settings, tools, model, reasoning and
        output schema as the turn was started with (a turn cannot change them midway: else the
        caller's transcript goes to a new thread, see :meth:`release`)."""
        turn = suspension.turn
        started = self._running.get(turn.handle.thread_id)
        return (
            turn.server.alive
            and started is not None
            and turn.handle.key == key
            and suspension.tools == tools
            and options.model in (None, started.model)
            and (options.effort, options.summary) == (started.effort, started.summary)
            and options.output_schema == started.output_schema
        )

    def release(self, suspension: Suspension) -> None:
        """End a suspension answered by a request that cannot go on in it: nobody else will answer its
        calls, so its turn is given up now rather than holding its thread until its tool timeout."""
        self.suspensions.take(suspension)
        suspension.turn.give_up()

    def release_answered(self, history: Sequence[HistoryItem]) -> None:
        """A request whose history answers a suspended turn's calls and goes on past them (a user
        message after the results) runs as a transcript on a thread of its own: the turn that made
        the calls is given up now, rather than holding its thread until its tool timeout."""
        results = results_then_said(history)
        suspension = self.suspensions.for_results(results) if results else None
        if suspension is not None:
            self.release(suspension)

    def resume_tools(self, suspension: Suspension, results: tuple[ToolResult, ...], options: TurnOptions) -> Turn:
        """Hand the results to the suspended turn; iterate the returned turn's ``events()`` for what
        follows.  The request's deadlines, approvals and tool timeout are the turn's from now on (its
        other options are the turn's own: see :meth:`resumable`)."""
        self.suspensions.take(suspension)
        turn = suspension.turn
        self._running[turn.handle.thread_id] = options
        turn.resume(options.timeout(), options.gap_timeout)
        self._tool_router.answer(turn.handle.thread_id, results)
        return turn

    def _suspension_expired(self, suspension: Suspension) -> None:
        suspension.turn.give_up()

    def _interrupted(self, turn: Turn) -> None:
        reason = "no result: the turn was given up (caller deadline, disconnect or tool_timeout)"
        self._tool_router.drop_thread(turn.handle.thread_id, reason)

    def active_turn(self, thread_id: str) -> Turn | None:
        """The turn running on ``thread_id``, if any (for interrupting it from elsewhere)."""
        return self._active.get(thread_id)

    @property
    def turns_in_flight(self) -> int:
        return len(self._active)

    def _turn_done(self, turn: Turn, outcome: TurnOutcome) -> None:
        handle = turn.handle
        if self._active.get(handle.thread_id) is turn:
            del self._active[handle.thread_id]
        self._running.pop(handle.thread_id, None)
        turn.server.unsubscribe(handle.thread_id)
        handle.last_used = time.time()
        self._tool_router.drop_thread(handle.thread_id, "the turn ended before the tool result arrived")
        self._asks.give_up(handle.thread_id)
        suspension = self.suspensions.for_thread(handle.thread_id)
        if suspension is not None and suspension.turn is turn:
            self.suspensions.take(suspension)
        if outcome == "broken":
            self.threads.forget(handle.thread_id)
        elif outcome == "done":
            self._pool.mark_healthy(handle.key)
        if turn.unsettled:  # its caller says first whether it takes the turn's end: the thread waits
            self._later(self._when_settled(turn, outcome))
            return
        self._keep_or_drop(turn, outcome)

    def _keep_or_drop(self, turn: Turn, outcome: TurnOutcome) -> None:
        """Let go of the ended turn's thread, once a turn its caller was told failed is dropped from it."""
        if turn.forget and outcome == "done":  # the thread drops it before it takes another turn
            self._later(self._forget(turn))
            return
        if turn.forget:  # its process went with it: dropped once the thread is loaded again
            self.named.forget_later(turn)
        self._let_go(turn)

    async def _when_settled(self, turn: Turn, outcome: TurnOutcome) -> None:
        try:
            await turn.settled()
        finally:
            self._keep_or_drop(turn, outcome)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._giving_up.add(task)
        task.add_done_callback(self._giving_up.discard)

    def _let_go(self, turn: Turn) -> None:
        self._pool.let_go(turn.server)
        turn.handle.lock.release()

    async def _forget(self, turn: Turn) -> None:
        try:
            await self.named.forget_turn(turn)
        finally:
            self._let_go(turn)

    async def _on_server_request(self, method: str, params: msgspec.Raw) -> object:
        if method == "item/tool/call":
            return await self._tool_router.on_call(params)
        return await self._asks.answer(method, params)

    def _approvals_of(self, thread_id: str) -> ApprovalHandler:
        running = self._running.get(thread_id)
        return running.approvals if running is not None else decline_all

    def _file_changes(self, thread_id: str, item_id: str) -> tuple[FileChange, ...]:
        turn = self._active.get(thread_id)
        return turn.file_changes(item_id) if turn is not None else ()

    # --- models & lifecycle -------------------------------------------------------------------

    async def list_models(self, key: ProcessKey, api_key: str | None) -> list[wire.CodexModel]:
        server = await self._pool.acquire(key, api_key)
        self._pool.release(key)
        return await _models_of(server)

    def hold(self, server: AppServer) -> contextlib.AbstractContextManager[None]:
        """Keep ``server`` from being evicted while the caller waits on it (turns are held already)."""
        return self._pool.holding(server)

    def processes(self) -> list[tuple[ProcessKey, AppServer, int, int]]:
        """Live processes: key, server, turns in flight on it, and holds (turns plus anything else waiting)."""
        turns: dict[AppServer, int] = {}
        for turn in self._active.values():
            turns[turn.server] = turns.get(turn.server, 0) + 1
        return [(key, server, turns.get(server, 0), self._pool.holds(server)) for key, server in self._pool.servers()]

    async def close(self) -> None:
        await self._binaries.close()
        await self.threads.idle.close()
        await self._pool.close()


async def _models_of(server: AppServer) -> list[wire.CodexModel]:
    models: list[wire.CodexModel] = []
    cursor: str | None = None
    while True:
        page = await server.request("model/list", wire.ModelListParams(cursor=cursor), wire.ModelListResult)
        models.extend(page.data)
        cursor = page.next_cursor
        if not cursor:
            return models


__all__ = [
    "ApprovalHandler",
    "ApprovalRequest",
    "CodexProcessDied",
    "CodexProcessHung",
    "Decision",
    "Engine",
    "FileChange",
    "Liveness",
    "Suspension",
    "ThreadHandle",
    "ThreadTools",
    "ToolResult",
    "Turn",
    "TurnOptions",
    "TurnOutcome",
    "decline_all",
]
