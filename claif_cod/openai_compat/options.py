"""The per-client settings every chat and Responses request carries into the service."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claif_cod._log import get_logger
from claif_cod.engine.approvals import ApprovalHandler, decline_all
from claif_cod.engine.config import CodexConfig

if TYPE_CHECKING:
    from claif_cod.engine.control import TurnControl  # the daemon's: its turns are the engine's

log = get_logger("claif_cod.requests")


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
