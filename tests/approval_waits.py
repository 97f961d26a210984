"""An approval handler that waits for its user, whose request ends first (in-process and through a daemon)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Literal

import openai
import pytest
from chat_messages import user

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest


def never_answered(asked: threading.Event, cancelled: threading.Event) -> ApprovalHandler:
    """A handler whose user never answers: ``asked`` set when it is asked, ``cancelled`` when let go."""

    async def handler(request: ApprovalRequest) -> Literal["accept", "decline"]:
        asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "accept"

    return handler


async def handler_cancelled_when_its_request_times_out(daemon: Literal["off", "require"], workdir: Path) -> None:
    """A handler awaiting its user (an editor's prompt) ran on after its request had timed out, for
    the life of the loop: it is cancelled once the request's turn ends, and nothing was approved."""
    asked, cancelled = threading.Event(), threading.Event()
    handler = never_answered(asked, cancelled)
    async with AsyncCodexClient(
        daemon=daemon, approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch x.txt]] go")], timeout=2)
        assert asked.is_set()
        assert await asyncio.to_thread(cancelled.wait, 10)
        again = await client.chat.completions.create(model="o4-mini", messages=[user("next")])
    assert again.choices[0].message.content == "Echo: next"
    assert not (workdir / "x.txt").exists()


def sync_handler_cancelled_when_its_request_times_out(daemon: Literal["off", "require"], workdir: Path) -> None:
    """As :func:`handler_cancelled_when_its_request_times_out`, for a ``CodexClient``: through the daemon
    its thread ran the handler to its end before it read the request's timeout (a 408 left unread)."""
    asked, cancelled = threading.Event(), threading.Event()
    handler = never_answered(asked, cancelled)
    with CodexClient(
        daemon=daemon, approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        client.chat.completions.create(model="o4-mini", messages=[user("warm")])  # through the daemon: from
        # now on on a connection of the caller's thread, which reads the daemon's messages itself
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch y.txt]] go")], timeout=2)
        assert asked.is_set()
        assert cancelled.wait(10)
        again = client.chat.completions.create(model="o4-mini", messages=[user("next")])
    assert again.choices[0].message.content == "Echo: next"
    assert not (workdir / "y.txt").exists()
