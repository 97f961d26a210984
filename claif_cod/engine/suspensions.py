"""Turns suspended on caller-tool calls: each waits, under a deadline, for the results of the calls
of one model response, and is found again by those calls, by its thread, or by the request that
produced it (a client that retries).  The contract is in :mod:`claif_cod.engine.tools`.

Apart from ``tools.py`` because a suspension holds a :class:`~claif_cod.engine.turns.Turn`, while
turns themselves use the tools (their call batches): keeping this here lets imports flow one way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from claif_cod._log import get_logger
from claif_cod.engine.events import TurnUsage
from claif_cod.engine.tools import ThreadTools, ToolCall, ToolResult
from claif_cod.engine.turns import Turn

log = get_logger("claif_cod.engine.suspensions")


@dataclass(eq=False)
class Suspension:
    """A turn waiting for the results of ``calls``; ``text`` and ``usage`` are those of the response that made them."""

    turn: Turn
    calls: tuple[ToolCall, ...]
    text: str
    usage: TurnUsage
    tools: ThreadTools
    origin: str | None = None
    """Digest of the request that produced it, so a client that retries that request gets it back."""
    expiry: asyncio.TimerHandle | None = None

    def missing(self, results: Iterable[ToolResult]) -> list[str]:
        given = {r.call_id for r in results}
        return [c.call_id for c in self.calls if c.call_id not in given]


DEFAULT_MAX_SUSPENDED = 64
"""Suspended turns kept at once. Each keeps its thread loaded in Codex (~1.5 MiB), and libraries that
end on a tool call (instructor's tool modes, pydantic-ai's tool output) never send its result: past
this, the turn suspended longest ago is given up, as at its deadline (results sent later replay it)."""


class Suspensions:
    """Suspended turns by call id, by thread and by originating request; each expires at its deadline,
    or earlier when ``limit`` newer ones are suspended."""

    def __init__(self, on_expired: Callable[[Suspension], None], limit: int = DEFAULT_MAX_SUSPENDED) -> None:
        self._by_call: dict[str, Suspension] = {}
        self._by_thread: dict[str, Suspension] = {}
        """In the order they were suspended: the first is the one to give up."""
        self._by_origin: dict[str, Suspension] = {}
        self._on_expired = on_expired
        self._limit = limit

    def add(self, suspension: Suspension, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        suspension.expiry = loop.call_later(timeout, self._expire, suspension)
        self._by_thread[suspension.turn.handle.thread_id] = suspension
        for call in suspension.calls:
            self._by_call[call.call_id] = suspension
        while len(self._by_thread) > self._limit:
            oldest = next(iter(self._by_thread.values()))
            log.info("engine.tool_calls_evicted", thread_id=oldest.turn.handle.thread_id, limit=self._limit)
            self.take(oldest)
            self._on_expired(oldest)

    def tag_origin(self, suspension: Suspension, digest: str) -> None:
        if self._by_thread.get(suspension.turn.handle.thread_id) is suspension:
            suspension.origin = digest
            self._by_origin[digest] = suspension

    def for_results(self, results: Iterable[ToolResult]) -> Suspension | None:
        """The suspension these results answer, all of its calls and none of another's. Results that
        answer some calls or several turns' come from a transcript the caller made its own (checked
        call by call as it was read): it runs as a transcript, and the turns wait on for theirs."""
        found = {self._by_call.get(r.call_id) for r in results}
        if len(found) != 1:
            return None
        suspension = found.pop()
        if suspension is None or suspension.missing(results):
            return None
        return suspension

    def for_thread(self, thread_id: str) -> Suspension | None:
        return self._by_thread.get(thread_id)

    def for_origin(self, digest: str) -> Suspension | None:
        return self._by_origin.get(digest)

    def take(self, suspension: Suspension) -> None:
        """The suspension ends (resumed, expired or its turn gone): unindex it and stop its timer."""
        if suspension.expiry is not None:
            suspension.expiry.cancel()
        thread_id = suspension.turn.handle.thread_id
        if self._by_thread.get(thread_id) is suspension:
            del self._by_thread[thread_id]
        for call in suspension.calls:
            if self._by_call.get(call.call_id) is suspension:
                del self._by_call[call.call_id]
        if suspension.origin is not None and self._by_origin.get(suspension.origin) is suspension:
            del self._by_origin[suspension.origin]

    def _expire(self, suspension: Suspension) -> None:
        if self._by_thread.get(suspension.turn.handle.thread_id) is suspension:
            log.warning("engine.tool_calls_abandoned", thread_id=suspension.turn.handle.thread_id)
            self.take(suspension)
            self._on_expired(suspension)

    def __len__(self) -> int:
        return len(self._by_thread)
