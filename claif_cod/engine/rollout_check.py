"""Whether a resumed thread's rollout still holds all that Codex recorded of the thread.

Codex 0.163 rebuilds a resumed thread's model history from its rollout (the JSONL files under
``$CODEX_HOME/sessions``) but lists its turns from its own database (``thread_history_*.sqlite``).  A
rollout cut short (a full disk, a crash, an edit) therefore resumes without an error and with every
turn listed, and the next turn runs on what is left of the history.  Codex compares the rollout
with that database only when it forks a thread ("durable rollout shrank before projection"), so a
resume is followed by an ephemeral fork, let go at once: the only way the protocol tells of the cut.
It costs a resume about 20-30 ms (``bench/idle_sessions.py``: a resumed session's turn 86 -> 109 ms
median; sent beside the resume instead, 112), and a warm turn nothing.
"""

from __future__ import annotations

from claif_cod._log import get_logger
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.errors import CodexRequestTimedOut, CodexRpcError

log = get_logger("claif_cod.engine")

SHRANK = "rollout shrank"
"""Codex's words (``thread/fork``) for a rollout shorter than what its database recorded of it."""


async def cut_short(server: AppServer, thread_id: str) -> str | None:
    """Codex's words when the rollout of ``thread_id`` (loaded in ``server``) is shorter than Codex
    recorded; None when it is not, or when Codex cannot tell (a thread from before Codex kept that
    record forks without a check; any other refusal is logged and taken as no news)."""
    try:
        fork = await server.request(
            "thread/fork",
            wire.ThreadForkParams(thread_id=thread_id, ephemeral=True, exclude_turns=True),
            wire.ThreadResult,
        )
    except CodexRpcError as exc:
        if SHRANK in exc.message:
            return exc.message
        log.warning("engine.rollout_check_refused", thread_id=thread_id, error=exc.message[:300])
        return None
    except CodexRequestTimedOut:  # Codex answers, but not this: no news, and the resume itself stands
        log.warning("engine.rollout_check_unanswered", thread_id=thread_id)
        return None
    # Nothing runs on the fork: Codex (thread_unload_delay_secs=0) unloads it once unsubscribed.
    try:
        await server.request(
            "thread/unsubscribe", wire.ThreadUnsubscribeParams(thread_id=fork.thread.id), wire.ThreadUnsubscribeResult
        )
    except (CodexRpcError, CodexRequestTimedOut) as exc:  # the check passed: a fork left loaded costs memory
        log.warning("engine.rollout_check_fork_kept", thread_id=fork.thread.id, error=str(exc)[:300])
    return None
