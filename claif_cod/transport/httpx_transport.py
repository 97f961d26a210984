"""httpx transports that answer the ``openai`` client's HTTP requests with Codex.

Because we sit below ``openai`` at the HTTP layer, everything above it (``Stream``, typed
errors with ``status_code``, ``with_raw_response``, per-request ``timeout=``, model paging)
is the real ``openai`` code.  Failures that ``openai`` models as HTTP statuses become
responses; connection failures and timeouts, which it models as exceptions, are raised.
"""

from __future__ import annotations

import asyncio

import httpx2
import openai

from claif_cod.transport.early import claim
from claif_cod.transport.loop_thread import LoopThread
from claif_cod.transport.other_loops import ForeignEvents, on_asyncio, on_engine_loop
from claif_cod.transport.stream_events import AsyncEvents, SyncEvents
from claif_cod.transport.transport_core import NoEngineLoop, TransportCore, read_timeout_of


def _engine_loop(core: TransportCore, request: httpx2.Request) -> LoopThread:
    try:
        return core.loop
    except NoEngineLoop as exc:
        raise openai.APIConnectionError(message=str(exc), request=request) from exc


class CodexTransport(httpx2.BaseTransport):
    def __init__(self, core: TransportCore) -> None:
        self.core = core

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        loop = _engine_loop(self.core, request)
        body = request.read()
        early = claim(request, body, read_timeout_of(request))
        return loop.run(self.core.respond(request, body, lambda events: SyncEvents(request).start(events), early))

    def close(self) -> None:
        self.core.close()


class AsyncCodexTransport(httpx2.AsyncBaseTransport):
    def __init__(self, core: TransportCore) -> None:
        self.core = core

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        loop = _engine_loop(self.core, request)
        body = await request.aread()
        if not on_asyncio():  # trio
            respond = self.core.respond(request, body, lambda events: ForeignEvents(request).start(events), None)
            return await on_engine_loop(loop.loop, respond)
        caller = asyncio.get_running_loop()
        early = claim(request, body, read_timeout_of(request))
        return await loop.run_async(
            self.core.respond(request, body, lambda events: AsyncEvents(caller, request).start(events), early, caller)
        )

    async def aclose(self) -> None:
        self.core.close()
