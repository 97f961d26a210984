"""A request's hold on the turns it runs: interrupt them without cancelling the request.

``$/cancel`` ends a request with an error; ``turn.interrupt`` named by the request stops its
turns (every choice of an ``n > 1`` chat) and lets the request answer with what they produced.
A request can be interrupted before its turn has started (it may wait for a busy session): it
then starts none (``TurnOptions.interrupted``); one whose ``turn/start`` was already on its way is
interrupted as soon as it starts.
"""

from __future__ import annotations

import asyncio

from claif_cod.engine.turns import Turn


class TurnControl:
    def __init__(self) -> None:
        self._turns: list[Turn] = []
        self.requested = False
        """``turn.interrupt`` named this request."""
        self.interrupted = False
        """A turn of this request ended ``interrupted`` (by us or by an interrupt naming its session)."""

    async def attach(self, turn: Turn) -> None:
        """A turn the request started; interrupted at once if the request already was."""
        self._turns.append(turn)
        if self.requested:
            await turn.interrupt()

    async def interrupt(self) -> bool:
        """Interrupt the request's turns; False when every turn it started has already ended."""
        self.requested = True
        running = [turn for turn in self._turns if not turn.finished]
        await asyncio.gather(*(turn.interrupt() for turn in running))
        return bool(running) or not self._turns
