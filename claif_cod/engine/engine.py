"""The engine: warm Codex processes, threads and turns, shared by the client and the daemon.

Callers speak in conversations and turns; the engine decides which process and thread
serve them (warm continuation, fork or fresh start), runs one turn at a time per thread,
enforces deadlines with ``turn/interrupt`` and routes approval requests to whoever owns
the running turn.

Failure rules (timings from :class:`~claif_cod.engine.appserver.Liveness`):

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
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import appserver, idle, wire
from claif_cod.engine.appserver import AppServer, Liveness, RpcErrorReply
from claif_cod.engine.config import CodexConfig, ProcessKey
from claif_cod.engine.conversations import Conversation, ConversationIndex, HistoryItem, Message, inject_item
from claif_cod.engine.discovery import CodexBinary, find_codex, probe
from claif_cod.engine.errors import (
    CodexProcessDied,
    CodexProcessHung,
    CodexRequestTimedOut,
    CodexRpcError,
    InvalidRequest,
    SessionStoreFailed,
)
from claif_cod.engine.events import ToolCallsRequested
from claif_cod.engine.idle import UNLOAD_DELAY_OVERRIDE, IdleThreads
from claif_cod.engine.images import Image, TurnImages
from claif_cod.engine.pool import ProcessPool
from claif_cod.engine.sessions import MemorySessionStore, SessionBook, SessionRecord, SessionStore
from claif_cod.engine.tools import (
    NO_TOOLS,
    Suspension,
    Suspensions,
    ThreadTools,
    ToolResult,
    ToolRouter,
    check_tools_only,
    thread_start_fields,
)
from claif_cod.engine.turns import (
    ApprovalHandler,
    ApprovalRequest,
    Decision,
    ThreadHandle,
    Turn,
    TurnOptions,
    TurnOutcome,
    decline_all,
    retarget_params,
)

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
    ) -> None:
        self.liveness = liveness or appserver.DEFAULT_LIVENESS
        """Deadlines that tell a slow Codex from a hung one (see the module documentation)."""
        self._pool = ProcessPool(
            handle_server_request=self._on_server_request,
            max_processes=max_processes,
            base_env=env,
            liveness=self.liveness,
            config_overrides=[UNLOAD_DELAY_OVERRIDE],
        )
        self._env = env
        self._book = SessionBook(sessions or MemorySessionStore())
        self._session_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._index = ConversationIndex()
        self._threads: dict[str, ThreadHandle] = {}
        self._approvers: dict[str, ApprovalHandler] = {}
        self._active: dict[str, Turn] = {}
        self._turn_files: dict[Turn, TurnImages] = {}
        self._binaries: dict[str | None, CodexBinary] = {}
        if thread_idle_timeout == "default":
            thread_idle_timeout = idle.DEFAULT_THREAD_IDLE_TIMEOUT_S  # read now, so tests may replace it
        self.idle = IdleThreads(thread_idle_timeout, self._threads, self._index, self._prune_session_locks)
        """Unloads threads unused for ``thread_idle_timeout`` seconds (None: never); see engine/idle.py."""
        self._tool_router = ToolRouter()
        self.suspensions = Suspensions(self._suspension_expired)
        """Turns waiting for caller tool results (see :mod:`claif_cod.engine.tools`)."""

    @property
    def sessions(self) -> SessionStore:
        return self._book.store

    @sessions.setter
    def sessions(self, store: SessionStore) -> None:
        self._book.store = store

    # --- resolution ---------------------------------------------------------------------

    def binary(self, codex_path: str | None) -> CodexBinary:
        """Find and probe once per requested path (blocking: a few ms, first use only)."""
        cached = self._binaries.get(codex_path)
        if cached is None:
            cached = self._binaries[codex_path] = probe(find_codex(codex_path))
        return cached

    def known_binary(self, path: str) -> CodexBinary | None:
        return next((b for b in self._binaries.values() if b.path == path), None)

    async def resolve(self, config: CodexConfig) -> ProcessKey:
        binary = self._binaries.get(config.codex_path)
        if binary is None:
            binary = await asyncio.to_thread(self.binary, config.codex_path)
        return ProcessKey.resolve(config, binary)

    # --- threads -------------------------------------------------------------------------

    async def _server(self, key: ProcessKey, api_key: str | None) -> AppServer:
        server = await self._pool.acquire(key, api_key)
        self._pool.release(key)
        return server

    async def start_thread(
        self,
        key: ProcessKey,
        api_key: str | None,
        *,
        instructions: str | None,
        history: tuple[HistoryItem, ...],
        model: str | None,
        ephemeral: bool,
        tools: ThreadTools = NO_TOOLS,
    ) -> ThreadHandle:
        """A new thread seeded with ``history``; ``ephemeral`` ones are cheaper per turn (no rollout)
        but cannot be resumed or forked, which only a named session needs."""
        binary = self.known_binary(key.codex_path)
        if binary is None:
            binary = await asyncio.to_thread(self.binary, key.codex_path)
        check_tools_only(tools, binary.version)
        server = await self._server(key, api_key)
        result = await server.request(
            "thread/start",
            wire.ThreadStartParams(
                cwd=key.working_dir,
                model=model,
                sandbox=key.sandbox,
                approval_policy=key.approval,
                developer_instructions=instructions,
                ephemeral=ephemeral,
                **thread_start_fields(tools),
            ),
            wire.ThreadResult,
        )
        handle = ThreadHandle(
            thread_id=result.thread.id, key=key, api_key=api_key, server=server, ephemeral=ephemeral, tools=tools
        )
        self._add(handle)
        await self.inject(handle, history)
        return handle

    async def inject(self, handle: ThreadHandle, history: Sequence[HistoryItem | str]) -> None:
        """Append items to the thread's model-visible history (a ``str`` is a developer message)."""
        if not history:
            return
        items = [_developer(m) if isinstance(m, str) else inject_item(m) for m in history]
        await handle.server.request(
            "thread/inject_items", wire.InjectItemsParams(thread_id=handle.thread_id, items=items), msgspec.Raw
        )

    async def fork_thread(self, source: ThreadHandle, *, last_turn_id: str | None = None) -> ThreadHandle:
        """A copy of ``source`` (through ``last_turn_id`` only, when given)."""
        await self.ensure_loaded(source)
        result = await source.server.request(
            "thread/fork",
            wire.ThreadForkParams(thread_id=source.thread_id, last_turn_id=last_turn_id),
            wire.ThreadResult,
        )
        handle = ThreadHandle(
            thread_id=result.thread.id, key=source.key, api_key=source.api_key, server=source.server, tools=source.tools
        )
        self._add(handle)
        return handle

    def _add(self, handle: ThreadHandle) -> None:
        self._threads[handle.thread_id] = handle
        self.idle.watch()

    def _drop(self, handle: ThreadHandle) -> None:
        """Forget a thread that can no longer be used (an ephemeral one whose process went)."""
        if self._threads.get(handle.thread_id) is handle:
            del self._threads[handle.thread_id]
        self._index.forget_thread(handle.thread_id)

    async def resume_thread(self, key: ProcessKey, api_key: str | None, thread_id: str) -> ThreadHandle:
        """Load a thread from its rollout (after a restart or a crash of its process)."""
        handle = self._threads.get(thread_id)
        if handle is None:
            server = await self._server(key, api_key)
            handle = ThreadHandle(thread_id=thread_id, key=key, api_key=api_key, server=server)
            await self._resume_into(handle, server)
            self._add(handle)
        elif handle.key != key or handle.api_key != api_key:
            await self._move(handle, key, api_key)
        await self.ensure_loaded(handle)
        return handle

    async def _move(self, handle: ThreadHandle, key: ProcessKey, api_key: str | None) -> None:
        """The caller now wants another sandbox, approval policy or directory.

        A thread cannot be resumed in a second process while the first holds it (Codex allows
        one writer), so it stays where it is and its next turn overrides the settings; should its
        process die, it is resumed in a process with the new settings.  The API key of a live
        process cannot change: a warm thread keeps the key its process started with.
        """
        self._index.forget_thread(handle.thread_id)
        if handle.server.alive:
            handle.key = dataclasses.replace(
                handle.key, working_dir=key.working_dir, sandbox=key.sandbox, approval=key.approval
            )
        else:
            handle.key, handle.api_key = key, api_key
        handle.retarget = True

    async def ensure_loaded(self, handle: ThreadHandle) -> None:
        if handle.server.alive and not handle.unloaded:
            return
        if handle.ephemeral:
            self._drop(handle)
            raise handle.server.death or CodexProcessDied(
                None, "the conversation's thread was unloaded and has no rollout to resume", pid=handle.server.pid
            )
        server = await self._server(handle.key, handle.api_key)
        await self._resume_into(handle, server)
        if handle.unloaded:
            handle.unloaded = False
            self._threads.setdefault(handle.thread_id, handle)
            self.idle.watch()

    async def _resume_into(self, handle: ThreadHandle, server: AppServer) -> None:
        await server.request(
            "thread/resume",
            wire.ThreadResumeParams(
                thread_id=handle.thread_id,
                cwd=handle.key.working_dir,
                sandbox=handle.key.sandbox,
                approval_policy=handle.key.approval,
            ),
            msgspec.Raw,
        )
        handle.server = server
        handle.broken = False

    async def open_conversation(
        self,
        key: ProcessKey,
        api_key: str | None,
        conversation: Conversation,
        *,
        model: str | None,
        n: int = 1,
        tools: ThreadTools = NO_TOOLS,
    ) -> tuple[list[ThreadHandle], bool]:
        """Threads ready to take ``conversation.prompt``: the warm one if any, else new ones seeded
        with the history.  Anonymous conversations get ephemeral threads: their callers re-send the
        whole history, so a thread lost to a restart, a crash or idleness is simply seeded again.

        A thread with caller tools is warm only while its process lives (a resumed thread would lose
        the raw events that show a response's calls) and is never forked (forks lose them too)."""
        warm_id = self._index.take(conversation.history_digest(key, tools))
        warm = self._threads.get(warm_id) if warm_id else None
        if warm is not None and warm.ephemeral and not warm.server.alive:
            self._drop(warm)  # went with its process: nothing to resume
            warm = None
        if warm is not None and tools != NO_TOOLS and (n > 1 or not warm.server.alive):
            warm = None
        if warm is not None and not warm.broken and not warm.lock.locked():
            warm.last_used = time.time()
            try:
                await self.ensure_loaded(warm)
            except Exception:
                log.warning("engine.resume_failed", thread_id=warm.thread_id)
            else:
                # An ephemeral thread cannot be forked: the other choices start from the same history.
                more = (
                    self._start_anonymous(key, api_key, conversation, model, tools)
                    if warm.ephemeral
                    else self.fork_thread(warm)
                    for _ in range(n - 1)
                )
                return [warm, *await asyncio.gather(*more)], True
        fresh = await asyncio.gather(
            *(self._start_anonymous(key, api_key, conversation, model, tools) for _ in range(n))
        )
        return list(fresh), False

    async def _start_anonymous(
        self, key: ProcessKey, api_key: str | None, conversation: Conversation, model: str | None, tools: ThreadTools
    ) -> ThreadHandle:
        return await self.start_thread(
            key,
            api_key,
            instructions=conversation.instructions,
            history=conversation.history,
            model=model,
            ephemeral=True,
            tools=tools,
        )

    def remember(self, handle: ThreadHandle, conversation: Conversation, reply: str) -> None:
        """Make the thread the warm continuation of the conversation including ``reply``."""
        if handle.broken or handle.unloaded:
            return
        self._index.remember(conversation.continued_digest(handle.key, reply, handle.tools), handle.thread_id)

    def codex_home(self, key: ProcessKey) -> str:
        """The Codex home a process key runs in: a session lives in exactly one."""
        home = key.codex_home or (self._env if self._env is not None else os.environ).get("CODEX_HOME")
        return os.path.abspath(os.path.expanduser(home or "~/.codex"))

    async def session_thread(
        self, session_id: str, key: ProcessKey, api_key: str | None, conversation: Conversation, *, model: str | None
    ) -> tuple[ThreadHandle, bool]:
        """The session's thread (resumed if need be), or a new one seeded from ``conversation``.

        When Codex no longer has the session's rollout (its sessions were cleaned up), a new thread
        is seeded with the history the store kept, and a warning logged. The session's record is
        written here, before any turn: a store that cannot be written fails the request with
        :class:`SessionStoreFailed` while nothing has run yet.
        """
        messages = tuple(m for m in conversation.history if isinstance(m, Message))
        if conversation.prompt is None or len(messages) != len(conversation.history):
            # The store keeps a session's messages to re-seed it; tools and sessions do not combine.
            raise InvalidRequest("a named session's history holds messages only, not tool calls", param="messages")
        home = self.codex_home(key)
        async with self._session_locks.setdefault((session_id, home), asyncio.Lock()):
            record = self._book.lookup(session_id, home)
            history: tuple[HistoryItem, ...] = messages
            seed: tuple[Message, ...] = messages
            if record is not None:
                try:
                    handle = await self.resume_thread(key, api_key, record.thread_id)
                except CodexRpcError as exc:
                    kept = self._book.history(record)
                    # Codex writes a thread's rollout at its first turn: a session bound just before a
                    # crash (or whose first turn never started) has nothing to resume, and no history.
                    if record.turns and not kept:
                        raise
                    log.warning(
                        "engine.session_reseeded" if kept else "engine.session_restarted",
                        session=session_id[:100],
                        thread_id=record.thread_id,
                        messages=len(kept),
                        error=exc.message[:200],
                    )
                    history, seed = tuple(kept), ()
                else:
                    self._book.save(dataclasses.replace(record, last_used=time.time()))
                    return handle, True
            handle = await self.start_thread(
                key,
                api_key,
                instructions=conversation.instructions,
                history=history,
                model=model,
                ephemeral=False,  # continued by name, also after a restart: it needs its rollout
            )
            turns = record.turns if record is not None else 0
            self._book.save(
                SessionRecord(session_id, handle.thread_id, key.working_dir, model, turns, time.time(), home), seed
            )
            return handle, False

    def session_turn_done(
        self, session_id: str, handle: ThreadHandle, model: str | None, prompt: str, reply: str
    ) -> None:
        """Record a finished turn and its messages; the answer is delivered even if the store fails now
        (the write is retried with the next one)."""
        record = self._book.lookup(session_id, self.codex_home(handle.key))
        if record is not None and record.thread_id == handle.thread_id:
            now = time.time()
            done = dataclasses.replace(record, model=model or record.model, turns=record.turns + 1, last_used=now)
            messages = (Message("user", prompt), Message("assistant", reply))
            try:
                self._book.save(done, messages)
            except SessionStoreFailed as exc:
                self._book.defer(done, messages)
                log.warning("engine.session_save_deferred", session=session_id[:100], error=str(exc))

    def close_session(self, session_id: str) -> bool:
        """Forget a named session (in every Codex home); its threads stay in Codex's rollouts."""
        return self._book.close(session_id)

    def session_turns(self, session_id: str) -> list[Turn]:
        """The turns running in the named session, in whichever Codex home."""
        records = [r for r in self.sessions.all() if r.session_id == session_id]
        return [turn for r in records if (turn := self._active.get(r.thread_id)) is not None]

    # --- turns ---------------------------------------------------------------------------

    async def start_turn(
        self, handle: ThreadHandle, text: str | None, options: TurnOptions, *, images: Sequence[Image] = ()
    ) -> Turn:
        """Start a turn once the thread is free; the returned :class:`Turn` owns the thread until it ends.

        ``text`` None starts a turn without a new user message: the model answers the history as it
        stands (tool results injected with the thread, by a caller replaying a transcript)."""
        await handle.lock.acquire()
        held: AppServer | None = None
        files: TurnImages | None = None
        try:
            await self.ensure_loaded(handle)
            held = handle.server
            self._pool.hold(held)  # let go in _turn_done: a process with a turn in flight is never evicted
            queue = handle.server.subscribe(handle.thread_id)
            self._approvers[handle.thread_id] = options.approvals
            files = TurnImages(images)
            result = await handle.server.request(
                "turn/start",
                wire.TurnStartParams(
                    thread_id=handle.thread_id,
                    input=[*([] if text is None else [wire.TextInput(text=text)]), *files.inputs],
                    model=options.model,
                    effort=options.effort,
                    summary=options.summary,
                    output_schema=options.output_schema,
                    **retarget_params(handle),
                ),
                wire.TurnStartResult,
            )
            handle.retarget = False
        except BaseException as exc:
            if held is not None:
                self._pool.let_go(held)
            if files is not None:
                files.remove()
            self._approvers.pop(handle.thread_id, None)
            handle.server.unsubscribe(handle.thread_id)
            if isinstance(exc, CodexRequestTimedOut):
                # Codex may still start the turn; a later turn/start would then steer it.
                handle.broken = True
                self._index.forget_thread(handle.thread_id)
            handle.lock.release()
            raise
        handle.turns += 1
        handle.last_used = time.time()
        tool_timeout = options.tool_timeout
        turn = Turn(
            handle,
            result.turn.id,
            queue,
            options.timeout,
            self._turn_done,
            lambda t, event: self._suspended(t, event, tool_timeout),
            self._interrupted,
        )
        self._active[handle.thread_id] = turn
        if files.directory is not None:
            self._turn_files[turn] = files
        return turn

    # --- caller tools (see claif_cod.engine.tools) ------------------------------------------

    def _suspended(self, turn: Turn, event: ToolCallsRequested, timeout: float) -> None:
        suspension = Suspension(turn, event.calls, "", event.usage, turn.handle.tools)
        self.suspensions.add(suspension, timeout)

    def resume_tools(self, suspension: Suspension, results: tuple[ToolResult, ...], timeout: float | None) -> Turn:
        """Hand the results to the suspended turn; iterate the returned turn's ``events()`` for what follows."""
        self.suspensions.take(suspension)
        turn = suspension.turn
        turn.resume(timeout)
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
        self._approvers.pop(handle.thread_id, None)
        files = self._turn_files.pop(turn, None)
        if files is not None:
            files.remove()
        turn.server.unsubscribe(handle.thread_id)
        self._pool.let_go(turn.server)
        handle.last_used = time.time()
        self._tool_router.drop_thread(handle.thread_id, "the turn ended before the tool result arrived")
        suspension = self.suspensions.for_thread(handle.thread_id)
        if suspension is not None and suspension.turn is turn:
            self.suspensions.take(suspension)
        if outcome == "broken":
            self._index.forget_thread(handle.thread_id)
        elif outcome == "done":
            self._pool.mark_healthy(handle.key)
        handle.lock.release()

    async def _on_server_request(self, method: str, params: msgspec.Raw) -> object:
        if method == "item/tool/call":
            return await self._tool_router.on_call(params)
        if method == "item/commandExecution/requestApproval":
            cmd = msgspec.json.decode(params, type=wire.CommandApprovalParams)
            request = ApprovalRequest(
                "command", cmd.thread_id, cmd.turn_id, cmd.item_id, cmd.command, cmd.cwd, cmd.reason
            )
        elif method == "item/fileChange/requestApproval":
            fc = msgspec.json.decode(params, type=wire.FileChangeApprovalParams)
            request = ApprovalRequest("file_change", fc.thread_id, fc.turn_id, fc.item_id, reason=fc.reason)
        else:
            raise RpcErrorReply(-32601, f"claif_cod does not handle {method}")
        approver = self._approvers.get(request.thread_id, decline_all)
        try:
            decision = await approver(request)
        except Exception:
            log.exception("engine.approval_handler_failed")
            decision = "decline"
        return wire.ApprovalDecisionResult(decision=decision)

    # --- models & lifecycle -------------------------------------------------------------------

    async def list_models(self, key: ProcessKey, api_key: str | None) -> list[wire.CodexModel]:
        server = await self._server(key, api_key)
        models: list[wire.CodexModel] = []
        cursor: str | None = None
        while True:
            page = await server.request("model/list", wire.ModelListParams(cursor=cursor), wire.ModelListResult)
            models.extend(page.data)
            cursor = page.next_cursor
            if not cursor:
                return models

    def hold(self, server: AppServer) -> contextlib.AbstractContextManager[None]:
        """Keep ``server`` from being evicted while the caller waits on it (turns are held already)."""
        return self._pool.holding(server)

    def processes(self) -> list[tuple[ProcessKey, AppServer, int, int]]:
        """Live processes: key, server, turns in flight on it, and holds (turns plus anything else waiting)."""
        turns: dict[AppServer, int] = {}
        for turn in self._active.values():
            turns[turn.server] = turns.get(turn.server, 0) + 1
        return [(key, server, turns.get(server, 0), self._pool.holds(server)) for key, server in self._pool.servers()]

    def threads(self) -> list[ThreadHandle]:
        return list(self._threads.values())

    def _prune_session_locks(self) -> None:
        for session_id in [s for s, lock in self._session_locks.items() if not lock.locked()]:
            del self._session_locks[session_id]

    async def close(self) -> None:
        await self.idle.close()
        await self._pool.close()


def _developer(text: str) -> wire.MessageItem:
    return wire.MessageItem(role="developer", content=[wire.ContentPart(type="input_text", text=text)])


__all__ = [
    "ApprovalHandler",
    "ApprovalRequest",
    "CodexProcessDied",
    "CodexProcessHung",
    "Decision",
    "Engine",
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
