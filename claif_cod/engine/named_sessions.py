"""Named sessions on threads: resolving a session name to its Codex thread, and recording its turns.

A session's thread is persisted (it is continued by name, also after a restart, so it needs its
rollout).  Its record is written before any turn runs, so that a store that cannot be written fails
the request while nothing has happened; the messages it keeps re-seed a new thread when Codex has
lost the rollout, or has it cut short.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable, Mapping

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.conversations import Conversation, HistoryItem, Message
from claif_cod.engine.errors import CodexRpcError, InvalidRequest, RolloutCutShort, SessionStoreFailed
from claif_cod.engine.session_order import SessionOrder
from claif_cod.engine.sessions import SessionBook, SessionRecord, SessionStore, session_id_problem
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.threads import Threads
from claif_cod.engine.turns import Turn

log = get_logger("claif_cod.engine")


class NamedSessions:
    """Sessions by name, each living in one Codex home, their threads taken from :class:`Threads`."""

    def __init__(
        self,
        store: SessionStore,
        threads: Threads,
        env: Mapping[str, str] | None,
        active_turn: Callable[[str], Turn | None],
    ) -> None:
        self.book = SessionBook(store)
        self._threads = threads
        self._env = env
        self._active_turn = active_turn
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.order = SessionOrder()
        """Each session's requests start their turns in the order they arrived (callers take a ticket)."""
        self._unforgotten: dict[str, str] = {}
        """Threads whose failed turn went with their process: the first such turn's id."""
        self._ours: set[str] = set()
        """Session threads this engine has handed out: a turn on one that its record does not show yet
        is this engine's own (running, or being recorded), not one a killed daemon left unanswered."""

    def codex_home(self, key: ProcessKey) -> str:
        """The Codex home a process key runs in: a session lives in exactly one."""
        home = key.codex_home or (self._env if self._env is not None else os.environ).get("CODEX_HOME")
        return os.path.abspath(os.path.expanduser(home or "~/.codex"))

    async def forget_turn(self, turn: Turn) -> None:
        """Drop ``turn`` from its thread's history: its caller was told it failed (an error, a deadline,
        a request cancelled), so the session's next turn must not see it (nor, on a retry, see it
        twice). The store never recorded it. Best effort: a Codex without ``thread/revert`` keeps it."""
        await _revert(turn.server, turn.handle.thread_id, turn.turn_id)

    def forget_later(self, turn: Turn) -> None:
        """:meth:`forget_turn` for a turn whose process died (or hung) with it: the rollout keeps the
        turn, dropped by :meth:`before_turn` once the thread is loaded again (in this process's life)."""
        self._unforgotten.setdefault(turn.handle.thread_id, turn.turn_id)

    async def before_turn(self, handle: ThreadHandle) -> None:
        """Once the thread is loaded and its turns are ours: a failed turn's :meth:`forget_later`."""
        if self._unforgotten and (failed := self._unforgotten.pop(handle.thread_id, None)) is not None:
            try:
                await _revert(handle.server, handle.thread_id, failed)
            except asyncio.CancelledError:  # the next turn's start does it
                self._unforgotten.setdefault(handle.thread_id, failed)
                raise

    async def thread(
        self, session_id: str, key: ProcessKey, api_key: str | None, conversation: Conversation, *, model: str | None
    ) -> tuple[ThreadHandle, bool]:
        """The session's thread (resumed if need be), or a new one seeded from ``conversation``.

        When Codex no longer has the session's rollout (its sessions were cleaned up), or has it cut
        short (a full disk, a crash, an edit: it would resume with part of its history), a new thread
        is seeded with the history the store kept, and a warning logged. The session's record is
        written here, before any turn: a store that cannot be written fails the request with
        :class:`SessionStoreFailed` while nothing has run yet.
        """
        problem = session_id_problem(session_id)
        if problem is not None:
            raise InvalidRequest(problem, param="session_id")
        messages = tuple(m for m in conversation.history if isinstance(m, Message))
        if len(messages) != len(conversation.history):
            # The store keeps a session's messages to re-seed it; tools and sessions do not combine.
            raise InvalidRequest("a named session's history holds messages only, not tool calls", param="messages")
        if conversation.prompt is None:  # (its turns are kept as the user's message and the answer)
            raise InvalidRequest("a named session's request must end with a user message", param="messages")
        home = self.codex_home(key)
        async with self._locks.setdefault((session_id, home), asyncio.Lock()):
            record = self.book.lookup(session_id, home)
            history: tuple[HistoryItem, ...] = messages
            seed: tuple[Message, ...] = messages
            instructions = conversation.instructions
            if record is not None:
                try:
                    handle = await self._threads.resume(key, api_key, record.thread_id)
                except (CodexRpcError, RolloutCutShort) as exc:
                    kept = self.book.history(record)
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
                    # The session's own instructions, not this request's (later system messages are
                    # not sent again); a record from before they were kept has only this request's.
                    instructions = record.instructions if record.instructions is not None else instructions
                else:
                    if handle.thread_id not in self._ours:
                        await self._drop_unanswered(record, handle)
                    self._ours.add(handle.thread_id)
                    self.book.save(dataclasses.replace(record, last_used=time.time()))
                    return handle, True
            handle = await self._threads.start(
                key,
                api_key,
                instructions=instructions,
                history=history,
                model=model,
                ephemeral=False,  # continued by name, also after a restart: it needs its rollout
            )
            turns = record.turns if record is not None else 0
            self._ours.add(handle.thread_id)
            self.book.save(
                SessionRecord(
                    session_id, handle.thread_id, key.working_dir, model, turns, time.time(), home, instructions, ""
                ),
                seed,
            )
            return handle, False

    async def _drop_unanswered(self, record: SessionRecord, handle: ThreadHandle) -> None:
        """Drop the turns a thread resumed for the first time in this engine's life holds after the
        last one recorded: their callers were told they failed (claif-codd was killed during them, so
        no :meth:`forget_later` survived)."""
        turns = handle.resumed_turns
        handle.resumed_turns = None  # only right after this resume: later turns are the engine's own
        if turns is None or record.last_turn is None or (record.last_turn and record.last_turn not in turns):
            return  # not known, or not this thread's history any more: nothing to compare
        after = turns.index(record.last_turn) + 1 if record.last_turn else 0
        if after < len(turns):
            log.warning(
                "session.unanswered_turns_dropped",
                session=record.session_id[:100],
                thread_id=handle.thread_id,
                turns=len(turns) - after,
            )
            await _revert(handle.server, handle.thread_id, turns[after])

    def turn_done(
        self, session_id: str, handle: ThreadHandle, turn_id: str, model: str | None, prompt: str, reply: str
    ) -> None:
        """Record a finished turn and its messages; the answer is delivered even if the store fails now
        (the write is retried with the next one)."""
        record = self.book.lookup(session_id, self.codex_home(handle.key))
        if record is not None and record.thread_id == handle.thread_id:
            now = time.time()
            done = dataclasses.replace(
                record,
                working_dir=handle.key.working_dir,  # the turn's: a session continued elsewhere moved with it
                model=model or record.model,
                turns=record.turns + 1,
                last_used=now,
                last_turn=turn_id,
            )
            messages = (Message("user", prompt), Message("assistant", reply))
            try:
                self.book.save(done, messages)
            except SessionStoreFailed as exc:
                self.book.defer(done, messages)
                # (the error's own words say "the turn was not run", true of the writes before a turn only)
                log.warning("engine.session_save_deferred", session=session_id[:100], path=exc.path, reason=exc.reason)

    def close(self, session_id: str) -> bool:
        """Forget a named session (in every Codex home); its threads stay in Codex's rollouts."""
        self._ours.difference_update(r.thread_id for r in self.book.store.all() if r.session_id == session_id)
        return self.book.close(session_id)

    def turns(self, session_id: str) -> list[Turn]:
        """The turns running in the named session, in whichever Codex home."""
        records = [r for r in self.book.store.all() if r.session_id == session_id]
        return [turn for r in records if (turn := self._active_turn(r.thread_id)) is not None]

    def prune_locks(self) -> None:
        """Drop the locks of sessions nobody is resolving (called after each idle sweep)."""
        for name in [s for s, lock in self._locks.items() if not lock.locked()]:
            del self._locks[name]


async def _revert(server: AppServer, thread_id: str, turn_id: str) -> None:
    """The thread's history without ``turn_id`` and every turn after it."""
    params = wire.ThreadRevertParams(thread_id=thread_id, before_turn_id=turn_id)
    try:
        await server.request("thread/revert", params, msgspec.Raw)
    except Exception as exc:
        log.warning("session.failed_turn_kept", thread_id=thread_id, error=str(exc)[:300])
