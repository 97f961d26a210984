"""The engine's threads: which Codex thread serves a conversation, and how it gets there.

A conversation is continued on its warm thread when one matches its history, else new threads
are started and seeded with it.  A persisted thread lost to a crash, a restart or idleness is
resumed from its rollout; an ephemeral one has none and is simply seeded again by its caller's
next request.  A thread with caller tools is never resumed or forked (:class:`CallerToolsNotResumable`):
Codex would not report its calls to them.  A thread has one handle, and one resume at a time, however
many requests ask for it at once.  Running turns on a thread is the engine's business
(:mod:`claif_cod.engine.engine`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import rollout_check, wire
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.conversations import Conversation, ConversationIndex, HistoryItem, Message, inject_item
from claif_cod.engine.errors import (
    CallerToolsNotResumable,
    InvalidRequest,
    RolloutCutShort,
    ThreadUnloaded,
    ToolSetChanged,
)
from claif_cod.engine.idle import IdleThreads, unsubscribe, unsubscribe_now
from claif_cod.engine.images import large
from claif_cod.engine.pool import ProcessPool
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.thread_tools_setup import ThreadToolsSetup
from claif_cod.engine.tools import NO_TOOLS, ThreadTools, ToolResult

log = get_logger("claif_cod.engine")

REMEMBERED_TOOL_SETS = 4096
"""Threads whose caller tools are remembered, to refuse resuming them (the newest; a restart forgets them
all, but a continuation that offers caller tools is refused as well)."""


class Threads:
    """The loaded threads, the conversations they are warm for, and the sweeper that unloads them."""

    def __init__(
        self,
        pool: ProcessPool,
        codex_version: Callable[[str], Awaitable[str]],
        idle_timeout: float | None,
        after_sweep: Callable[[], None],
    ) -> None:
        self._pool = pool
        self.tools_setup = ThreadToolsSetup(pool, codex_version)
        self._tools_of: OrderedDict[str, ThreadTools] = OrderedDict()
        """The caller tools of threads started here: such a thread is never resumed (CallerToolsNotResumable)."""
        self._table: dict[str, ThreadHandle] = {}
        self._persisted: weakref.WeakValueDictionary[str, ThreadHandle] = weakref.WeakValueDictionary()
        """Every persisted thread's handle that is loaded or still held (by a request that looked it up
        before a sweep unloaded it, or whose resume is under way): a resume of the thread continues
        that handle, so that one Codex thread never has two (each with a lock of its own, which let
        two turns run on the thread at once)."""
        self.index = ConversationIndex()
        """Conversation history digest → the thread that continues it."""
        self.idle = IdleThreads(idle_timeout, self._table, self.index, after_sweep, pool.recycle)
        """Unloads threads unused for ``idle_timeout`` seconds (None: never); see engine/idle.py."""

    def loaded(self) -> list[ThreadHandle]:
        return list(self._table.values())

    async def _server(self, key: ProcessKey, api_key: str | None) -> AppServer:
        server = await self._pool.acquire(key, api_key)
        self._pool.release(key)
        return server

    async def start(
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
        server = await self._server(key, api_key)
        fields = await self.tools_setup.start_fields(server, key, api_key, tools, model)
        result = await server.request(
            "thread/start",
            wire.ThreadStartParams(
                cwd=key.working_dir,
                model=model,
                sandbox=key.sandbox,
                approval_policy=key.approval,
                developer_instructions=instructions,
                ephemeral=ephemeral,
                **fields,
            ),
            wire.ThreadResult,
        )
        handle = ThreadHandle(
            thread_id=result.thread.id,
            key=key,
            api_key=api_key,
            server=server,
            ephemeral=ephemeral,
            tools=tools,
            model=result.model,
            effort=result.reasoning_effort,
            base_effort=result.reasoning_effort,
        )
        if not model:
            try:  # Codex's own choice of model: known only now
                await self.tools_setup.check_model(handle, result.model)
            except InvalidRequest:
                await unsubscribe(handle)  # nothing ran on it: gone at once
                raise
        self._add(handle)
        await self.inject(handle, history)
        return handle

    async def inject(self, handle: ThreadHandle, history: Sequence[HistoryItem | str]) -> None:
        """Append items to the thread's model-visible history (a ``str`` is a developer message)."""
        if not history:
            return
        await self.ensure_loaded(handle)  # (unloaded since it was looked up, by a sweep with a short timeout)
        images = (image for item in history if isinstance(item, (Message, ToolResult)) for image in item.images)
        items = await asyncio.to_thread(_inject_items, history) if large(images) else _inject_items(history)
        await handle.server.request(
            "thread/inject_items", wire.InjectItemsParams(thread_id=handle.thread_id, items=items), msgspec.Raw
        )

    async def fork(self, source: ThreadHandle, *, last_turn_id: str | None = None) -> ThreadHandle:
        """A copy of ``source`` (through ``last_turn_id`` only, when given); never of a thread with caller tools."""
        if source.tools.enabled:
            raise CallerToolsNotResumable(source.thread_id, "forked")
        await self.ensure_loaded(source)
        result = await source.server.request(
            "thread/fork",
            wire.ThreadForkParams(
                thread_id=source.thread_id,
                last_turn_id=last_turn_id,
                config=await self.tools_setup.reload_config(source, source.server),
            ),
            wire.ThreadResult,
        )
        handle = ThreadHandle(
            thread_id=result.thread.id,
            key=source.key,
            api_key=source.api_key,
            server=source.server,
            tools=source.tools,
            model=result.model,
            effort=result.reasoning_effort,
            base_effort=source.base_effort,
        )
        self._add(handle)
        return handle

    def _add(self, handle: ThreadHandle) -> None:
        self._table[handle.thread_id] = handle
        if not handle.ephemeral:
            self._persisted[handle.thread_id] = handle
        if handle.tools != NO_TOOLS:
            self._tools_of[handle.thread_id] = handle.tools
            if len(self._tools_of) > REMEMBERED_TOOL_SETS:
                self._tools_of.popitem(last=False)
        self.idle.watch()

    def _drop(self, handle: ThreadHandle) -> None:
        """Forget a thread that can no longer be used (an ephemeral one whose process went)."""
        if self._table.get(handle.thread_id) is handle:
            del self._table[handle.thread_id]
        if self._persisted.get(handle.thread_id) is handle:
            del self._persisted[handle.thread_id]
        self.index.forget_thread(handle.thread_id)

    async def resume(
        self, key: ProcessKey, api_key: str | None, thread_id: str, *, tools: ThreadTools = NO_TOOLS
    ) -> ThreadHandle:
        """The thread, loaded from its rollout if it left its process (a restart, a crash, idleness);
        :class:`RolloutCutShort` when that rollout lost part of what Codex recorded (engine/rollout_check.py).

        ``tools`` are those the caller's next turn offers: a thread that has or needs caller tools
        is only ever continued while loaded in its process, else CallerToolsNotResumable; one that
        was started with another tool set cannot offer these (ToolSetChanged)."""
        # One being unloaded now, or held by a request, is continued as it is (ensure_loaded resumes it
        # once Codex let it go), and so is one another request is resuming now.
        handle = self._known(thread_id)
        if handle is None:
            remembered = self._tools_of.get(thread_id, NO_TOOLS)
            if remembered.enabled or tools.enabled:
                raise CallerToolsNotResumable(thread_id, "resumed")
            if remembered.material() != tools.material():
                # As for a loaded thread (below): resumed with the tools it has, a continuation asking
                # for others (builtin_tools) would not get them, and nobody would say so.
                raise ToolSetChanged(thread_id)
            server = await self._server(key, api_key)
            handle = self._known(thread_id)  # another request may have begun resuming it meanwhile
            if handle is None:
                handle = ThreadHandle(
                    thread_id=thread_id, key=key, api_key=api_key, server=server, tools=remembered, unloaded=True
                )
                self._persisted[thread_id] = handle
                await self._load(handle, self._first_load(handle))
                handle.last_used = time.time()
                return handle
        if handle.loading is not None and not handle.loading.done():  # the checks below see where it went
            await asyncio.shield(handle.loading)
        if handle.tools.material() != tools.material():
            raise ToolSetChanged(thread_id)
        elif handle.key != key or handle.api_key != api_key:
            if handle.api_key != api_key and handle.server.alive and not handle.unloaded:
                await self._leave_process(handle)
            self._move(handle, key, api_key)
        handle.last_used = time.time()  # handed to a request: not idle (its turn may come after an injection)
        await self.ensure_loaded(handle)
        return handle

    def _known(self, thread_id: str) -> ThreadHandle | None:
        """The thread's handle, if it has one: loaded, being unloaded, or being resumed or held by a request."""
        return self._table.get(thread_id) or self.idle.leaving(thread_id) or self._persisted.get(thread_id)

    async def _first_load(self, handle: ThreadHandle) -> None:
        """Resume a thread this engine had no handle for (a restart, or long unloaded)."""
        try:
            await self._resume_into(handle, handle.server)
        except BaseException:
            if self._persisted.get(handle.thread_id) is handle:
                del self._persisted[handle.thread_id]  # never loaded: the next request starts over
            raise
        handle.base_effort = handle.effort  # what it started with is not known any more
        handle.unloaded = False
        self._add(handle)

    async def _load(self, handle: ThreadHandle, load: Coroutine[Any, Any, None]) -> None:
        """Run ``load`` (a resume of ``handle``) as the thread's one resume: it goes on when its caller
        leaves, since others may wait for it (and a thread resumed for nobody is unloaded when idle)."""
        task = asyncio.get_running_loop().create_task(load)
        handle.loading = task
        task.add_done_callback(lambda done: _loaded(handle, done))
        await asyncio.shield(task)

    async def _leave_process(self, handle: ThreadHandle) -> None:
        """A request with another API key continues the thread (a named session, a stored response):
        a live Codex process keeps the key it started with, so the thread is unloaded there (once a
        turn running on it is over) and resumed in a process of the new key.  One with caller tools
        cannot be resumed: its caller starts a new thread with the history instead."""
        if handle.tools.enabled:
            raise CallerToolsNotResumable(handle.thread_id, "moved to a process with another API key")
        await unsubscribe(handle)
        handle.unloaded = True
        if self._table.get(handle.thread_id) is handle:
            del self._table[handle.thread_id]

    def _move(self, handle: ThreadHandle, key: ProcessKey, api_key: str | None) -> None:
        """The caller now wants another sandbox, approval policy, directory or API key.

        A thread cannot be resumed in a second process while the first holds it (Codex allows
        one writer), so a loaded thread stays where it is and its next turn overrides the settings;
        should its process die, it is resumed in a process with the new settings.  (For another API
        key, which a live process cannot change, :meth:`_leave_process` unloaded it first.)
        """
        self.index.forget_thread(handle.thread_id)
        if handle.server.alive and not handle.unloaded:
            handle.key = dataclasses.replace(
                handle.key, working_dir=key.working_dir, sandbox=key.sandbox, approval=key.approval
            )
        else:
            handle.key, handle.api_key = key, api_key
        handle.retarget = True

    async def ensure_loaded(self, handle: ThreadHandle) -> None:
        """Resume the thread if it left its process; one with caller tools cannot be (it is forgotten).
        Requests that need it at once share one resume: a second ``thread/resume`` would load it again.
        (A loop: a waiter woken as another has begun the next resume of a thread unloaded again waits for that.)"""
        while handle.loading is not None and not handle.loading.done():
            await asyncio.shield(handle.loading)
        if handle.server.alive and not handle.unloaded:
            return
        if handle.ephemeral:
            self._drop(handle)
            if handle.unloaded:  # by a sweep, which may have recycled its process (exited by now, or not)
                raise ThreadUnloaded(handle.server.pid)
            raise handle.server.death or ThreadUnloaded(handle.server.pid)
        if handle.tools.enabled:
            self._drop(handle)
            raise CallerToolsNotResumable(handle.thread_id, "resumed")
        await self._load(handle, self._reload(handle))

    async def _reload(self, handle: ThreadHandle) -> None:
        await self.idle.gone(handle.thread_id)  # (an idle sweep's unsubscribe sent after would unload it)
        server = await self._server(handle.key, handle.api_key)
        await self._resume_into(handle, server)
        if handle.unloaded:
            handle.unloaded = False
            self._table.setdefault(handle.thread_id, handle)
            self.idle.watch()

    async def _resume_into(self, handle: ThreadHandle, server: AppServer) -> None:
        result = await server.request(
            "thread/resume",
            wire.ThreadResumeParams(
                thread_id=handle.thread_id,
                cwd=handle.key.working_dir,
                sandbox=handle.key.sandbox,
                approval_policy=handle.key.approval,
                config=await self.tools_setup.reload_config(handle, server),
            ),
            wire.ThreadResult,
        )
        handle.server = server
        codex_says = await rollout_check.cut_short(server, handle.thread_id)
        if codex_says is not None:
            # Not to be continued on part of its history: unloaded (closed, so that a later resume,
            # which meets the same cut, is not refused as closing) and forgotten.
            handle.unloaded = True
            await unsubscribe_now(handle)
            self._drop(handle)
            raise RolloutCutShort(handle.thread_id, codex_says)
        handle.resumed_turns = tuple(turn.id for turn in result.thread.turns)
        handle.model, handle.effort = result.model, result.reasoning_effort
        handle.summary = ""  # whatever the rollout restored: the next turn says what it wants
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
        ephemeral: bool = True,
    ) -> tuple[list[ThreadHandle], bool]:
        """Threads ready to take ``conversation.prompt``: the warm one if any, else new ones seeded
        with the history.  Anonymous conversations get ephemeral threads: their callers re-send the
        whole history, so a thread lost to a restart, a crash or idleness is simply seeded again
        (a stored Responses conversation, which can also be continued by id, asks for a rollout).

        A thread with caller tools is warm only while its process lives (a resumed thread would lose
        the raw events that show a response's calls) and is never forked (forks lose them too)."""
        warm_id = self.index.take(conversation.history_digest(key, tools))
        warm = self._table.get(warm_id) if warm_id else None
        if warm is not None and warm.ephemeral and not warm.server.alive:
            self._drop(warm)  # went with its process: nothing to resume
            warm = None
        if warm is not None and tools != NO_TOOLS and (n > 1 or not warm.server.alive):
            warm = None
        if warm is not None and warm.ephemeral and not ephemeral:
            warm = None  # it has no rollout to continue it from after a restart
        if warm is not None and not warm.broken and not warm.lock.locked():
            warm.last_used = time.time()
            try:
                await self.ensure_loaded(warm)
            except Exception:
                log.warning("engine.resume_failed", thread_id=warm.thread_id)
            else:
                if n == 1:
                    return [warm], True
                # An ephemeral thread cannot be forked: the other choices start from the same history.
                more = (
                    self._start_anonymous(key, api_key, conversation, model, tools, ephemeral)
                    if warm.ephemeral
                    else self.fork(warm)
                    for _ in range(n - 1)
                )
                return [warm, *await asyncio.gather(*more)], True
        fresh = await asyncio.gather(
            *(self._start_anonymous(key, api_key, conversation, model, tools, ephemeral) for _ in range(n))
        )
        return list(fresh), False

    async def _start_anonymous(
        self,
        key: ProcessKey,
        api_key: str | None,
        conversation: Conversation,
        model: str | None,
        tools: ThreadTools,
        ephemeral: bool,
    ) -> ThreadHandle:
        return await self.start(
            key,
            api_key,
            instructions=conversation.instructions,
            history=conversation.history,
            model=model,
            ephemeral=ephemeral,
            tools=tools,
        )

    def remember(self, handle: ThreadHandle, conversation: Conversation, replies: tuple[str, ...]) -> None:
        """Make the thread the warm continuation of the conversation including its reply (the text of
        each assistant message, in order)."""
        if handle.broken or handle.unloaded:
            return
        self.index.remember(conversation.continued_digest(handle.key, replies, handle.tools), handle.thread_id)

    def forget(self, thread_id: str) -> None:
        """No conversation continues on ``thread_id`` any more (its state is in doubt)."""
        self.index.forget_thread(thread_id)


def _loaded(handle: ThreadHandle, load: asyncio.Task[None]) -> None:
    """A resume ended: the next one is a new one. Its failure is retrieved here too (every caller that
    waited for it got it; there may be none left)."""
    if handle.loading is load:
        handle.loading = None
    if not load.cancelled():
        load.exception()


def _developer(text: str) -> wire.MessageItem:
    return wire.MessageItem(role="developer", content=[wire.ContentPart(type="input_text", text=text)])


def _inject_items(history: Sequence[HistoryItem | str]) -> list[wire.InjectItem]:
    """``thread/inject_items``' items; their images' ``data:`` URLs are the costly part (see ``large``)."""
    return [_developer(m) if isinstance(m, str) else inject_item(m) for m in history]
