"""claif-codd end to end: a real daemon process, the real Codex binary, the offline model."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import openai
import pytest
from approval_waits import (
    handler_cancelled_when_its_request_times_out,
    sync_handler_cancelled_when_its_request_times_out,
)
from chat_messages import patch_prompt, user
from daemon_process import DaemonProcess
from loop_handlers import recording

from claif_cod import ApprovalRequest, AsyncCodexClient, CodexClient, FileChange
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex
HERE = Path(__file__).parent


def test_raw_socket_client_streams_a_chat(daemon: DaemonProcess, workdir: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(HERE / "raw_client.py"), str(daemon.socket), str(workdir), "raw hello"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    messages = [json.loads(line) for line in out.stdout.splitlines()]
    hello, *stream, final = messages
    assert hello["result"]["protocol_version"] == 1
    chunks = [m["params"]["chunk"] for m in stream if m["method"] == "chat.completions.chunk"]
    assert all(m["params"]["request_id"] == 2 for m in stream)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Echo: raw hello"
    assert final == {"jsonrpc": "2.0", "id": 2, "result": {"done": True, "chunks": len(chunks), "interrupted": False}}


def test_client_with_daemon_required_uses_the_daemon(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require") as client:
        response = client.chat.completions.create(model="o4-mini", messages=[user("via daemon")])
        assert response.choices[0].message.content == "Echo: via daemon"
        stream = client.chat.completions.create(model="o4-mini", messages=[user("s t")], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Echo: s t"
        assert [m.id for m in client.models.list()] == ["o4-mini", "o4", "gpt-test-large"]
        assert client.backend is not None and client.backend.local is None  # nothing ran in-process
    info = daemon.status_json()
    assert [p["working_dir"] for p in info["processes"]] == [str(workdir)]


def test_models_list_keeps_to_its_timeout_through_the_daemon(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require") as client:
        with pytest.raises(openai.APITimeoutError):
            client.models.list(timeout=0.001)  # the daemon's first list starts Codex, which takes far longer
        assert [m.id for m in client.models.list()] == ["o4-mini", "o4", "gpt-test-large"]


def test_a_deadline_already_passed_times_out_as_in_process(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    """It was a 400 naming options.timeout_s, a parameter the caller never wrote; in-process (and in
    openai's own client) it is a timeout.  A negative one is openai's ValueError, as in-process
    (tests/integration/test_invalid_timeout.py)."""
    with CodexClient(daemon="require") as client:
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="o4-mini", messages=[user("never asked")], timeout=0)
        with pytest.raises(ValueError, match="out of range"):
            client.chat.completions.create(model="o4-mini", messages=[user("never asked")], timeout=-1)
        assert client.chat.completions.create(model="o4-mini", messages=[user("ok")]).choices[0].message.content == (
            "Echo: ok"
        )
    assert [r.user_texts() for r in codex_model_server.requests] == [["ok"]]


def test_errors_cross_the_socket_as_openai_classes(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require") as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="o4-mini", messages=[user("[[status:429]]")])
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="o4-mini", messages=[user("[[stall]]")], timeout=1.0)
        assert client.chat.completions.create(model="o4-mini", messages=[user("ok")]).choices[0].message.content == (
            "Echo: ok"
        )


async def test_a_request_larger_than_the_daemon_takes_is_a_413_and_the_client_goes_on(
    daemon: DaemonProcess, workdir: Path
) -> None:
    """It raised the protocol's own ``FrameTooLarge`` (not an openai error), and the async client left
    its request pending, to fail unretrieved once the connection closed."""
    huge = [user("x" * (17 * 1024 * 1024))]
    with CodexClient(daemon="require") as client:
        with pytest.raises(openai.APIStatusError) as sync_info:
            client.chat.completions.create(model="o4-mini", messages=huge)
        assert client.chat.completions.create(model="o4-mini", messages=[user("ok")]).choices[0].message.content
        with pytest.raises(openai.APIStatusError) as direct_info:  # now on the direct connection's path
            client.chat.completions.create(model="o4-mini", messages=huge)
        assert client.chat.completions.create(model="o4-mini", messages=[user("ok")]).choices[0].message.content
    async with AsyncCodexClient(daemon="require") as aclient:
        with pytest.raises(openai.APIStatusError) as async_info:
            await aclient.chat.completions.create(model="o4-mini", messages=huge, stream=True)
        reply = await aclient.chat.completions.create(model="o4-mini", messages=[user("ok")])
        assert reply.choices[0].message.content == "Echo: ok"
        with pytest.raises(openai.APIStatusError) as async_again:
            await aclient.chat.completions.create(model="o4-mini", messages=huge)
    for info in (sync_info, direct_info, async_info, async_again):
        assert info.value.status_code == 413 and info.value.code == "request_too_large"
        assert "daemon='off', or --daemon off on the command line" in info.value.message


def test_require_without_a_daemon_is_a_connection_error(
    codex_home: Path, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(tmp_path / "none" / "codd.sock"))
    with CodexClient(daemon="require") as client, pytest.raises(openai.APIConnectionError, match="claif-codd"):
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])


@pytest.mark.parametrize("mode", ["auto", "require"])
def test_a_daemon_that_does_not_answer_leaves_auto_in_process_and_require_an_error_saying_so(
    mode: str, daemon: DaemonProcess, workdir: Path
) -> None:
    """A daemon stopped (SIGSTOP) or hung takes connections but answers nothing: once the handshake's
    deadline passes, an ``auto`` client answers in-process, and a ``require`` one raises openai's
    ``APIConnectionError`` saying the daemon did not answer (not that it refused)."""
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        with CodexClient(daemon=mode, model="o4-mini") as client:
            if mode == "auto":
                assert client.chat.completions.create(messages=[user("hi")]).choices[0].message.content == "Echo: hi"
                assert client.backend is not None and client.backend.local is not None
            else:
                with pytest.raises(openai.APIConnectionError) as failed:
                    client.chat.completions.create(messages=[user("hi")])
                assert f"claif-codd at {daemon.socket} did not answer the handshake within 4 s" in str(failed.value)
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)


def test_an_auto_client_whose_daemon_went_away_says_its_session_goes_on_in_process(
    daemon: DaemonProcess, workdir: Path
) -> None:
    """The named session lives in the daemon: answered in-process, the next turn is a new conversation.
    That is what ``auto`` does, but not silently (once per client)."""
    with CodexClient(daemon="auto", model="o4-mini", session_id="notes") as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        assert client.chat.completions.create(messages=[user("two")]).choices[0].message.content == "[turn 2] Echo: two"
        daemon.stop()
        with pytest.warns(UserWarning, match="named sessions and stored responses go on here without"):
            reply = client.chat.completions.create(messages=[user("three")])
        assert reply.choices[0].message.content == "Echo: three"  # in-process: the daemon's history is not here
        assert client.backend is not None and client.backend.local is not None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once
            assert client.chat.completions.create(messages=[user("four")]).choices[0].message.content == (
                "[turn 2] Echo: four"
            )


def test_start_and_sessions_against_a_daemon_that_does_not_answer_say_so(daemon: DaemonProcess) -> None:
    """``start`` does not report a stopped daemon as running (it serves nobody), and neither command
    advises starting one: each says to wake it or kill it."""
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        hung = f"claif-codd at {daemon.socket} did not answer the handshake within 4 s (stopped or hung?): "
        hung += "`kill -CONT` it, or kill it\n"
        for command in (["claif_codd", "start", "--socket", str(daemon.socket)], ["claif_cod.cli", "sessions"]):
            done = subprocess.run(
                [sys.executable, "-m", *command], capture_output=True, text=True, env=daemon.env, timeout=60
            )
            assert done.stdout == ""
            assert done.stderr.endswith(hung), done.stderr
        assert done.returncode == 4  # claif-cod's exit for a daemon it cannot reach
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)


def test_two_processes_share_a_named_session(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    script = textwrap.dedent(
        """
        import sys
        from claif_cod import CodexClient
        with CodexClient(daemon="require", session_id="shared") as client:
            r = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": sys.argv[1]}])
            print(r.choices[0].message.content)
        """
    )
    replies = [
        subprocess.run(
            [sys.executable, "-c", script, text],
            capture_output=True,
            text=True,
            check=True,
            env=daemon.env,
            cwd=workdir,
            timeout=60,
        ).stdout.strip()
        for text in ("from A", "from B")
    ]
    assert replies == ["Echo: from A", "[turn 2] Echo: from B"]
    first, second = codex_model_server.requests
    assert first.body["prompt_cache_key"] == second.body["prompt_cache_key"]
    assert second.messages()[-3:] == [("user", "from A"), ("assistant", "Echo: from A"), ("user", "from B")]


def test_kill_9_and_restart_continues_the_same_thread(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="require", session_id="durable") as client:
        assert client.chat.completions.create(model="o4-mini", messages=[user("before")]).choices[
            0
        ].message.content == ("Echo: before")
    daemon.kill9()
    daemon.start()
    with CodexClient(daemon="require", session_id="durable") as client:
        after = client.chat.completions.create(model="o4-mini", messages=[user("after")])
    assert after.choices[0].message.content == "[turn 2] Echo: after"
    first, second = codex_model_server.requests
    assert first.body["prompt_cache_key"] == second.body["prompt_cache_key"]  # thread/resume, same thread


def test_approvals_reach_the_client_that_owns_the_turn(daemon: DaemonProcess, workdir: Path) -> None:
    seen: list[ApprovalRequest] = []
    handler = recording(seen)

    with CodexClient(
        daemon="require", approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as owner:
        response = owner.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch approved.txt]] go")])
    assert len(seen) == 1 and "touch approved.txt" in (seen[0].command or "")
    assert seen[0].item_id.startswith("call_")  # Codex's own id of the call, as in-process
    assert (workdir / "approved.txt").exists(), response.choices[0].message.content
    assert (response.choices[0].message.content or "").startswith("Tool said:")


async def test_a_request_that_ends_first_cancels_its_approval_handler(daemon: DaemonProcess, workdir: Path) -> None:
    await handler_cancelled_when_its_request_times_out("require", workdir)


def test_a_sync_clients_request_keeps_its_deadline_while_its_handler_waits(
    daemon: DaemonProcess, workdir: Path
) -> None:
    sync_handler_cancelled_when_its_request_times_out("require", workdir)


async def test_a_file_change_reaches_both_kinds_of_client_with_its_files(daemon: DaemonProcess, workdir: Path) -> None:
    """The daemon forwards the files, kinds and diffs of a file change it asks about; a sync client
    (which reads the socket in its own thread) and an async one both hand them to their handler."""
    seen: list[ApprovalRequest] = []
    handler = recording(seen)

    def ask(name: str) -> list[dict[str, str]]:
        return [user(patch_prompt(f"*** Add File: {name}", f"+{name} line"))]

    options: dict[str, Any] = dict(
        daemon="require", approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    )
    with CodexClient(**options) as sync_client:
        sync_client.chat.completions.create(model="o4-mini", messages=ask("sync.txt"))
    async with AsyncCodexClient(**options) as async_client:
        await async_client.chat.completions.create(model="o4-mini", messages=ask("async.txt"))
    names = ("sync.txt", "async.txt")
    expected = [("file_change", (FileChange(str(workdir / name), "add", f"{name} line\n"),)) for name in names]
    assert [(r.kind, r.changes) for r in seen] == expected
    assert (workdir / "sync.txt").exists() and (workdir / "async.txt").exists()


def test_closing_a_stream_cancels_and_interrupts_the_turn(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require") as client:
        stream = client.chat.completions.create(model="o4-mini", messages=[user("[[stall-mid]] a b c")], stream=True)
        next(iter(stream))
        stream.close()
        deadline = time.monotonic() + 10
        while daemon.status_json()["turns_in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.status_json()["turns_in_flight"] == 0
        assert client.chat.completions.create(model="o4-mini", messages=[user("next")]).choices[0].message.content == (
            "Echo: next"
        )


async def test_concurrent_clients_on_several_working_directories(
    daemon: DaemonProcess, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    dirs = [tmp_path / f"wd{i}" for i in range(4)]
    for d in dirs:
        d.mkdir()
    clients = [AsyncCodexClient(daemon="require", working_dir=d) for d in dirs]
    try:
        results = await asyncio.gather(
            *(
                c.chat.completions.create(model="o4-mini", messages=[user(f"[[barrier:8]] q{i}")])
                for i in range(2)
                for c in clients
            )
        )
    finally:
        for c in clients:
            await c.close()
    assert sorted(r.choices[0].message.content or "" for r in results) == sorted(
        f"Echo: q{i}" for i in range(2) for _ in clients
    )
    assert sorted(p["working_dir"] for p in daemon.status_json()["processes"]) == sorted(map(str, dirs))


def test_socket_is_private(daemon: DaemonProcess) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.socket.parent).st_mode) == 0o700


def test_unsafe_socket_directory_is_refused(daemon_env: dict[str, str], tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o755)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "claif_codd",
            "serve",
            "--socket",
            str(open_dir / "codd.sock"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        env=daemon_env,
        timeout=30,
    )
    assert out.returncode != 0
    assert f"chmod 700 {open_dir}" in out.stderr


def test_second_daemon_on_the_same_socket_exits_clearly(daemon: DaemonProcess, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "claif_codd",
            "serve",
            "--socket",
            str(daemon.socket),
            "--state-dir",
            str(tmp_path / "state2"),
        ],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=30,
    )
    assert out.returncode == 1
    assert "already listening" in out.stderr
    assert daemon.socket.exists()  # it did not unlink the running daemon's socket


def test_second_daemon_on_the_same_state_directory_exits_before_listening(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """It listened (its socket and HTTP port accepted) until SQLite's lock on the registry stopped it,
    saying to move the registry away."""
    other = tmp_path / "run" / "other.sock"
    out = subprocess.run(
        [sys.executable, "-m", "claif_codd", "serve", "--socket", str(other), "--state-dir", str(daemon.state_dir)],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=30,
    )
    assert out.returncode == 1
    assert f"claif-codd (pid {daemon.proc.pid}, socket {daemon.socket}) holds the state directory" in out.stderr  # type: ignore[union-attr]
    assert "move it away" not in out.stderr and not other.exists()


def test_a_socket_path_too_long_is_said_not_a_traceback(daemon_env: dict[str, str], tmp_path: Path) -> None:
    directory = tmp_path / ("d" * 110)
    directory.mkdir(mode=0o700)
    out = subprocess.run(
        [sys.executable, "-m", "claif_codd", "serve", "--socket", str(directory / "codd.sock")],
        capture_output=True,
        text=True,
        env=daemon_env,
        timeout=30,
    )
    assert out.returncode == 1
    assert "cannot listen on" in out.stderr and "AF_UNIX path too long" in out.stderr
    assert "Traceback" not in out.stderr


def test_version_skew_gets_a_clear_answer(daemon: DaemonProcess) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.socket))
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "hello",
            "params": {"protocol_version": 99, "package_version": "9", "client_name": "old"},
        }
    ).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)
    (length,) = struct.unpack(">I", sock.recv(4))
    reply = json.loads(sock.recv(length))
    sock.close()
    assert reply["error"]["code"] == -32003
    assert "claif-codd stop" in reply["error"]["message"]


def test_stop_drains_and_removes_the_socket(daemon: DaemonProcess) -> None:
    subprocess.run(
        [sys.executable, "-m", "claif_codd", "stop", "--socket", str(daemon.socket)],
        check=True,
        env=daemon.env,
        timeout=60,
        capture_output=True,
    )
    assert daemon.proc is not None and daemon.proc.wait(timeout=30) == 0
    assert not daemon.socket.exists()


@pytest.mark.parametrize("how", ["socket removed", "runtime directory removed"])
def test_a_daemon_whose_socket_file_is_gone_exits_and_a_new_one_starts(daemon: DaemonProcess, how: str) -> None:
    """Nobody could reach it, nor stop it, and it held the state directory from the next start."""
    if how == "socket removed":
        daemon.socket.unlink()
    else:  # as at the user's last logout, then the next login's
        run_dir = daemon.socket.parent
        shutil.rmtree(run_dir)
        run_dir.mkdir(mode=0o700)
    status = subprocess.run(
        [sys.executable, "-m", "claif_codd", "status", "--socket", str(daemon.socket)],
        env=daemon.env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert daemon.proc is not None
    if daemon.proc.poll() is None:  # (it waits SOCKET_CHECK_S before it looks: status has ~2 s to run)
        assert status.returncode == 1 and "stopping (its socket file is gone" in status.stderr
    assert daemon.proc.wait(timeout=30) == 0
    assert "daemon.socket_lost" in daemon.log.read_text()
    daemon.start()
    assert daemon.status().pid == daemon.proc.pid


def test_a_turn_that_ran_a_command_and_failed_is_not_retried_through_the_daemon(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="require", max_retries=2) as client, pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="o4-mini", messages=[user("[[tool:echo ran]] [[failed-after-tool]] go")])
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert len(codex_model_server.requests) == 2  # the command's call and its follow-up, once
