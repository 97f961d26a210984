"""An approval handler whose answer is not one of the four decisions ("yes", None): the action is
declined at once and the answer logged, in-process and through a daemon, by both kinds of client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from chat_messages import user

from claif_cod import ApprovalRequest, AsyncCodexClient, CodexClient

NOT_DECISIONS = ["yes", None]
"""What a handler may return by mistake: a word Codex does not take, or nothing at all."""


def _answering(answer: object) -> Callable[[ApprovalRequest], Awaitable[object]]:
    """A handler answering ``answer``, which no ``Decision`` allows: a caller's mistake."""

    async def handler(_request: ApprovalRequest) -> object:
        return answer

    return handler


def _client_settings(answer: object) -> dict[str, Any]:
    """A client whose Codex asks before running a command, and whose handler answers ``answer``."""
    return {
        "approval_policy": "untrusted",
        "sandbox_mode": "workspace-write",
        "approval_handler": _answering(answer),
        "timeout": 60,
        "max_retries": 0,
    }


def _declined(content: str | None, made: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert "rejected by user" in (content or "")  # Codex was told "decline", not a value it refused
    assert not made.exists()
    assert [r for r in caplog.records if r.getMessage() == "engine.approval_handler_bad_decision"]
    caplog.clear()


def sync_client_declines(
    daemon: Literal["off", "require"], answer: object, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the daemon ``approval.respond`` refused the answer, and the turn waited for the
    daemon's deadline: the request failed with its timeout."""
    with (
        caplog.at_level(logging.ERROR),
        CodexClient(daemon=daemon, **_client_settings(answer)) as client,
    ):
        # The first through the daemon's engine-loop connection, the second on the caller's own.
        for name in ("first.txt", "second.txt"):
            reply = client.chat.completions.create(model="o4-mini", messages=[user(f"[[tool:touch {name}]] go")])
            _declined(reply.choices[0].message.content, workdir / name, caplog)


async def async_client_declines(
    daemon: Literal["off", "require"], answer: object, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        async with AsyncCodexClient(daemon=daemon, **_client_settings(answer)) as client:
            reply = await client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch a.txt]] go")])
            _declined(reply.choices[0].message.content, workdir / "a.txt", caplog)
