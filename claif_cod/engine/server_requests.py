"""Codex's requests to us (approvals...): the handler the app-server client hands each one to, and
the error a handler raises to answer Codex with a JSON-RPC error.

Apart from :mod:`claif_cod.engine.appserver`, which calls the handler, so that the modules that
write handlers need the contract only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec


class RpcErrorReply(Exception):
    """Raised by a server-request handler to answer Codex with a JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ServerRequestHandler = Callable[[str, msgspec.Raw], Awaitable[object]]
"""Answers one server → client request (approvals...); return the ``result`` or raise RpcErrorReply."""
