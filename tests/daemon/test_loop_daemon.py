"""An async client's ``create()`` goes to the daemon on a connection of the caller's own loop once
the engine loop is connected (``transport.loop_daemon``): same answers, openai's own errors and
retries, cancelled requests stopped in the daemon, every loop's connection closed with it."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess, full_daemon, refusals
from fresh_script import run_script
from loop_handlers import answered_on
from waiting import wait_until

from claif_cod import AsyncCodexClient, fast_create
from claif_cod.event_stream import AsyncEventStream
from claif_cod.testing import ModelServer
from claif_cod.transport import loop_daemon
from claif_cod.transport.backend import IGNORED_HEADER
from claif_cod.transport.daemon_backend import DaemonBackend

pytestmark = pytest.mark.codex


@pytest.fixture
def engine_loop_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many requests the engine loop's daemon connection carried, by endpoint (the callers' loops'
    connections are ``DaemonBackend`` s too: only those on the engine's thread are counted)."""
    calls: Counter[str] = Counter()
    for name in ("chat", "responses"):
        original = getattr(DaemonBackend, name)

        async def counted(self: DaemonBackend, body: bytes, options: Any, _name: str = name, _f: Any = original) -> Any:
            if threading.current_thread().name == "claif-cod-engine":
                calls[_name] += 1
            return await _f(self, body, options)

        monkeypatch.setattr(DaemonBackend, name, counted)
    return calls


async def warm(client: AsyncCodexClient) -> None:
    """A loop's first requests (the client's first, then the loop's first with the daemon known) go
    through the engine loop; later ones on the loop's own connection."""
    for text in ("warm", "up"):
        await client.chat.completions.create(messages=[user(text)])


def turns_stop(daemon: DaemonProcess) -> None:
    wait_until(lambda: daemon.status().turns_in_flight == 0, "the daemon to stop the abandoned turn")


async def test_turns_after_the_first_go_on_the_callers_loop(
    daemon: DaemonProcess, workdir: Path, engine_loop_calls: Counter[str]
) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        first = await client.chat.completions.create(messages=[user("one")])
        history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
        middle = await client.chat.completions.create(messages=[*history, user("two")])
        history += [user("two"), {"role": "assistant", "content": middle.choices[0].message.content}]
        assert engine_loop_calls == {"chat": 2}
        second = await client.chat.completions.create(messages=[*history, user("two")])
        assert second.choices[0].message.content == "[turn 3] Echo: two"
        history += [user("two"), {"role": "assistant", "content": second.choices[0].message.content}]
        stream = await client.chat.completions.create(messages=[*history, user("three four")], stream=True, seed=7)
        assert isinstance(stream, openai.AsyncStream)
        assert stream.response.headers[IGNORED_HEADER] == "seed"
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        assert text == "[turn 4] Echo: three four"
        assert (await client.responses.create(input="five")).output_text == "Echo: five"
        events = [event.type async for event in await client.responses.create(input="six", stream=True)]
        assert events[0] == "response.created" and events[-1] == "response.completed"
        assert engine_loop_calls == {"chat": 2}
        status = await asyncio.to_thread(daemon.status)
        assert status.connections == 3  # the engine loop's, this loop's, and this status call


async def test_a_failed_request_raises_openais_error_and_a_retry_goes_through_the_engine_loop(
    daemon: DaemonProcess, workdir: Path, engine_loop_calls: Counter[str]
) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini", max_retries=1) as client:
        await warm(client)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(messages=[user("hi")], n=0)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(messages=[user("[[status:500]] hi")], stream=True)
        reply = await client.chat.completions.create(messages=[user("ok")])
        assert reply.choices[0].message.content == "Echo: ok"
    assert engine_loop_calls == {"chat": 3}  # the first two requests, and the retry of the one that failed


