"""claif-codd under faults and hostile input: nothing that was acknowledged is lost, every request is answered.

Real daemon processes, real Codex, the offline model; the socket client is the protocol-only one of
``test_limits``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from daemon_process import DaemonProcess
from rollouts import CUTS, cut_short
from test_limits import (
    WAIT_S,
    Client,
    Reply,
    async_wait_until,
    chat_request,
    hello_request,
    log_text,
    session_request,
    start_daemon,  # noqa: F401 (a fixture)
    wait_for_status,
)

from claif_cod import CodexClient
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    CancelNotification,
    CancelParams,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    DaemonStatus,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    Response,
    SessionSendParams,
    SessionSendRequest,
    SessionsListRequest,
    SessionsListResult,
    SessionTurnResult,
    decode_result,
    encode,
    encode_frame,
)
from claif_cod.testing import ModelServer
from claif_cod.testing.codex_home import write_codex_home
from claif_codd.registry import SCHEMA_VERSION
from claif_codd.response_registry import SCHEMA_VERSION as RESPONSES_SCHEMA_VERSION

pytestmark = [pytest.mark.codex, pytest.mark.timeout(120)]


# --- 1. the process cap never kills a turn ---------------------------------------------------------------------


async def test_process_cap_is_exceeded_rather_than_evicting_a_running_turn(
    start_daemon: Callable[..., DaemonProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    """With --max-processes 1, a turn stalled on the model in directory A keeps its process while a turn in
    directory B gets a second one; status shows a turn on each; once B's turn ends the pool is trimmed back
    to its cap (B goes, A's turn keeps A); A ends only when cancelled and then stays, at the cap."""
    daemon = start_daemon("--max-processes", "1")
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    client = await Client.connect(daemon.socket)

    async def cancel(request_id: int, reply: asyncio.Future[Reply]) -> None:
        client.send(CancelNotification(params=CancelParams(id=request_id)))
        answer = await asyncio.wait_for(reply, WAIT_S)
        assert isinstance(answer, ErrorResponse) and "cancelled" in answer.error.message, answer

    def working_dirs(status: DaemonStatus) -> list[str]:
        return [p.working_dir for p in status.processes]

    try:
        stalled_a = chat_request(client.next_id(), "[[stall]]", dir_a)
        reply_a = client.start(stalled_a)
        await wait_for_status(client, lambda s: s.turns_in_flight == 1, "the stalled turn")
        stalled_b = chat_request(client.next_id(), "[[stall]]", dir_b)
        reply_b = client.start(stalled_b)
        await wait_for_status(client, lambda s: s.turns_in_flight == 2, "the second stalled turn")
        status = await client.status()
        by_dir = {p.working_dir: p for p in status.processes}
        assert set(by_dir) == {str(dir_a), str(dir_b)}, status  # the cap of 1 was exceeded, not enforced
        assert by_dir[str(dir_a)].turns_in_flight == 1 and by_dir[str(dir_b)].turns_in_flight == 1, status
        # The cancel's reply comes before Codex confirms the interrupt (protocol.md): B holds its process
        # until then; when it lets go, B is idle above the cap and is closed.
        await cancel(stalled_b.id, reply_b)
        await wait_for_status(client, lambda s: working_dirs(s) == [str(dir_a)], "the trim back to the cap")
        assert (await client.status()).processes[0].turns_in_flight == 1
        assert not reply_a.done(), reply_a  # the stalled turn is still running, its process alive
        await cancel(stalled_a.id, reply_a)
        await wait_for_status(client, lambda s: s.turns_in_flight == 0, "the cancelled turn to end")
        assert working_dirs(await client.status()) == [str(dir_a)]  # at the cap: A stays warm
        # The next new directory evicts the least recently used idle process.
        dir_c = tmp_path / "c"
        dir_c.mkdir()
        assert await client.chat("in c", dir_c) == "Echo: in c"
        await wait_for_status(client, lambda s: working_dirs(s) == [str(dir_c)], "the eviction")
    finally:
        await client.close()


# --- 9. a connection that goes away takes its turns with it ---------------------------------------------------


async def test_a_closed_connection_interrupts_its_turn(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    watcher = await Client.connect(daemon.socket)
    leaving = await Client.connect(daemon.socket)
    try:
        leaving.start(chat_request(leaving.next_id(), "[[long:2000]] [[slow:20]]", workdir))
        await async_wait_until(lambda: len(leaving.chunks[2]) > 3, what="the turn to stream")
        await leaving.close()
        await wait_for_status(watcher, lambda s: s.turns_in_flight == 0 and s.connections == 1, "the interrupt")
    finally:
        await watcher.close()


async def test_a_dropped_slow_reader_has_its_turn_interrupted(
    start_daemon: Callable[..., DaemonProcess],  # noqa: F811
    workdir: Path,
) -> None:
    """The turn would stream for 100 s; once its reader is dropped it must end within the wait."""
    daemon = start_daemon("--max-outbound-bytes", str(64 * 1024))
    watcher = await Client.connect(daemon.socket)
    _reader, writer = await asyncio.open_unix_connection(str(daemon.socket), limit=1024)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        writer.write(encode_frame(encode(hello_request(1))))
        writer.write(encode_frame(encode(session_request(2, "s", "[[long:20000]] [[slow:5]]", workdir))))
        await writer.drain()  # and never read again
        await async_wait_until(lambda: "connection.slow_reader_dropped" in log_text(daemon), what="the drop")
        await wait_for_status(watcher, lambda s: s.turns_in_flight == 0 and s.connections == 1, "the interrupt")
    finally:
        writer.close()
        await watcher.close()


def chat_naming_its_session(request_id: int, session: str, text: str, workdir: Path) -> ChatCompletionsCreateRequest:
    """As the Python client sends ``extra_body={"session_id": ...}``: in the body, not the options."""
    body = {"model": "o4-mini", "messages": [{"role": "user", "content": text}], "session_id": session}
    options = CodexOptions(working_dir=str(workdir))
    return ChatCompletionsCreateRequest(
        id=request_id, params=ChatCompletionsCreateParams(body=msgspec.Raw(msgspec.json.encode(body)), options=options)
    )


@pytest.mark.parametrize("leaving_with", [session_request, chat_naming_its_session])
async def test_a_turn_of_a_session_others_follow_survives_its_connection(
    daemon: DaemonProcess, workdir: Path, leaving_with: Callable[..., Any]
) -> None:
    """A chat naming its session in its body was cut short with its connection: not counted as the session's."""
    follower = await Client.connect(daemon.socket)
    leaving = await Client.connect(daemon.socket)
    try:
        first = await follower.call(session_request(follower.next_id(), "shared", "one", workdir))
        assert isinstance(first, Response), first
        leaving.start(leaving_with(leaving.next_id(), "shared", "[[long:30]] [[slow:50]]", workdir))
        await wait_for_status(follower, lambda s: s.turns_in_flight == 1, "the leaving client's turn")
        await leaving.close()
        third = await follower.call(session_request(follower.next_id(), "shared", "three", workdir))
        assert isinstance(third, Response), third
        assert decode_result(third.result, SessionTurnResult).text == "[turn 3] Echo: three"
        listing = await follower.call(SessionsListRequest(id=follower.next_id()))
        assert isinstance(listing, Response), listing
        [session] = decode_result(listing.result, SessionsListResult).sessions
        assert session.turns == 3  # the leaving client's turn ran to its end and was recorded
    finally:
        await follower.close()


async def test_a_turn_kept_for_followers_is_interrupted_once_they_have_all_left(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    """A ``CodexClient`` killed (SIGKILL, SIGTERM) mid-turn: its thread's connection, which ran the turn,
    and its engine loop's, which had sent the session's first turn, close one after the other. Taken
    for another client following the session, the loop's connection kept the turn running; nobody
    followed it once that one closed too, yet the turn ran on (a stalled model's until Codex's idle
    timeout): the session's next turn waited behind it, and the daemon's drain at SIGTERM too."""
    loops = await Client.connect(daemon.socket)  # the killed client's two connections
    threads = await Client.connect(daemon.socket)
    watcher = await Client.connect(daemon.socket)
    try:
        first = await loops.call(session_request(loops.next_id(), "alone", "one", workdir))
        assert isinstance(first, Response), first
        cut = threads.start(session_request(threads.next_id(), "alone", "[[stall-mid]] two", workdir))
        await asyncio.to_thread(codex_model_server.wait_for_requests, 2, WAIT_S)
        await threads.close()
        await asyncio.gather(cut, return_exceptions=True)  # (its connection is gone: no answer)
        await wait_for_status(watcher, lambda s: s.connections == 2, "the turn's connection to be gone")
        await loops.close()
        await wait_for_status(watcher, lambda s: s.turns_in_flight == 0, "the turn nobody follows to be interrupted")
        after = await watcher.call(session_request(watcher.next_id(), "alone", "three", workdir))
        assert isinstance(after, Response), after
        # the turn cut short left nothing in the session
        assert decode_result(after.result, SessionTurnResult).text == "[turn 2] Echo: three"
    finally:
        await watcher.close()


# --- 3. a named session outlives its rollout; one session per Codex home ------------------------------------------


async def session_text(client: Client, session: str, text: str, workdir: Path, codex_home: Path | None = None) -> str:
    options = CodexOptions(working_dir=str(workdir), codex_home=str(codex_home) if codex_home else None)
    request = SessionSendRequest(
        id=client.next_id(), params=SessionSendParams(session_id=session, text=text, options=options)
    )
    reply = await client.call(request)
    assert isinstance(reply, Response), reply
    return decode_result(reply.result, SessionTurnResult).text


async def test_a_session_whose_rollout_is_gone_goes_on_seeded_with_its_history(
    daemon: DaemonProcess, workdir: Path, codex_home: Path, codex_model_server: ModelServer, tmp_path: Path
) -> None:
    client = await Client.connect(daemon.socket)
    try:
        assert await session_text(client, "notes", "one", workdir) == "Echo: one"
        assert await session_text(client, "notes", "two", workdir) == "[turn 2] Echo: two"
    finally:
        await client.close()
    daemon.stop()
    shutil.rmtree(codex_home / "sessions")  # the user cleaned up Codex's rollouts
    daemon.start()
    client = await Client.connect(daemon.socket)
    try:
        assert await session_text(client, "notes", "three", workdir) == "[turn 3] Echo: three"
        assert await session_text(client, "notes", "four", workdir) == "[turn 4] Echo: four"
        assert log_text(daemon).count("engine.session_reseeded") == 1  # warned once
        assert codex_model_server.requests[-1].user_texts() == ["one", "two", "three", "four"]
        # The same name under another Codex home is another session.
        other_home = write_codex_home(tmp_path / "other_home", codex_model_server.url)
        assert await session_text(client, "notes", "elsewhere", workdir, other_home) == "Echo: elsewhere"
        assert await session_text(client, "notes", "five", workdir) == "[turn 5] Echo: five"
        listing = await client.call(SessionsListRequest(id=client.next_id()))
        assert isinstance(listing, Response), listing
        turns = sorted(s.turns for s in decode_result(listing.result, SessionsListResult).sessions)
        assert turns == [1, 5]
    finally:
        await client.close()
    registry = tmp_path / "state" / "sessions.db"
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600  # the history is private
    assert stat.S_IMODE(registry.parent.stat().st_mode) == 0o700


async def test_a_session_whose_rollout_is_gone_keeps_its_system_instructions(
    daemon: DaemonProcess, workdir: Path, codex_home: Path, codex_model_server: ModelServer
) -> None:
    """``system`` sets a new session's instructions; the new thread seeded after its rollout is gone
    (and the daemon restarted: the registry has them) is given them again."""
    client = await Client.connect(daemon.socket)
    try:
        options = CodexOptions(working_dir=str(workdir))
        params = SessionSendParams(session_id="styled", text="one", options=options, system="Answer like a pirate.")
        reply = await client.call(SessionSendRequest(id=client.next_id(), params=params))
        assert isinstance(reply, Response), reply
    finally:
        await client.close()
    daemon.stop()
    shutil.rmtree(codex_home / "sessions")
    daemon.start()
    client = await Client.connect(daemon.socket)
    try:
        assert await session_text(client, "styled", "two", workdir) == "[turn 2] Echo: two"
    finally:
        await client.close()
    assert "Answer like a pirate." in codex_model_server.requests[-1].developer_texts()


@pytest.mark.parametrize("cut", CUTS)
async def test_a_session_whose_rollout_was_cut_short_goes_on_with_its_whole_history(
    daemon: DaemonProcess, workdir: Path, codex_home: Path, codex_model_server: ModelServer, cut: str
) -> None:
    """Cut while the daemon was down (a full disk, a crash, an edit), Codex resumed the rollout
    without a word and the model was sent what was left of it ("one", then "four"); as when the
    rollout is gone, the session goes on in a new thread seeded with the messages the registry kept."""
    client = await Client.connect(daemon.socket)
    try:
        for text in ("one", "two", "three"):
            await session_text(client, "notes", text, workdir)
    finally:
        await client.close()
    daemon.stop()
    cut_short(codex_home, cut, then='"text":"[turn 2] Echo: two"')
    daemon.start()
    client = await Client.connect(daemon.socket)
    try:
        assert await session_text(client, "notes", "four", workdir) == "[turn 4] Echo: four"
        assert codex_model_server.requests[-1].user_texts() == ["one", "two", "three", "four"]
        assert await session_text(client, "notes", "five", workdir) == "[turn 5] Echo: five"
    finally:
        await client.close()
    log = log_text(daemon)
    assert log.count("engine.session_reseeded") == 1 and "shorter than Codex recorded" in log


def test_a_stored_response_whose_rollout_was_cut_short_goes_on_from_its_stored_chain_after_a_restart(
    daemon: DaemonProcess, workdir: Path, codex_home: Path, codex_model_server: ModelServer
) -> None:
    """The chain went on with what was left of its rollout ("one", then "four"), silently; the
    daemon's responses.db keeps the chain, which a new thread is given instead."""
    with CodexClient(daemon="require", model="o4-mini") as client:
        one = client.responses.create(input="one")
        two = client.responses.create(input="two", previous_response_id=one.id)
        three = client.responses.create(input="three", previous_response_id=two.id)
    daemon.stop()
    cut_short(codex_home, CUTS[0], then="")
    daemon.start()
    with CodexClient(daemon="require", model="o4-mini") as client:
        four = client.responses.create(input="four", previous_response_id=three.id)
    assert four.output_text == "[turn 4] Echo: four"
    assert codex_model_server.requests[-1].user_texts() == ["one", "two", "three", "four"]
    assert log_text(daemon).count("responses.thread_lost") == 1


def rollout_holds(codex_home: Path, text: str) -> bool:
    """Some rollout of Codex's under ``codex_home`` has written ``text`` (a turn's user message)."""
    return any(text in path.read_text(errors="replace") for path in (codex_home / "sessions").rglob("*.jsonl"))


async def test_a_session_turn_the_daemon_was_killed_during_is_dropped_once_the_thread_is_resumed(
    daemon: DaemonProcess, workdir: Path, codex_home: Path, codex_model_server: ModelServer
) -> None:
    """Its caller lost the connection (a failed request); the rollout has the turn, no forget_later
    outlived the daemon: the session's record says which turn was its last, the later one goes."""
    client = await Client.connect(daemon.socket)
    try:
        assert await session_text(client, "notes", "one", workdir) == "Echo: one"
        doomed = client.start(session_request(client.next_id(), "notes", "doomed [[stall-mid]]", workdir))
        await async_wait_until(lambda: rollout_holds(codex_home, "doomed"), WAIT_S, "the turn in the rollout")
        daemon.kill9()
        with pytest.raises(ConnectionResetError):
            await doomed
    finally:
        await client.close()
    daemon.start()
    client = await Client.connect(daemon.socket)
    try:
        assert await session_text(client, "notes", "two", workdir) == "[turn 2] Echo: two"
        assert codex_model_server.requests[-1].user_texts() == ["one", "two"]
        assert await session_text(client, "notes", "three", workdir) == "[turn 3] Echo: three"  # stays dropped
    finally:
        await client.close()
    assert log_text(daemon).count("session.unanswered_turns_dropped") == 1


# --- 6. unusable state at start-up -----------------------------------------------------------------------------


def codd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``claif-codd ARGS...`` run to its end, its output captured."""
    command = [sys.executable, "-m", "claif_codd", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def serve_refused(daemon_env: dict[str, str], state: Path) -> str:
    """``claif-codd serve`` on ``state`` exits 78 with one line, no traceback and no socket left: that line."""
    socket_path = Path(daemon_env["CLAIF_COD_SOCKET"])
    done = codd(daemon_env, "serve", "--socket", str(socket_path), "--state-dir", str(state))
    assert done.returncode == 78, done
    [line] = [line for line in done.stderr.splitlines() if "error" in line]  # not also logged: it said it twice
    assert line.startswith("claif-codd: error: ")
    assert not socket_path.exists()
    return line


def test_a_file_where_the_socket_goes_is_left_alone_and_serve_says_so(daemon_env: dict[str, str]) -> None:
    """``--socket notes.txt`` (a mistake) deleted the file and listened there instead."""
    taken = Path(daemon_env["CLAIF_COD_SOCKET"])
    taken.write_text("precious")
    done = codd(daemon_env, "serve", "--socket", str(taken))
    assert done.returncode == 1, done
    assert f"claif-codd: error: {taken} exists and is not a socket: move it away" in done.stderr
    assert taken.read_text() == "precious"


def test_start_says_why_its_daemon_could_not_start(daemon_env: dict[str, str], tmp_path: Path) -> None:
    """It said only "exited at start (status 78); see codd.log"."""
    state = tmp_path / "state"
    state.write_text("not a directory")
    socket_path = Path(daemon_env["CLAIF_COD_SOCKET"])
    done = codd({**daemon_env, "CLAIF_COD_STATE_DIR": str(state)}, "start", "--socket", str(socket_path))
    assert done.returncode == 1, done
    assert done.stderr == (
        f"claif-codd: error: claif-codd exited at start (status 78): state directory {state} is not a "
        f"directory; move it away or choose another with $CLAIF_COD_STATE_DIR (or serve's --state-dir); "
        f"its log: {socket_path.parent / 'codd.log'}\n"
    )
    assert not socket_path.exists()


@pytest.mark.parametrize(
    "fault",
    [
        "registry is a directory",
        "response registry is a directory",
        "registry is a symlink",
        "response registry is a symlink",
        "lock is a symlink",
        "state dir is a file",
        "state dir open to others",
    ],
)
def test_unusable_state_stops_serve_before_it_binds_with_one_line_naming_the_path(
    daemon_env: dict[str, str], tmp_path: Path, fault: str
) -> None:
    state = tmp_path / "state"
    elsewhere = tmp_path / "elsewhere"  # what a link points to: never opened, created nor changed
    if fault.endswith("registry is a directory"):
        named = state / ("sessions.db" if fault.startswith("registry") else "responses.db")
        named.mkdir(parents=True)
        state.chmod(0o700)
    elif fault.endswith("is a symlink"):
        state.mkdir(mode=0o700)
        name = {"registry": "sessions.db", "response registry": "responses.db", "lock": "daemon.lock"}
        named = state / name[fault.removesuffix(" is a symlink")]
        named.symlink_to(elsewhere)
    elif fault == "state dir open to others":
        state.mkdir(mode=0o750)
        state.chmod(0o750)  # whatever the umask
        named = state
    else:
        state.write_text("not a directory")
        named = state
    line = serve_refused(daemon_env, state)
    assert str(named) in line and ("move it away" in line or "--state-dir" in line or "chmod 700" in line), line
    assert not elsewhere.exists()
    if fault == "state dir open to others":
        assert "mode 0750" in line and not any(state.iterdir())  # refused before anything was written there


@pytest.mark.parametrize(
    ("name", "version"), [("sessions.db", SCHEMA_VERSION), ("responses.db", RESPONSES_SCHEMA_VERSION)]
)
def test_a_registry_from_a_newer_daemon_stops_serve_with_one_line_and_no_socket(
    daemon_env: dict[str, str], tmp_path: Path, name: str, version: int
) -> None:
    """Found before the socket is bound: it was bound first, so `start` could see it accept and say
    "running" of a daemon about to exit with status 78 (below)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    registry = state / name
    with contextlib.closing(sqlite3.connect(registry)) as db:
        db.execute(f"PRAGMA user_version = {version + 1}")
        db.commit()
    before = registry.read_bytes()
    socket_path = Path(daemon_env["CLAIF_COD_SOCKET"])
    done = codd(daemon_env, "serve", "--socket", str(socket_path), "--state-dir", str(state), "--log-format", "json")
    assert done.returncode == 78, done
    assert "daemon.listening" not in done.stderr  # it never accepted a connection
    line = serve_refused(daemon_env, state)
    assert str(registry) in line and "move it away" in line and "--state-dir" in line, line
    assert registry.read_bytes() == before  # refused, neither discarded nor changed


@pytest.mark.parametrize(
    ("name", "version"), [("sessions.db", SCHEMA_VERSION), ("responses.db", RESPONSES_SCHEMA_VERSION)]
)
def test_start_says_its_daemon_exited_on_a_registry_from_a_newer_daemon(
    daemon_env: dict[str, str], tmp_path: Path, name: str, version: int
) -> None:
    """`start` said "claif-codd running (pid N)", exit status 0, about as often as not: the daemon took
    connections before it opened its registries, then exited with status 78."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with contextlib.closing(sqlite3.connect(state / name)) as db:
        db.execute(f"PRAGMA user_version = {version + 1}")
        db.commit()
    socket_path = Path(daemon_env["CLAIF_COD_SOCKET"])
    done = codd({**daemon_env, "CLAIF_COD_STATE_DIR": str(state)}, "start", "--socket", str(socket_path))
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert "exited at start (status 78)" in done.stderr and str(state / name) in done.stderr, done.stderr
    assert "written by a newer claif-codd" in done.stderr, done.stderr


# --- 8. logs an attacker cannot fill ---------------------------------------------------------------------------


async def test_client_supplied_strings_are_cut_in_logs(daemon: DaemonProcess, workdir: Path) -> None:
    huge = "n" * (4 << 20)
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket), limit=1 << 20)
    before = daemon.log.stat().st_size
    try:
        params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version="test", client_name=huge)
        writer.write(encode_frame(encode(HelloRequest(id=huge[:100_000], params=params))))
        options = CodexOptions(working_dir=str(workdir) + "/" + "p" * 100_000, session_id="s" * 100_000)
        for i in range(4):
            body = msgspec.json.encode({"model": "m" * 100_000, "messages": [{"role": "user", "content": "hi"}]})
            request = ChatCompletionsCreateRequest(
                id=f"{i}" * 100_000, params=ChatCompletionsCreateParams(body=msgspec.Raw(body), options=options)
            )
            writer.write(encode_frame(encode(request)))
        await writer.drain()
        decoder, replies = FrameDecoder(), 0
        while replies < 5:
            data = await asyncio.wait_for(reader.read(1 << 20), WAIT_S)
            assert data, "the daemon closed the connection"
            replies += len(decoder.feed(data))
    finally:
        writer.close()
    watcher = await Client.connect(daemon.socket)  # a round trip later, everything about them is logged
    await watcher.close()
    grown = daemon.log.stat().st_size - before
    assert grown < 64 * 1024, f"{grown} bytes of log for 5 requests"


# --- 10. a failed turn carries its reason ------------------------------------------------------------------------


async def test_a_session_turn_that_fails_after_partial_text_is_an_error_with_codex_reason(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer, tmp_path: Path
) -> None:
    """The model sends two deltas, then stalls: Codex gives up; the caller learns why, not just "failed"."""
    home = write_codex_home(tmp_path / "impatient", codex_model_server.url, stream_idle_timeout_ms=300)
    client = await Client.connect(daemon.socket)
    try:
        options = CodexOptions(working_dir=str(workdir), codex_home=str(home))
        request = SessionSendRequest(
            id=client.next_id(), params=SessionSendParams(session_id="stalls", text="[[stall-mid]]", options=options)
        )
        reply = await client.call(request)
        assert isinstance(reply, ErrorResponse), reply
        assert "idle" in reply.error.message.lower() or "timeout" in reply.error.message.lower(), reply.error
    finally:
        await client.close()
