"""``AsyncCodexClient`` under trio, where openai's own async client runs too (through anyio): the same
answers, streams and exceptions, and a cancelled caller's turn interrupted, as under asyncio."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_messages import user
from fresh_script import run_script
from test_early_dispatch import interrupted

from claif_cod import AsyncCodexClient
from claif_cod.testing import ModelServer
from claif_cod.transport.other_loops import on_engine_loop

trio = pytest.importorskip("trio", reason="trio is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.codex


def on_trio(main: Any) -> Any:
    """``main(client)``'s result, run by ``trio.run`` with a client made (and closed) there."""

    async def run() -> Any:
        async with AsyncCodexClient(daemon="off", model="o4-mini") as client:
            return await main(client)

    return trio.run(run)


def test_an_async_client_answers_on_trio_as_on_asyncio(codex_home: Path, workdir: Path) -> None:
    async def main(client: AsyncCodexClient) -> None:
        reply = await client.chat.completions.create(messages=[user("hello trio")])
        assert reply.choices[0].message.content == "Echo: hello trio"
        stream = await client.chat.completions.create(messages=[user("[[long:30]]")], stream=True)
        words = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        assert words == " ".join(f"w{n}" for n in range(1, 31))
        events = await client.responses.create(input="streamed", stream=True)
        kinds = [event.type async for event in events]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "o4-mini" in [model.id async for model in client.models.list()]
        with pytest.raises(openai.BadRequestError, match="Invalid 'messages': empty array"):
            await client.chat.completions.create(messages=[])
        with pytest.raises(openai.InternalServerError):
            await client.with_options(max_retries=0).chat.completions.create(messages=[user("[[status:500]]")])

    on_trio(main)


@pytest.mark.parametrize("stream", [False, True])
def test_a_cancelled_trio_caller_interrupts_its_turn(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, stream: bool
) -> None:
    """Cancelled while Codex works (a plain reply, or a stream before its first chunk): the turn is
    interrupted, and the conversation goes on without it."""

    async def main(client: AsyncCodexClient) -> str | None:
        first = await client.chat.completions.create(messages=[user("one")])
        history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
        async with trio.open_nursery() as nursery:

            async def waiting() -> None:
                await client.chat.completions.create(messages=[*history, user("[[stall]] two")], stream=stream)

            nursery.start_soon(waiting)
            await trio.to_thread.run_sync(codex_model_server.wait_for_requests, 2, 20)
            nursery.cancel_scope.cancel()
        await trio.to_thread.run_sync(interrupted, client)
        again = await client.chat.completions.create(messages=[*history, user("two")])
        return again.choices[0].message.content

    assert on_trio(main) == "[turn 2] Echo: two"


def test_a_stream_closed_early_on_trio_interrupts_its_turn(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    async def main(client: AsyncCodexClient) -> None:
        stream = await client.chat.completions.create(messages=[user("[[stall-mid]] three four")], stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
        await trio.to_thread.run_sync(interrupted, client)

    on_trio(main)


def test_a_stream_cancelled_while_waiting_for_its_next_chunk_interrupts_its_turn(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """The wait is a worker thread's: cancelled, the caller goes on at once, the turn is interrupted and
    the worker let go (the client then answers as before)."""

    async def main(client: AsyncCodexClient) -> str | None:
        stream = await client.chat.completions.create(messages=[user("[[stall-mid]] five six")], stream=True)
        with trio.move_on_after(0.5) as scope:  # the model never sends more: the wait is cut, never met
            async for _chunk in stream:
                pass
        assert scope.cancelled_caught
        await trio.to_thread.run_sync(interrupted, client)
        after = await client.chat.completions.create(messages=[user("seven")])
        return after.choices[0].message.content

    assert on_trio(main) == "Echo: seven"


def test_a_trio_script_that_never_closes_its_client_exits_quietly(codex_home: Path, workdir: Path) -> None:
    """Streams left out: openai's own leave async generators unfinished under trio, which ``-X dev``
    reports (with any transport)."""
    script = """
        import trio
        from claif_cod import AsyncCodexClient

        async def main():
            client = AsyncCodexClient(daemon="off", model="o4-mini")
            reply = await client.chat.completions.create(messages=[{"role": "user", "content": "bye"}])
            response = await client.responses.create(input="bye again")
            print(reply.choices[0].message.content, "/", response.output_text)

        trio.run(main)
    """
    done = run_script(script, workdir, dict(os.environ))
    assert (done.returncode, done.stdout, done.stderr) == (0, "Echo: bye / Echo: bye again\n", "")


def test_a_request_made_as_its_engine_loop_closes_leaves_no_coroutine_unawaited() -> None:
    """The engine loop closed between the request's start and its hand-over (its client closed)."""
    engine = asyncio.new_event_loop()
    engine.close()

    async def answer() -> None:
        raise AssertionError("never run")

    coro = answer()
    with pytest.raises(RuntimeError, match="closed"):
        trio.run(on_engine_loop, engine, coro)
    assert coro.cr_frame is None  # closed, not left for the collector to warn about
