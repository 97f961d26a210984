"""AppServer: JSON-RPC over a child's stdio, against a small fake `codex app-server` written in Python."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import claif_cod.engine.appserver as appserver
from claif_cod._version import __version__
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.child_process import STDERR_TAIL, child_environment
from claif_cod.engine.errors import CodexProcessDied, CodexRpcError, CodexStartFailed
from claif_cod.engine.server_requests import RpcErrorReply
from claif_cod.engine.thread_messages import Notification, ProcessExit, ThreadMessage

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals are POSIX")

FAKE = """
import json, os, signal, sys, time

MODE = os.environ.get("FAKE_MODE", "normal")
received = []
refused = {}
held = []
waiting = {}  # id of our server -> client request: id of the client request it answers
linger = False


def send(message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()


def ignore_sigterm_and_fork():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = os.fork()
    if grandchild == 0:
        while True:
            time.sleep(1)
    return grandchild


if MODE == "exit-at-start":
    sys.stderr.write("error: the fake refuses to start\\n")
    sys.stderr.flush()
    sys.exit(5)

for line in sys.stdin:
    message = json.loads(line)
    received.append(message)
    method = message.get("method")
    if method is None:  # the client's answer to one of our requests
        asked_by = waiting.pop(message["id"], None)
        if asked_by is not None:
            send({"id": asked_by, "result": message})
        continue
    if "id" not in message:
        if method == "release":  # answer every held request with how many were held
            for held_id in held:
                send({"id": held_id, "result": len(held)})
            held.clear()
        continue  # a notification
    rid, params = message["id"], message.get("params")
    if method == "initialize":
        if MODE == "mute":
            continue
        if MODE == "bad-init":
            send({"id": rid, "error": {"code": -32600, "message": "not today"}})
            continue
        send({"id": rid, "result": {"userAgent": "fake/0.0.1", "codexHome": "/fake/home"}})
    elif method == "echo":
        send({"id": rid, "result": params})
    elif method == "busy":  # refused for want of room until the call with this key has come params["refuse"] times
        refused[params["key"]] = refused.get(params["key"], 0) + 1
        if refused[params["key"]] <= params["refuse"]:
            send({"id": rid, "error": {"code": -32001, "message": "Server overloaded; retry later."}})
        else:
            send({"id": rid, "result": refused[params["key"]]})
    elif method == "hold":
        held.append(rid)
    elif method == "turn/interrupt":
        send({"id": rid, "result": {"held": len(held)}})
    elif method == "received":
        send({"id": rid, "result": received[:-1]})
    elif method == "fail":
        send({"id": rid, "error": params})
    elif method == "ask":
        waiting[params["id"]] = rid
        send({"id": params["id"], "method": params["method"], "params": params["params"]})
    elif method == "notify":
        for notification in params:
            send(notification)
        send({"id": rid, "result": len(params)})
    elif method == "garbage":
        sys.stdout.write("this is not json\\n")
        send({"id": 987654, "result": "nobody asked"})
        send({"method": "thread/started", "params": [1, 2]})
        send({"method": "thread/started"})
        send({"id": rid, "result": "still here"})
    elif method == "big":
        send({"id": rid, "result": "x" * params})
    elif method == "answer-then-long-line":
        sys.stdout.write(json.dumps({"id": rid, "result": "before"}) + "\\n" + "x" * params + "\\n")
        sys.stdout.flush()
    elif method == "answer-without-newline-then-exit":
        sys.stdout.write(json.dumps({"id": rid, "result": "last words"}))
        sys.stdout.flush()
        os._exit(0)
    elif method == "close-stdout":
        os.close(1)  # and stay alive, reading stdin
    elif method == "die":
        sys.stderr.write(params["stderr"])
        sys.stderr.flush()
        os._exit(7)
    elif method == "stubborn":
        linger = True
        send({"id": rid, "result": {"pid": os.getpid(), "grandchild": ignore_sigterm_and_fork()}})
    elif method == "orphan":
        send({"id": rid, "result": {"pid": os.getpid(), "grandchild": ignore_sigterm_and_fork()}})
    elif method == "hang":
        pass
    else:
        send({"id": rid, "error": {"code": -32601, "message": "unknown method " + method}})

while linger:  # stdin is closed, and still this process will not go
    time.sleep(1)
"""

Handler = Callable[[str, msgspec.Raw], Awaitable[object]]


@pytest.fixture
def fake_path(tmp_path: Path) -> Path:
    path = tmp_path / "codex"
    path.write_text(f"#!{sys.executable}\n{FAKE}")
    path.chmod(0o755)
    return path


async def unknown_methods(method: str, params: msgspec.Raw) -> object:
    raise RpcErrorReply(-32601, "nope")


async def start(
    fake_path: Path, mode: str = "normal", handler: Handler = unknown_methods, *, cwd: Path | None = None
) -> AppServer:
    env = {**os.environ, "FAKE_MODE": mode}
    return await asyncio.wait_for(
        AppServer.start(str(fake_path), cwd=str(cwd or fake_path.parent), env=env, handle_server_request=handler),
        10,
    )


@pytest.fixture
async def server(fake_path: Path) -> AsyncIterator[AppServer]:
    s = await start(fake_path)
    yield s
    await s.close(grace=0.5)


async def call(server: AppServer, method: str, params: object = None) -> Any:
    raw = await server.request_raw(method, params, timeout=10)
    return msgspec.json.decode(raw)


async def next_message(queue: asyncio.Queue[ThreadMessage]) -> ThreadMessage:
    return await asyncio.wait_for(queue.get(), 10)


# --- handshake and plain requests ------------------------------------------------------------


async def test_handshake_sends_initialize_then_initialized(server: AppServer, fake_path: Path) -> None:
    received = await call(server, "received")
    initialize, initialized = received
    assert initialize["method"] == "initialize"
    assert initialize["params"]["clientInfo"] == {"name": "claif_cod", "version": __version__}
    assert isinstance(initialize["id"], int)
    assert initialized["method"] == "initialized"
    assert "id" not in initialized
    assert "jsonrpc" not in initialize  # Codex's JSON-RPC has no version member
    assert server.alive
    assert server.codex_path == str(fake_path)
    assert server.cwd == str(fake_path.parent)
    assert server.version == "0.0.1"  # its own, from initialize's user agent (status shows it)


async def test_the_experimental_api_capability_reaches_codex(server: AppServer) -> None:
    # wire.InitializeCapabilities declares experimental_api=True; Codex's own default is false, so an
    # omitted field means "no": the opt-in must be on the wire.
    initialize = (await call(server, "received"))[0]
    assert initialize["params"]["capabilities"].get("experimentalApi") is True


async def test_the_child_leads_its_own_process_group(server: AppServer) -> None:
    assert os.getpgid(server.pid) == server.pid
    assert os.getpgid(server.pid) != os.getpgid(0)


async def test_requests_echo(server: AppServer) -> None:
    params = {"text": "héllo ✓", "n": [1, 2.5, None, True]}
    assert await call(server, "echo", params) == params


async def test_typed_request(server: AppServer) -> None:
    result = await server.request("echo", {"userAgent": "u", "codexHome": "/h"}, wire.InitializeResult, timeout=10)
    assert result == wire.InitializeResult(user_agent="u", codex_home="/h")


async def test_request_ids_increase(server: AppServer) -> None:
    await call(server, "echo", 1)
    await call(server, "echo", 2)
    ids = [m["id"] for m in await call(server, "received") if "id" in m]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids) == 3


async def test_concurrent_requests_get_their_own_answers(server: AppServer) -> None:
    results = await asyncio.gather(*(call(server, "echo", {"i": i}) for i in range(50)))
    assert results == [{"i": i} for i in range(50)]


async def test_error_answers_raise_codex_rpc_error(server: AppServer) -> None:
    with pytest.raises(CodexRpcError) as info:
        await call(server, "fail", {"code": -32600, "message": "Invalid request: not this way"})
    assert (info.value.method, info.value.code, info.value.message) == (
        "fail",
        -32600,
        "Invalid request: not this way",
    )
    with pytest.raises(CodexRpcError) as unknown:
        await call(server, "no/such/method")
    assert unknown.value.code == -32601
    assert server.alive


async def busy_requests(server: AppServer) -> list[int]:
    """The ids of the ``busy`` requests the fake has received so far."""
    return [m["id"] for m in await call(server, "received") if m.get("method") == "busy"]


async def test_a_request_refused_for_want_of_room_is_sent_again(server: AppServer) -> None:
    # Codex refuses a request its full queue has no room for (-32001), without acting on it.
    assert await call(server, "busy", {"key": "a", "refuse": 3}) == 4
    ids = await busy_requests(server)
    assert len(ids) == len(set(ids)) == 4  # each attempt is a request of its own
    assert server.requests_in_flight == 0


async def test_a_refusal_that_outlasts_the_backoff_stands(server: AppServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appserver.overload, "BACKOFF_S", (0.001, 0.002))
    with pytest.raises(CodexRpcError) as info:
        await call(server, "busy", {"key": "b", "refuse": 100})
    assert (info.value.code, info.value.message) == (-32001, "Server overloaded; retry later.")
    assert len(await busy_requests(server)) == 3
    assert server.alive


async def test_a_caller_cancelled_while_waiting_to_retry_sends_nothing_more(
    server: AppServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(appserver.overload, "BACKOFF_S", (60.0,))
    task = asyncio.create_task(call(server, "busy", {"key": "c", "refuse": 1}))
    while not await busy_requests(server):  # refused once: the task now waits to send it again
        pass
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(await busy_requests(server)) == 1
    assert server.requests_in_flight == 0


async def release_in_waves(server: AppServer, burst: list[asyncio.Task[Any]], waves: tuple[int, ...]) -> list[Any]:
    """Lets the fake answer its held requests once each wave of them is in flight."""
    answered = 0
    for wave in waves:
        deadline = time.monotonic() + 10
        while server.requests_in_flight < wave or sum(t.done() for t in burst) < answered:
            assert time.monotonic() < deadline, f"{server.requests_in_flight} in flight, waiting for {wave}"
            await asyncio.sleep(0)
        await server.notify("release")  # after the requests on the pipe: the fake has read them all
        answered += wave
    return await asyncio.gather(*burst)


async def test_a_burst_of_requests_keeps_within_codexs_queue(server: AppServer) -> None:
    # Codex holds 128 messages; a burst beyond it was refused, and the refusals themselves dropped.
    burst = [asyncio.create_task(call(server, "hold")) for _ in range(100)]
    assert await release_in_waves(server, burst, (64, 36)) == [64] * 64 + [36] * 36


async def test_an_interrupt_does_not_wait_for_room(server: AppServer) -> None:
    burst = [asyncio.create_task(call(server, "hold")) for _ in range(70)]
    deadline = time.monotonic() + 10
    while server.requests_in_flight < 64:  # and six wait for room
        assert time.monotonic() < deadline, f"{server.requests_in_flight} in flight, waiting for 64"
        await asyncio.sleep(0)
    assert await call(server, "turn/interrupt", {"threadId": "t", "turnId": "u"}) == {"held": 64}
    assert await release_in_waves(server, burst, (64, 6)) == [64] * 64 + [6] * 6


async def test_request_timeout_forgets_the_request(server: AppServer) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await server.request_raw("hang", None, timeout=0.1)
    assert server.requests_in_flight == 0
    assert await call(server, "echo", "after") == "after"


async def test_garbage_lines_and_stray_answers_are_ignored(server: AppServer) -> None:
    queue = server.subscribe("t1")
    assert await call(server, "garbage") == "still here"
    assert await call(server, "echo", "fine") == "fine"
    assert queue.empty()
    assert server.alive


# --- server → client requests ----------------------------------------------------------------


APPROVAL_PARAMS = {
    "threadId": "t1",
    "turnId": "turn-1",
    "itemId": "call-1",
    "command": "touch made.txt",
    "cwd": "/work",
    "reason": "needs to write",
}


async def test_server_requests_reach_the_handler_and_the_answer_goes_back(fake_path: Path) -> None:
    seen: list[tuple[str, Any]] = []

    async def handler(method: str, params: msgspec.Raw) -> object:
        seen.append((method, msgspec.json.decode(params)))
        if method == "item/commandExecution/requestApproval":
            return {"decision": "accept"}
        raise RpcErrorReply(-32601, "nope")

    server = await start(fake_path, handler=handler)
    try:
        reply = await call(
            server, "ask", {"id": 0, "method": "item/commandExecution/requestApproval", "params": APPROVAL_PARAMS}
        )
        assert reply == {"id": 0, "result": {"decision": "accept"}}
        assert seen == [("item/commandExecution/requestApproval", APPROVAL_PARAMS)]

        reply = await call(server, "ask", {"id": "srv-7", "method": "item/tool/unknown", "params": {"x": 1}})
        assert reply == {"id": "srv-7", "error": {"code": -32601, "message": "nope", "data": None}}
        assert seen[-1] == ("item/tool/unknown", {"x": 1})
        assert server.alive
    finally:
        await server.close(grace=0.5)


async def test_a_handler_that_crashes_still_answers(fake_path: Path) -> None:
    async def handler(method: str, params: msgspec.Raw) -> object:
        raise KeyError("decision")

    server = await start(fake_path, handler=handler)
    try:
        reply = await call(server, "ask", {"id": 3, "method": "item/fileChange/requestApproval", "params": {}})
        assert reply["id"] == 3
        assert reply["error"]["code"] == -32603
        assert "decision" in reply["error"]["message"]
    finally:
        await server.close(grace=0.5)


async def test_a_slow_handler_does_not_block_other_traffic(fake_path: Path) -> None:
    release = asyncio.Event()

    async def handler(method: str, params: msgspec.Raw) -> object:
        await release.wait()
        return {"decision": "decline"}

    server = await start(fake_path, handler=handler)
    try:
        asked = asyncio.create_task(
            call(server, "ask", {"id": 1, "method": "item/commandExecution/requestApproval", "params": {}})
        )
        assert await call(server, "echo", "meanwhile") == "meanwhile"
        assert not asked.done()
        release.set()
        assert await asyncio.wait_for(asked, 10) == {"id": 1, "result": {"decision": "decline"}}
    finally:
        await server.close(grace=0.5)


# --- notifications ---------------------------------------------------------------------------


def note(method: str, thread_id: str | None, **params: Any) -> dict[str, Any]:
    if thread_id is not None:
        params["threadId"] = thread_id
    return {"method": method, "params": params}


async def test_notifications_are_routed_by_thread_id(server: AppServer) -> None:
    one = server.subscribe("t1")
    two = server.subscribe("t2")
    sent = [
        note("turn/started", "t1", turn={"id": "a"}),
        note("item/agentMessage/delta", "t2", delta="x", itemId="i"),
        note("item/agentMessage/delta", "t1", delta="y", itemId="i"),
        note("item/agentMessage/delta", "t3", delta="nobody listens"),
        note("account/rateLimits/updated", None, rateLimits={}),
    ]
    assert await call(server, "notify", sent) == 5
    got_one = [one.get_nowait(), one.get_nowait()]
    got_two = [two.get_nowait()]
    assert one.empty()
    assert two.empty()
    assert all(isinstance(m, Notification) for m in [*got_one, *got_two])
    assert [(m.method, msgspec.json.decode(m.params)) for m in got_one if isinstance(m, Notification)] == [
        ("turn/started", sent[0]["params"]),
        ("item/agentMessage/delta", sent[2]["params"]),
    ]
    assert [(m.method, msgspec.json.decode(m.params)) for m in got_two if isinstance(m, Notification)] == [
        ("item/agentMessage/delta", sent[1]["params"])
    ]


async def test_unsubscribed_threads_get_nothing_more(server: AppServer) -> None:
    queue = server.subscribe("t1")
    server.unsubscribe("t1")
    server.unsubscribe("never-subscribed")
    await call(server, "notify", [note("turn/started", "t1")])
    assert queue.empty()


# --- the child dying ----------------------------------------------------------------------------


async def test_a_pending_request_fails_when_the_child_exits_and_keeps_its_stderr(server: AppServer) -> None:
    queue = server.subscribe("t1")
    hanging = asyncio.create_task(server.request_raw("hang", None, timeout=10))
    await asyncio.sleep(0)
    last_words = "thread 'main' panicked at core/src/codex.rs:42:\nthe fake gave up\n"
    with pytest.raises(CodexProcessDied) as info:
        await call(server, "die", {"stderr": last_words})
    died = info.value
    assert died.returncode == 7
    assert "the fake gave up" in died.stderr_tail
    assert "the fake gave up" in str(died)
    with pytest.raises(CodexProcessDied) as other:
        await asyncio.wait_for(hanging, 10)
    assert other.value is died
    message = await next_message(queue)
    assert isinstance(message, ProcessExit)
    assert message.error is died
    assert not server.alive
    with pytest.raises(CodexProcessDied):
        await call(server, "echo", "too late")
    late = server.subscribe("t2")
    message = await next_message(late)
    assert isinstance(message, ProcessExit)
    assert message.error is died


async def test_a_line_that_arrives_in_many_reads_comes_whole(server: AppServer) -> None:
    size = 3 * 1024 * 1024  # dozens of pipe reads
    assert await call(server, "big", size) == "x" * size
    assert await call(server, "echo", "after") == "after"


async def test_a_line_beyond_the_limit_condemns_the_child_after_the_lines_before_it(
    fake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(appserver, "LINE_LIMIT", 1000)
    server = await start(fake_path)
    try:
        queue = server.subscribe("t1")
        hanging = asyncio.create_task(server.request_raw("hang", None, timeout=10))
        assert await call(server, "answer-then-long-line", 5000) == "before"
        with pytest.raises(CodexProcessDied, match="a line on stdout exceeded 1000 bytes"):
            await asyncio.wait_for(hanging, 10)
        assert isinstance(await next_message(queue), ProcessExit)
        assert not server.alive
    finally:
        await server.close(grace=0.5)


async def test_a_last_line_without_its_newline_still_answers(server: AppServer) -> None:
    assert await call(server, "answer-without-newline-then-exit") == "last words"


async def test_a_child_that_closes_its_stdout_but_stays_is_condemned(server: AppServer) -> None:
    hanging = asyncio.create_task(server.request_raw("hang", None, timeout=10))
    closing = asyncio.create_task(server.request_raw("close-stdout", None, timeout=10))
    with pytest.raises(CodexProcessDied, match="closed its stdout"):
        await asyncio.wait_for(hanging, 10)
    with pytest.raises(CodexProcessDied, match="closed its stdout"):
        await asyncio.wait_for(closing, 10)
    assert not server.alive


async def test_only_the_tail_of_a_long_stderr_is_kept(server: AppServer) -> None:
    noise = "".join(f"line {i:06d} of noise\n" for i in range(20_000))
    with pytest.raises(CodexProcessDied) as info:
        await call(server, "die", {"stderr": noise + "LAST WORDS\n"})
    assert info.value.stderr_tail.endswith("LAST WORDS\n")
    assert len(info.value.stderr_tail) <= STDERR_TAIL + 4096
    assert len(str(info.value)) < 600


# --- start failures ---------------------------------------------------------------------------


async def test_start_of_a_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(CodexStartFailed, match="could not start"):
        await start(tmp_path / "missing")


async def test_start_of_a_child_that_exits_at_once(fake_path: Path) -> None:
    with pytest.raises(CodexStartFailed) as info:
        await start(fake_path, "exit-at-start")
    assert "handshake" in str(info.value)
    assert isinstance(info.value.__cause__, CodexProcessDied)


async def test_a_child_that_exits_at_start_leaves_its_stderr_in_the_error(tmp_path: Path) -> None:
    """What Codex prints before it gives up (a bad config, a missing library) is the only clue."""
    quick = tmp_path / "quick-codex"
    quick.write_text("#!/bin/sh\necho 'error: unknown variant `on-failure` in config.toml' >&2\nexit 1\n")
    quick.chmod(0o755)
    messages = []
    unretrieved: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unretrieved.append(context["message"]))
    for _ in range(40):  # the child and its pipes race each other; a few tries show the loss
        with pytest.raises(CodexStartFailed) as info:
            await start(quick)
        messages.append(str(info.value))
    del info
    gc.collect()
    lost = [m for m in messages if "unknown variant" not in m]
    assert not lost, f"{len(lost)}/40 start failures lost the child's stderr, e.g. {lost[0]!r}"
    assert unretrieved == []  # "Future exception was never retrieved": the death reached the caller once


async def test_start_when_initialize_is_refused(fake_path: Path) -> None:
    with pytest.raises(CodexStartFailed, match="not today"):
        await start(fake_path, "bad-init")


async def test_start_when_initialize_is_never_answered(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appserver, "INITIALIZE_TIMEOUT_S", 0.3)
    with pytest.raises(CodexStartFailed, match="handshake"):
        await start(fake_path, "mute")


# --- close ------------------------------------------------------------------------------------


PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphaned grandchildren come to us rather than to PID 1, so that we can reap them."""
    if not sys.platform.startswith("linux"):
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        yield
        return
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def reap(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not ours to reap (already reaped, or adopted by someone else)
        if done:
            return
        time.sleep(0.01)


@pytest.mark.parametrize("mode", ["stubborn", "orphan"])
async def test_close_leaves_neither_child_nor_grandchild(fake_path: Path, mode: str) -> None:
    with subreaper():
        server = await start(fake_path)
        pids = await call(server, mode)
        child, grandchild = pids["pid"], pids["grandchild"]
        assert child == server.pid
        assert os.getpgid(grandchild) == server.pid
        began = time.monotonic()
        await asyncio.wait_for(server.close(grace=0.2), 10)
        assert time.monotonic() - began < 3
        reap(grandchild)
        for pid in (child, grandchild):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    assert not server.alive


async def test_close_is_quick_when_the_child_exits_on_stdin_eof(fake_path: Path) -> None:
    server = await start(fake_path)
    pid = server.pid
    began = time.monotonic()
    await server.close()  # the default grace: the child leaves at stdin EOF, well before it
    assert time.monotonic() - began < 1.5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_after_close_requests_and_subscriptions_report_the_closure(fake_path: Path) -> None:
    server = await start(fake_path)
    queue = server.subscribe("t1")
    pending = asyncio.create_task(server.request_raw("hang", None, timeout=10))
    while not server._pending:  # the request is in flight once it awaits its answer
        assert not pending.done(), pending
        await asyncio.sleep(0)
    await server.close(grace=0.5)
    with pytest.raises(CodexProcessDied):
        await asyncio.wait_for(pending, 10)
    assert isinstance(await next_message(queue), ProcessExit)
    assert not server.alive
    with pytest.raises(CodexProcessDied):
        await call(server, "echo", 1)
    await server.close(grace=0.1)  # closing twice is harmless


# --- the child's environment --------------------------------------------------------------------


def test_child_environment_drops_service_manager_plumbing_and_adds_codex_variables() -> None:
    """And claif-codd's HTTP token, which an in-process client's shell may export for the daemon."""
    base = {"PATH": "/bin", "NOTIFY_SOCKET": "/run/x", "LISTEN_FDS": "1", "INVOCATION_ID": "abc", "HOME": "/h"}
    base["CLAIF_CODD_HTTP_TOKEN"] = "the endpoint's token"
    env = child_environment(base, codex_home="/codex-home", api_key="sk-test")
    assert env == {"PATH": "/bin", "HOME": "/h", "CODEX_HOME": "/codex-home", "CODEX_API_KEY": "sk-test"}
    assert child_environment(base, codex_home=None, api_key=None) == {"PATH": "/bin", "HOME": "/h"}
    assert "NOTIFY_SOCKET" in base  # the caller's mapping is left alone


def test_the_fake_speaks_the_protocol_on_its_own(fake_path: Path) -> None:
    """Driven by hand, without AppServer: the client tests above cannot pass on a fake broken to match."""
    lines = [
        {"id": 1, "method": "initialize", "params": {}},
        {"method": "initialized"},
        {"id": 2, "method": "echo", "params": {"a": [1, "x"]}},
        {"id": 3, "method": "nonsense"},
    ]
    done = subprocess.run(
        [str(fake_path)],
        input="".join(json.dumps(m) + "\n" for m in lines),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"id": 1, "result": {"userAgent": "fake/0.0.1", "codexHome": "/fake/home"}},
        {"id": 2, "result": {"a": [1, "x"]}},
        {"id": 3, "error": {"code": -32601, "message": "unknown method nonsense"}},
    ]
    json.dumps(APPROVAL_PARAMS)  # the approval fixture is plain JSON
