"""Ending what an interrupted turn's commands left running.

Codex interrupts a turn's model, not the processes its commands started: a ``sleep``, a test run,
a server go on after ``turn/interrupt`` (seen with 0.163; openai/codex#42717), in a daemon for as
long as the thread stays loaded. A turn stopped by its caller (a deadline, a cancelled request, a
stop sequence, ``turn.interrupt``) has the processes its own commands started terminated, by
Codex's ``thread/backgroundTerminals`` requests; those of the thread's earlier turns (a dev server
a finished turn started on purpose), and those of a response already answered with tool calls (a
turn then given up while it waits for their results), are left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer

log = get_logger("claif_cod.engine")

_ENDING: set[asyncio.Task[None]] = set()
"""Cleanups under way (the loop keeps only weak references to tasks)."""


def end_later(server: AppServer, thread_id: str, item_ids: Collection[str], grace: float) -> None:
    """Terminate, in the background, the processes the commands ``item_ids`` left running."""
    task = asyncio.get_running_loop().create_task(_end(server, thread_id, item_ids, grace))
    _ENDING.add(task)
    task.add_done_callback(_ENDING.discard)


async def _end(server: AppServer, thread_id: str, item_ids: Collection[str], grace: float) -> None:
    try:
        cursor: str | None = None
        while True:
            params = wire.BackgroundTerminalsListParams(thread_id=thread_id, cursor=cursor)
            page = await server.request(
                "thread/backgroundTerminals/list", params, wire.BackgroundTerminalsList, timeout=grace
            )
            for terminal in page.data:
                if terminal.item_id in item_ids:
                    end = wire.BackgroundTerminalTerminateParams(thread_id=thread_id, process_id=terminal.process_id)
                    await server.request("thread/backgroundTerminals/terminate", end, msgspec.Raw, timeout=grace)
                    log.info("engine.command_ended", thread_id=thread_id, item_id=terminal.item_id)
            cursor = page.next_cursor
            if not cursor:
                return
    except Exception as exc:  # a Codex without these requests, or one gone: nothing more to do here
        log.debug("engine.commands_not_ended", thread_id=thread_id, error=str(exc))
