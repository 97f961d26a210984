"""The per-client settings every chat and Responses request carries into the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from claif_cod.engine.approvals import ApprovalHandler, decline_all
from claif_cod.engine.config import CodexConfig

if TYPE_CHECKING:
    from claif_cod.engine.control import TurnControl  # the daemon's: its turns are the engine's


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
