"""An approval handler as an editor writes one: it waits for an answer its own event loop gives."""

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
