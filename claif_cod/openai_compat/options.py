"""The per-client settings every chat and Responses request carries into the service."""

from __future__ import annotations

import asyncio
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from claif_cod._log import get_logger
from claif_cod.engine.approvals import ApprovalHandler, decline_all
from claif_cod.engine.config import CodexConfig
from claif_cod.engine.errors import EngineError, TurnTimedOut

if TYPE_CHECKING:
    from claif_cod.engine.control import TurnControl  # the daemon's: its turns are the engine's

log = get_logger("claif_cod.requests")

T = TypeVar("T")


def python_warning(message: str) -> None:
    """A request's warning for a Python caller: a ``UserWarning``, which Python's filters show once per
    message by default. Filters that make it an error do not fail the request (through the daemon
    it runs already when its warning comes): it is logged instead."""
    try:
        warnings.warn(message, UserWarning, stacklevel=2)
    except Exception:
        log.warning("request.warning", warning=message)


@dataclass(frozen=True)
class RequestOptions:
    """Per-client settings that travel with every request."""

    config: CodexConfig
    default_model: str | None = None
    strict: bool = False
    timeout: float | None = None
    timeout_source: str | None = None
    """Where ``timeout`` came from, named in the error when it passes (``timeout=``, a header...)."""
    session_id: str | None = None
    approvals: ApprovalHandler = decline_all
    control: TurnControl | None = None
    """Set by the daemon, so ``turn.interrupt`` can name the request; records whether a turn was interrupted."""
    warn: Callable[[str], None] = python_warning
    """Hears what the request should know but does not fail for (the daemon sends it to the client)."""
    caller_gone: Callable[[], bool] = lambda: False
    """True once nothing sent for the request can reach its caller any more (``serve --http``: its
    connection is closing). Its cancellation follows, but a stream's turn is read in a task of its
    own (engine events are taken whether or not the client reads them), which may take the turn's
    end meanwhile: asked as the end is taken, so that a turn nobody can be answered with is dropped."""

    def deadline(self) -> float | None:
        """When a request starting now must be done, turn included (``time.monotonic()``)."""
        return None if self.timeout is None else time.monotonic() + self.timeout

    async def before(self, deadline: float | None, step: Awaitable[T]) -> T:
        """``step`` before the turn runs (probing or starting Codex, a thread, the turn) within the
        request's ``deadline``: past it, the request times out as its turn would (a hung Codex held
        it until its own 30 s start or handshake limit, or the liveness probe, whatever ``timeout``)."""
        if deadline is None:
            return await step
        if sys.version_info < (3, 11):  # pragma: no cover - CPython 3.10: wait_for's own timeouts
            try:
                return await asyncio.wait_for(step, deadline - time.monotonic())
            except asyncio.TimeoutError as exc:
                if isinstance(exc, EngineError) or self.timeout is None:
                    raise
                raise TurnTimedOut(self.timeout, self.timeout_source) from None
        scope = asyncio.timeout(deadline - time.monotonic())
        try:
            async with scope:
                return await step
        except TimeoutError:
            if not scope.expired() or self.timeout is None:  # another deadline's, inside the step
                raise
            raise TurnTimedOut(self.timeout, self.timeout_source) from None