async def test_a_streams_objects_are_made_while_codex_works(
    daemon: DaemonProcess, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openai's ``AsyncStream`` is made on the caller's loop while the daemon waits for Codex's first
    text, so that the first chunk does not wait for it."""
    order: list[str] = []
    made = AsyncEventStream.__init__

    def init(self: Any, *args: Any, __made: Any = made, **kwargs: Any) -> None:
        order.append("stream")
        __made(self, *args, **kwargs)

    chat = DaemonBackend.chat

    async def replied(self: DaemonBackend, body: bytes, options: Any) -> Any:
        reply = await chat(self, body, options)
        order.append("reply")
        return reply

    monkeypatch.setattr(AsyncEventStream, "__init__", init)
    monkeypatch.setattr(DaemonBackend, "chat", replied)
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        await warm(client)
        order.clear()
        stream = await client.chat.completions.create(messages=[user("[[slow:200]] p q")], stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "Echo: p q"
    assert order == ["stream", "reply"]  # the reply comes with the first chunk, 200 ms in


async def test_a_stream_whose_objects_could_not_be_made_goes_through_the_engine_loop(
    daemon: DaemonProcess, workdir: Path, engine_loop_calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in making them is logged; the daemon stops what it began, and the engine loop takes
    the request again (where openai's own pipeline makes them)."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("making the stream's objects failed")

    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        await warm(client)
        monkeypatch.setattr(fast_create._StreamAnswer, "request", refuse)
        stream = await client.chat.completions.create(messages=[user("[[stall-mid]] v w x")], stream=True)
        first = await stream.__anext__()
        await stream.close()
        await asyncio.to_thread(turns_stop, daemon)  # the first try's turn too, stalled at the model
    assert first.choices[0].delta.content == "Echo:"
    assert engine_loop_calls == {"chat": 3}


async def test_a_cancelled_request_is_stopped_in_the_daemon(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer, engine_loop_calls: Counter[str]
) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        await warm(client)
        waiting = asyncio.create_task(client.chat.completions.create(messages=[user("[[stall]] two")]))
        await asyncio.to_thread(codex_model_server.wait_for_requests, 2, 20)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.to_thread(turns_stop, daemon)
        reply = await client.chat.completions.create(messages=[user("after")])
        assert reply.choices[0].message.content == "Echo: after"
    assert engine_loop_calls == {"chat": 2}


async def test_a_stream_closed_early_stops_its_turn(daemon: DaemonProcess, workdir: Path) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        await warm(client)
        stream = await client.chat.completions.create(messages=[user("[[stall-mid]] a b c")], stream=True)
        await stream.__anext__()
        await stream.close()
        await asyncio.to_thread(turns_stop, daemon)


async def test_an_approval_handler_runs_on_the_callers_loop_on_either_connection(
    daemon: DaemonProcess, workdir: Path, engine_loop_calls: Counter[str]
) -> None:
    """Through the engine loop's connection (the first requests) and the loop's own alike, the handler
    runs on the loop that made the request, and may await what that loop resolves."""
    loops: list[bool] = []
    handler = answered_on(asyncio.get_running_loop(), loops)

    async with AsyncCodexClient(
        daemon="require",
        model="o4-mini",
        approval_policy="untrusted",
        sandbox_mode="workspace-write",
        approval_handler=handler,
    ) as client:
        for name in ("one", "two", "three"):
            reply = await client.chat.completions.create(messages=[user(f"[[tool:touch {name}.txt]] go")])
            assert (reply.choices[0].message.content or "").startswith("Tool said:")
    assert loops == [True, True, True]
    assert all((workdir / f"{name}.txt").exists() for name in ("one", "two", "three"))
    assert engine_loop_calls == {"chat": 2}  # the third on the loop's own connection (see warm())


def test_a_refused_loop_connection_is_not_tried_again_at_once(
    daemon: DaemonProcess, workdir: Path, engine_loop_calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_daemon, "REOPEN_AFTER_S", 60.0)
    holder = full_daemon(daemon)

    async def turns() -> list[str | None]:
        async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
            return [
                (await client.chat.completions.create(messages=[user(f"turn {i}")])).choices[0].message.content
                for i in range(5)
            ]

    try:
        replies = asyncio.run(turns())
    finally:
        holder.close()
    assert replies == [f"Echo: turn {i}" for i in range(5)]
    assert engine_loop_calls == {"chat": 5}
    assert refusals(daemon) == 1  # the third request's (see warm()); the next two did not try again


def test_each_loop_has_its_connection_closed_with_it(
    daemon: DaemonProcess, workdir: Path, engine_loop_calls: Counter[str]
) -> None:
    client = AsyncCodexClient(daemon="require", model="o4-mini")

    async def turn(text: str) -> str | None:
        return (await client.chat.completions.create(messages=[user(text)])).choices[0].message.content

    async def three(text: str) -> list[str | None]:
        return [await turn(text) for _ in range(3)]

    assert asyncio.run(three("a")) == ["Echo: a"] * 3
    assert asyncio.run(three("b")) == ["Echo: b"] * 3
    assert engine_loop_calls == {"chat": 3}  # the client's first request, and each loop's first
    wait_until(lambda: daemon.status().connections == 2, "the ended loops' connections to close")
    direct = client._core._direct_connections
    assert direct is not None and len(direct.loops._backends) == 1  # the first loop's was let go
    asyncio.run(client.close())


def test_a_script_that_never_closes_its_async_client_exits_quietly(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    script = """
        import asyncio
        from claif_cod import AsyncCodexClient

        client = AsyncCodexClient(daemon="require", model="o4-mini")

        async def main(text):
            await client.chat.completions.create(messages=[{"role": "user", "content": "warm"}])
            reply = await client.chat.completions.create(messages=[{"role": "user", "content": text}])
            print(reply.choices[0].message.content)
            stream = await client.chat.completions.create(
                messages=[{"role": "user", "content": "[[stall-mid]] a b c"}], stream=True
            )
            await stream.__anext__()

        asyncio.run(main("hi"))
        asyncio.run(main("again"))
        """
    done = run_script(script, workdir, daemon_env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "Echo: hi\nEcho: again\n", "")
    turns_stop(daemon)
