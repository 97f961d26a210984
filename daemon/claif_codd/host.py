"""What the parts of the daemon (socket connections, their methods, the HTTP endpoint) use of it.

``server.Daemon`` satisfies :class:`DaemonHost` structurally; its parts depend on this interface
rather than on the server, so the daemon's imports flow one way: server → parts → host → config.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, TypeVar

from claif_cod.engine.engine import Engine
from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.responses_service import ResponsesService
from claif_cod.openai_compat.service import ChatService
from claif_cod.protocol import HelloRequest, HelloResult, Overloaded, Request
from claif_codd.config import DaemonConfig

Conn = TypeVar("Conn")
"""A socket connection (``connection.Connection``), a parameter so that this module need not import it."""
Conn_contra = TypeVar("Conn_contra", contravariant=True)


class Dispatcher(Protocol[Conn_contra]):
    """Runs a connection's requests (``methods.Methods``)."""

    def hello(self, conn: Conn_contra, request: HelloRequest) -> HelloResult: ...

    async def call(self, conn: Conn_contra, request: Request) -> Any: ...


class HttpAddress(Protocol):
    @property
    def url(self) -> str | None: ...


class DaemonHost(Protocol[Conn]):
    config: DaemonConfig
    engine: Engine
    service: ChatService
    responses: ResponsesService
    conversations: ConversationsService
    connections: set[Conn]
    turn_requests: int
    """Turn-starting requests in flight across the socket and HTTP (see ``max_turns_in_flight``)."""
    started_at: float

    @property
    def methods(self) -> Dispatcher[Conn]: ...

    @property
    def http(self) -> HttpAddress | None: ...

    @property
    def draining(self) -> bool: ...

    def shutdown_error(self, message: str) -> Overloaded: ...

    def request_shutdown(self) -> None: ...

    def touch(self) -> None: ...

    def adopt(self, task: asyncio.Task[None], session: str) -> None: ...

    def unfollowed(self) -> list[asyncio.Task[None]]: ...
