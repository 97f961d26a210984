"""The floor every benchmark here is measured against: a warm ``codex app-server`` driven directly
with claif_cod's ``AppServer`` on an event loop of its own, each turn timed inside that loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import uvloop
from bench_common import elapsed_ms
from offline_chat import MODEL

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine import wire, wire_notifications
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.server_requests import RpcErrorReply
from claif_cod.engine.thread_messages import Notification, ProcessExit, ThreadMessage

T = TypeVar("T")


@dataclass(frozen=True)
class RawTurn:
    first_delta_ms: float
    total_ms: float
    reply: str
    cached: bool


async def refuse(method: str, _params: msgspec.Raw) -> object:
    raise RpcErrorReply(-32601, f"the benchmark does not handle {method}")


class RawAppServer:
    """One ``codex app-server`` driven with ``AppServer`` on an event loop of its own (uvloop, as claif_cod's).

    Each turn is timed inside that loop, from just before ``turn/start`` is written to the
    ``turn/completed`` notification, so no thread hop is counted: this is the floor.
    """

    def __init__(self, codex: str, workdir: Path, env: dict[str, str]) -> None:
        self.codex, self.workdir, self.env = codex, workdir, env
        self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        self._thread: threading.Thread | None = threading.Thread(
            target=self.loop.run_forever, name="raw-app-server", daemon=True
        )
        self._thread.start()
        self.server: AppServer | None = None
        self.queues: dict[str, Inbox[ThreadMessage]] = {}

    @classmethod
    def attached(cls, client: CodexClient | AsyncCodexClient, workdir: Path) -> RawAppServer:
        """Raw turns on an in-process client's own Codex process, on its engine loop (the client
        must have started it): the same Codex process answers both, so what differs between the
        two is only the client.  Codex processes differ from each other by up to ~0.7 ms a turn
        (placement, memory layout), which would otherwise be counted as the client's."""
        assert client.backend is not None
        assert client.backend.local is not None
        (_, server, *_), *_ = client.backend.local.engine.processes()
        raw = cls.__new__(cls)
        raw.codex, raw.workdir, raw.env = "", workdir, {}
        raw.loop, raw._thread, raw.server, raw.queues = client._core.loop.loop, None, server, {}
        return raw

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def start(self) -> float:
        start = time.perf_counter()
        self.server = self.run(
            AppServer.start(self.codex, cwd=str(self.workdir), env=self.env, handle_server_request=refuse)
        )
        return elapsed_ms(start)

    def new_thread(self, *, ephemeral: bool = True, seed: Sequence[wire.MessageItem] = ()) -> str:
        """A thread like a careful hand-written client's: ephemeral (Codex writes no rollout), seeded untimed."""
        return self.run(self._new_thread(ephemeral, seed))

    async def _new_thread(self, ephemeral: bool, seed: Sequence[wire.MessageItem]) -> str:
        assert self.server is not None
        params = wire.ThreadStartParams(cwd=str(self.workdir), model=MODEL, ephemeral=ephemeral)
        result = await self.server.request("thread/start", params, wire.ThreadResult)
        thread_id = result.thread.id
        if seed:
            inject = wire.InjectItemsParams(thread_id=thread_id, items=list(seed))
            await self.server.request("thread/inject_items", inject, msgspec.Raw)
        self.queues[thread_id] = self.server.subscribe(thread_id)
        return thread_id

    def turn(self, thread_id: str, text: str) -> RawTurn:
        return self.run(self._turn(thread_id, text))

    async def _turn(self, thread_id: str, text: str) -> RawTurn:
        assert self.server is not None
        queue = self.queues[thread_id]
        start = time.perf_counter()
        params = wire.TurnStartParams(thread_id=thread_id, input=[wire.TextInput(text=text)])
        turn_id = (await self.server.request("turn/start", params, wire.TurnStartResult)).turn.id
        first: float | None = None
        parts: list[str] = []
        cached = False
        while True:
            message = await queue.get()
            if isinstance(message, ProcessExit):
                raise message.error
            assert isinstance(message, Notification)
            if message.method == "item/agentMessage/delta":
                delta = msgspec.json.decode(message.params, type=wire_notifications.AgentMessageDelta)
                if delta.turn_id == turn_id:
                    first = elapsed_ms(start) if first is None else first
                    parts.append(delta.delta)
            elif message.method == "thread/tokenUsage/updated":
                usage = msgspec.json.decode(message.params, type=wire_notifications.TokenUsageUpdated)
                if usage.turn_id == turn_id and usage.token_usage.last.cached_input_tokens:
                    cached = True
            elif message.method == "turn/completed":
                done = msgspec.json.decode(message.params, type=wire_notifications.TurnCompleted)
                if done.turn.id == turn_id:
                    break
        total = elapsed_ms(start)
        if first is None:
            raise RuntimeError(f"raw turn {turn_id} completed without an agentMessage delta")
        return RawTurn(first_delta_ms=first, total_ms=total, reply="".join(parts), cached=cached)

    def close(self) -> None:
        if self._thread is None:
            return  # attached: its owner closes the process
        try:
            if self.server is not None:
                self.run(self.server.close(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self.loop.close()
