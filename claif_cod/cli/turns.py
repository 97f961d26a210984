"""Running one streamed turn, and interrupting it with Ctrl-C.

A turn runs as a task on the command's event loop (in the main thread). While it runs, SIGINT
cancels that task instead of raising ``KeyboardInterrupt`` somewhere in openai's code: the
cancellation closes the stream, and closing the stream makes the engine (or the daemon)
interrupt the Codex turn, so the conversation stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from claif_cod.cli.terminal import Console, TerminalApprover

if TYPE_CHECKING:  # openai loads with the client, when a command first needs it
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionMessageParam

    from claif_cod.client import AsyncCodexClient

T = TypeVar("T")


class Interrupted(Exception):
    """Ctrl-C stopped the turn, or the user cancelled it at an approval question."""


@dataclass
class TurnResult:
    text: str = ""
    id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: CompletionUsage | None = None


def messages_for(prompt: str, system: str | None) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


async def stream_turn(
    client: AsyncCodexClient,
    messages: list[ChatCompletionMessageParam],
    *,
    model: str | None,
    console: Console | None,
    progress: bool = False,
) -> TurnResult:
    """Stream one turn, writing each delta to ``console`` (if any) as it arrives.

    ``--timeout`` is the deadline of the whole turn: the client's own ``timeout`` bounds only the
    wait for each of a stream's events, so the turn runs in a task that the deadline cancels (which
    closes the stream, and so interrupts the Codex turn), and openai's ``APITimeoutError`` says so.

    ``progress``: say on the terminal that Codex is awaited until the first text (``query``'s one
    turn also starts Codex: seconds of silence otherwise; ``chat`` shows its banner instead).
    """
    import httpx2
    import openai

    turn = _streamed(client, messages, model=model, console=console, progress=progress)
    deadline = client.timeout if isinstance(client.timeout, (int, float)) else None
    try:
        return await asyncio.wait_for(turn, deadline)
    except asyncio.TimeoutError:
        request = httpx2.Request("POST", client.base_url.join("chat/completions"))
        raise openai.APITimeoutError(request=request) from None


async def _streamed(
    client: AsyncCodexClient,
    messages: list[ChatCompletionMessageParam],
    *,
    model: str | None,
    console: Console | None,
    progress: bool,
) -> TurnResult:
    result = TurnResult()
    if console is not None and progress:
        console.status("waiting for Codex...")
    try:
        stream = await client.chat.completions.create(
            # None lets Codex use the model of its own configuration (openai's signature wants a str).
            model=cast(str, model),
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    except BaseException:
        if console is not None:
            console.clear_status()  # before the error is shown
        raise
    try:
        async for chunk in stream:
            result.id = chunk.id
            result.model = chunk.model
            if chunk.usage is not None:
                result.usage = chunk.usage
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                text = choice.delta.content or ""
                if text:
                    result.text += text
                    if console is not None:
                        console.write(text)
                if choice.finish_reason is not None:
                    result.finish_reason = choice.finish_reason
    finally:
        # After a cancellation the stream's generator may still be finishing on the engine loop;
        # it closes itself then, so a refusal to close it twice is harmless.
        with contextlib.suppress(RuntimeError):
            await stream.close()
        if console is not None:
            console.clear_status()
    return result


class TurnRunner:
    """Runs coroutines on ``loop`` with Ctrl-C turned into :class:`Interrupted`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, approver: TerminalApprover | None = None) -> None:
        self.loop = loop
        self.approver = approver

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.approver is not None:
            self.approver.new_turn()
        task = self.loop.create_task(coro)
        interrupted = False

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            if self.approver is not None:
                self.approver.abort()
            task.cancel()

        handled = True
        try:
            self.loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
            handled = False
        try:
            result = self.loop.run_until_complete(task)
        except (asyncio.CancelledError, Exception):
            # Once Ctrl-C cancelled the turn, whatever the stream raised while closing (the
            # cancellation itself, or a close racing the engine's own clean-up) means "interrupted".
            if interrupted:
                raise Interrupted() from None
            raise
        except KeyboardInterrupt:
            task.cancel()
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(task)
            raise Interrupted() from None
        finally:
            if handled:
                self.loop.remove_signal_handler(signal.SIGINT)
        if self.approver is not None and self.approver.cancelled:  # it ended as Codex was told: not an answer
            raise Interrupted()
        return result
