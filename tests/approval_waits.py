"""An approval handler that waits for its user, whose request ends first (in-process and through a daemon)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import openai
import pytest
from chat_messages import user

from claif_cod import AsyncCodexClient
from claif_cod.engine.approvals import ApprovalRequest


async def handler_cancelled_when_its_request_times_out(daemon: Literal["off", "require"], workdir: Path) -> None:
    """A handler awaiting its user (an editor's prompt) ran on after its request had timed out, for
    the life of the loop: it is cancelled once the request's turn ends, and nothing was approved."""
    asked, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(request: ApprovalRequest) -> Literal["accept", "decline"]:
        asked.set()
        try:
            await asyncio.Event().wait()  # the user never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "accept"

    async with AsyncCodexClient(
        daemon=daemon, approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch x.txt]] go")], timeout=2)
        assert asked.is_set()
        await asyncio.wait_for(cancelled.wait(), 10)
        again = await client.chat.completions.create(model="o4-mini", messages=[user("next")])
    assert again.choices[0].message.content == "Echo: next"
    assert not (workdir / "x.txt").exists()
