"""Where each line from one ``codex app-server`` goes, without any I/O.

A line is an answer to one of our pending requests (its future is resolved), a notification
about a thread (put on that thread's inbox), or a request of Codex's own (handed back to the
caller, which must answer it: Codex waits forever otherwise).  Lines that are not JSON-RPC
objects are logged and skipped.  :class:`~claif_cod.engine.appserver.AppServer` does the
reading and writing around it.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire, wire_notifications
from claif_cod.engine.errors import CodexProcessDied, CodexRpcError
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.thread_messages import Notification, ProcessExit, ThreadMessage

log = get_logger("claif_cod.appserver")

_envelope = msgspec.json.Decoder(wire.Envelope)
_scoped = msgspec.json.Decoder(wire_notifications.ThreadScoped)


class ServerRequest(NamedTuple):
    """A request Codex sent us (an approval, a client-defined tool call...)."""

    id: wire.RequestId
    method: str
    params: msgspec.Raw


class RpcRouter:
    """The pending requests and subscribed threads of one child, and the routing of its lines."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pending: dict[int, tuple[str, asyncio.Future[msgspec.Raw]]] = {}
        """Our requests awaiting an answer, by id: their method (for errors) and future."""
        self.threads: dict[str, Inbox[ThreadMessage]] = {}

    def dispatch(self, line: bytes) -> ServerRequest | None:
        """Route one line; a request of Codex's own is returned for the caller to answer."""
        try:
            envelope = _envelope.decode(line)
        except msgspec.DecodeError:
            if line.strip():
                start = line[:80].decode("utf-8", "replace")
                log.warning("appserver.bad_line", pid=self.pid, length=len(line), start=start)
            return None
        if envelope.method is not None and envelope.id is not None:
            return ServerRequest(envelope.id, envelope.method, envelope.params)
        if envelope.method is not None:
            self._route(envelope.method, envelope.params)
        elif isinstance(envelope.id, int):
            pending = self.pending.get(envelope.id)
            if pending is None or pending[1].done():
                return None
            method, future = pending
            if envelope.error is not None:
                future.set_exception(CodexRpcError(method, envelope.error.code, envelope.error.message))
            else:
                future.set_result(envelope.result)
        return None

    def _route(self, method: str, params: msgspec.Raw) -> None:
        try:
            thread_id = _scoped.decode(params).thread_id
        except msgspec.DecodeError:
            return
        if thread_id is not None and (queue := self.threads.get(thread_id)) is not None:
            queue.put_nowait(Notification(method, params))

    def fail_all(self, error: CodexProcessDied) -> None:
        """The child is gone: every pending request fails and every thread hears of it."""
        for _, future in self.pending.values():
            if not future.done():
                future.set_exception(error)
        for queue in self.threads.values():
            queue.put_nowait(ProcessExit(error))
