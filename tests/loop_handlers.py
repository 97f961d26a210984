"""Approval handlers as tests write them: one that records and answers, one that waits for an answer
its own event loop gives, as an editor's does."""

from __future__ import annotations

import asyncio

from claif_cod import ApprovalHandler, ApprovalRequest, Decision


def answered_on(caller: asyncio.AbstractEventLoop, loops: list[bool]) -> ApprovalHandler:
    """Accepts once ``caller`` resolves the answer; records in ``loops`` whether it ran on ``caller``
    (awaiting a future of another loop raises, and the engine declines)."""

    async def handler(_request: ApprovalRequest) -> Decision:
        loops.append(asyncio.get_running_loop() is caller)
        answer: asyncio.Future[Decision] = caller.create_future()
        caller.call_soon(answer.set_result, "accept")
        return await answer

    return handler


def recording(seen: list[ApprovalRequest], decision: Decision = "accept") -> ApprovalHandler:
    """Answers ``decision`` to every question, and records each in ``seen``."""

    async def handler(request: ApprovalRequest) -> Decision:
        seen.append(request)
        return decision

    return handler
