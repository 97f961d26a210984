"""Which TCP connections the HTTP endpoint keeps open, decided as each is accepted.

Who may *use* the endpoint is decided per request (:mod:`.guard`). But a connection costs the daemon
a file descriptor from the moment it is accepted, before it says anything, and aiohttp keeps one
that never sends a request for an hour: another local user, with no right to the endpoint, could
open enough of them to leave the daemon none for its own socket's clients. So a connection is
admitted only while fewer than ``max_connections`` are open, and, without a token, one of another
user's only while fewer than :data:`FOREIGN_CONNECTIONS` of those are (each is answered 403 by the
guard, enough for its user to read why, then closed); a connection must send a whole request within
:data:`IDLE_TIMEOUT_S` of being opened or answered (aiohttp's keep-alive timeout). Who owns each
admitted connection is looked up once, here; the guard asks :meth:`Admission.own`.

Nor is a connection admitted while the daemon has few file descriptors left (see
:mod:`claif_cod._descriptors`): those are kept for the clients it serves (a socket client's refusal
that says why, a Codex process), and looking up its owner would need one: past the limit, every
request of the daemon's own user was answered 403, "its owner could not be traced".
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from claif_cod._descriptors import shortage
from claif_cod._log import get_logger
from claif_codd.http.log_throttle import LogThrottle
from claif_codd.http.tcp_owner import address, loopback_peer_uid

log = get_logger("claif_codd.http")

FOREIGN_CONNECTIONS = 8
IDLE_TIMEOUT_S = 30.0
"""Longer than a client's pause between two requests on a kept-alive connection; a request's
head takes milliseconds to send."""


class Admission:
    """The connections open on the endpoint, and whose they are; ``own_uid_only``: no token, so
    that only the daemon's own user may use it."""

    def __init__(self, *, own_uid_only: bool, max_connections: int) -> None:
        self.own_uid_only = own_uid_only
        self.max_connections = max_connections
        self._open: set[web.RequestHandler] = set()
        self._own: set[web.RequestHandler] = set()
        self._refusals = LogThrottle()

    def admit(self, connection: web.RequestHandler, transport: asyncio.BaseTransport) -> bool:
        """Whether ``connection``, just accepted, may stay open (else its transport is closed)."""
        short = shortage()
        if short is not None:
            self._refuse(transport, "file_descriptors", open=short.open, value=short.limit)
            return False
        ours = not self.own_uid_only or _peer_uid(transport) == os.getuid()
        foreign = len(self._open) - len(self._own) if self.own_uid_only else 0
        full = len(self._open) >= self.max_connections
        if full or (not ours and foreign >= FOREIGN_CONNECTIONS):
            self._refuse(transport, "max_connections" if full else "foreign")
            return False
        self._open.add(connection)
        if ours:
            self._own.add(connection)
        return True

    def _refuse(self, transport: asyncio.BaseTransport, limit: str, **how_far: int | None) -> None:
        if (count := self._refusals.due()) is not None:  # a flood is a line a minute
            log.warning("http.connections_refused", count=count, limit=limit, **how_far)
        transport.close()

    def own(self, connection: object) -> bool:
        """Whether the connection belongs to the daemon's own user (always, with a token)."""
        return not self.own_uid_only or connection in self._own

    def closed(self, connection: web.RequestHandler) -> None:
        self._open.discard(connection)
        self._own.discard(connection)


def _peer_uid(transport: asyncio.BaseTransport) -> int | None:
    peer, ours = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    if peer is None or ours is None:
        return None
    return loopback_peer_uid(address(peer[0], peer[1]), address(ours[0], ours[1]))
