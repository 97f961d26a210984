"""A Codex thread as the engine holds it: where it is loaded, and what its next turn must tell Codex.

Threads (:mod:`claif_cod.engine.threads`) make and resume handles; a running turn
(:mod:`claif_cod.engine.turns`) holds its handle's lock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from claif_cod.engine import wire, wire_notifications
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.tools import NO_TOOLS, ThreadTools


@dataclass
class ThreadHandle:
    """A Codex thread and the process that has it loaded."""

    thread_id: str
    key: ProcessKey
    api_key: str | None = field(repr=False)
    server: AppServer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    turns: int = 0
    last_used: float = field(default_factory=time.time)
    broken: bool = False
    ephemeral: bool = False
    """Codex keeps no rollout: the thread dies with its process (or its unloading) and cannot be forked."""
    unloaded: bool = False
    """Unsubscribed for idleness: Codex has dropped it; a persisted thread is resumed on its next turn."""
    retarget: bool = False
    """The caller's settings changed since the thread was loaded: the next turn carries them."""
    tools: ThreadTools = NO_TOOLS
    """Fixed when the thread starts; a thread with caller tools cannot be resumed in another process."""
    model: str = ""
    """The model the thread runs now (Codex's answer when it was started, resumed or forked, or the
    last turn's override): a turn that asks for it again sends no override, which Codex would
    otherwise apply as a change of turn settings before the model is called."""
    effort: str | None = None
    """The reasoning effort the thread runs at now (None: the model's default).  Codex keeps a
    turn's effort for the turns after it, so this tells when a turn must send one."""
    summary: str | None = None
    """The reasoning summary a turn last asked for (None: none asked, or undone with "none";
    "": not known, after a resume)."""
    base_effort: str | None = None
    """The effort the thread started with (Codex's config, or None): what a turn that names no
    effort gets, as each OpenAI request without ``reasoning_effort`` gets the default."""
    resumed_turns: tuple[str, ...] | None = None
    """The ids of the turns the rollout held when the thread was last resumed (None: never resumed)."""
    loading: asyncio.Task[None] | None = field(default=None, repr=False, compare=False)
    """The ``thread/resume`` under way for it: every caller that needs the thread loaded meanwhile waits
    for that one (see ``Threads.ensure_loaded``); a second resume would load it twice."""
    usage_total: wire_notifications.TokenUsageBreakdown | None = None
    """Codex's running count of the thread's tokens, as it last reported it.  Codex reports its
    count again, unchanged, as it ends an interrupted turn: its ``last`` is then the previous model
    request's (another turn's, when the interrupted one finished none), not a new request's."""


def retarget_params(handle: ThreadHandle) -> dict[str, Any]:
    if not handle.retarget:
        return {}
    key = handle.key
    return {
        "cwd": key.working_dir,
        "approval_policy": key.approval,
        "sandbox_policy": wire.SandboxPolicy.from_mode(key.sandbox) if key.sandbox else None,
    }
