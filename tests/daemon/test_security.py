"""Security properties of claif-codd, each shown against a real daemon process.

* the daemon refuses a socket directory another user could control, naming the fix, and the
  client refuses to talk through one (or to a daemon another uid runs);
* the socket is born 0600 (bound under umask 0o177): it is never observable with a wider mode;
* a peer of another uid is cut off on accept, before any reply, and the log says so;
* neither the API key nor the prompt reaches the daemon's log or any error the client sees;
* Codex children inherit none of the daemon's file descriptors nor systemd's variables.

Several tests need root (to chown, and to fork a child that becomes uid 65534); they skip otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess

from claif_cod import CodexClient
from claif_cod.engine.config import CodexConfig
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    CodexOptions,
    ErrorObject,
    ErrorResponse,
    HelloParams,
    HelloRequest,
    HelloResult,
    Response,
    encode,
    encode_frame,
)
from claif_cod.testing.daemon import START_TIMEOUT_S
from claif_cod.transport import daemon_client, daemon_unusable, socket_path
from claif_cod.transport.autostart import answers
from claif_cod.transport.socket_path import ForeignSocket, UnsafeSocketDirectory, check_peer, check_socket

NOBODY = 65534
API_KEY = "sk-SECRET-123"
PROMPT = "PROMPT-SECRET-456"
CLAIF_CODD = [sys.executable, "-m", "claif_codd"]
HELLO = encode_frame(
    encode(
        HelloRequest(id=1, params=HelloParams(protocol_version=PROTOCOL_VERSION, package_version="t", client_name="t"))
    )
)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown, and a child that becomes another uid")
# Child forks on purpose (then only syscalls and plain Python before _exit); a pytest-xdist worker has
# a thread of its own, which Python 3.12+ warns of at every fork.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


# --- helpers: daemons with chosen options, and children of another uid ---------------------------


def launch(
    socket: Path,
    tmp_path: Path,
    codex_home: Path,
    *,
    log_level: str | None = "debug",
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    umask: int = -1,
) -> DaemonProcess:
    """``claif-codd serve`` like the ``daemon`` fixture, but the log level (None: the default) and the
    environment, fds and umask it inherits are the test's to choose."""
    full_env = {**os.environ, "CLAIF_COD_SOCKET": str(socket), "CODEX_HOME": str(codex_home), **(env or {})}
    process = DaemonProcess(socket=socket, state_dir=tmp_path / "state", log=tmp_path / "codd.log", env=full_env)
    args = [*CLAIF_CODD, "serve", "--socket", str(socket), "--state-dir", str(process.state_dir)]
    if log_level is not None:
        args += ["--log-level", log_level]
    with open(process.log, "ab") as log:
        process.proc = subprocess.Popen(
            args,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            pass_fds=pass_fds,
            umask=umask,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _hello_answered(socket):
        if process.proc.poll() is not None or time.monotonic() > deadline:
            process.stop()
            raise RuntimeError(f"daemon did not start:\n{process.log.read_text()}")
        time.sleep(0.01)
    return process


def _hello_answered(path: Path) -> bool:
    """A hello round trip: unlike a bare connect (which the kernel's backlog accepts), it proves the
    daemon's loop runs, so its signal handlers are installed and a SIGTERM means a clean stop."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.connect(str(path))
        sock.sendall(HELLO)
        return len(sock.recv(65536)) > 4
    except OSError:
        return False
    finally:
        sock.close()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Daemons a test launched; all stopped (and reaped) afterwards."""
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A root-owned 0711 directory directly in /tmp: other uids may pass through it to what its entries
    allow (tmp_path's ancestors are closed to them)."""
    path = Path(tempfile.mkdtemp(prefix="claif-sec-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Child:
    """A forked child that dropped to ``uid``; ``result()`` is the bytes its function returned."""

    def __init__(self, uid: int, fn: Callable[[], bytes]) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # child: only syscalls and plain Python from here, then _exit
            code = 1
            try:
                os.close(read_end)
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                assert os.getuid() == os.geteuid() == uid
                out = fn()
                code = 0
            except BaseException as exc:
                out = f"EXC:{exc!r}".encode()
            finally:
                with contextlib.suppress(BaseException):
                    os.write(write_end, out)
                os._exit(code)
        os.close(write_end)
        self._read_end = read_end

    def result(self, timeout: float = 20.0) -> bytes:
        data = b""
        deadline = time.monotonic() + timeout
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([self._read_end], [], [], remaining)
                if not ready:
                    break
                chunk = os.read(self._read_end, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self._read_end)
            self.reap()
        return data

    def reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)


def connect_and_hello(path: Path) -> Callable[[], bytes]:
    """In the child: connect, send a valid hello, report what came back."""

    def run() -> bytes:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(str(path))
        except PermissionError:
            return b"EACCES"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(HELLO)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return b"RESET"
        except TimeoutError:
            return b"TIMEOUT"
        return b"EOF" if not data else b"DATA:" + data

    return run


# --- unsafe socket directories -------------------------------------------------------------------


def make_unsafe(kind: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """A directory of the given kind of unsafety, and what the refusal must say: the problem and the fix."""
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    if kind.startswith("mode-"):
        path = tmp_path / kind
        path.mkdir()
        path.chmod(int(kind.removeprefix("mode-"), 8))
        return path, [f"has mode {kind.removeprefix('mode-')}", f"chmod 700 {path}"]
    if kind == "foreign-owner":
        path = tmp_path / "foreign"
        path.mkdir(mode=0o700)
        os.chown(path, NOBODY, NOBODY)
        return path, [f"owned by uid {NOBODY}, not by you", "remove it or set $CLAIF_COD_SOCKET"]
    if kind == "symlink":
        path = tmp_path / "link"
        path.symlink_to(safe, target_is_directory=True)
        return path, ["is a symlink", f"rm {path}"]
    raise AssertionError(kind)


UNSAFE_KINDS = ["mode-0770", "mode-0777", "mode-0707", pytest.param("foreign-owner", marks=root_only), "symlink"]


@pytest.mark.parametrize("kind", UNSAFE_KINDS)
def test_daemon_refuses_an_unsafe_socket_directory_naming_the_fix(kind: str, tmp_path: Path, codex_home: Path) -> None:
    directory, fix = make_unsafe(kind, tmp_path)
    out = subprocess.run(
        [*CLAIF_CODD, "serve", "--socket", str(directory / "codd.sock"), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "CODEX_HOME": str(codex_home)},
    )
    assert out.returncode != 0, out.stderr
    for words in fix:
        assert words in out.stderr, out.stderr
    assert not (directory / "codd.sock").exists()
    assert not (tmp_path / "safe" / "codd.sock").exists()  # nor through the symlink


@pytest.mark.parametrize("kind", UNSAFE_KINDS)
def test_check_socket_refuses_what_the_daemon_refuses(kind: str, tmp_path: Path) -> None:
    directory, fix = make_unsafe(kind, tmp_path)
    with pytest.raises(UnsafeSocketDirectory) as exc:
        check_socket(directory / "codd.sock")
    for words in fix:
        assert words in str(exc.value)


@pytest.mark.parametrize("command", ["status", "sessions"])
def test_status_through_an_unsafe_directory_names_its_fix_and_not_a_start(command: str, tmp_path: Path) -> None:
    """``claif-codd start`` refuses that directory too: "start one with `claif-codd start`" sent the user
    to a command that fails the same way, after the fix the message had already named."""
    directory, fix = make_unsafe("mode-0777", tmp_path)
    done = subprocess.run(
        [*CLAIF_CODD, command, "--socket", str(directory / "codd.sock")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("claif-codd: error: refusing to connect to claif-codd at "), done.stderr
    assert all(words in done.stderr for words in fix), done.stderr
    assert "claif-codd start" not in done.stderr


@root_only
def test_a_socket_directory_we_may_not_even_examine_is_refused_naming_the_fix(public_tmp: Path) -> None:
    """``su`` keeps the first user's ``$XDG_RUNTIME_DIR`` (0700, theirs): the socket's directory cannot even
    be looked at. That was a bare ``PermissionError``: a traceback from ``auto`` clients (which are to
    run Codex themselves when no daemon of theirs answers), ``status`` and ``sessions``."""
    runtime = public_tmp / "runtime-of-another-user"
    runtime.mkdir(mode=0o700)  # root's: closed to the child, which becomes nobody
    (runtime / "claif-cod").mkdir(mode=0o700)
    path = runtime / "claif-cod" / "codd.sock"

    def attempt() -> bytes:
        outcomes = []
        for check in (lambda: check_socket(path), lambda: socket_path.ensure_directory(path.parent)):
            try:
                check()
                outcomes.append("passed")
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
        try:
            asyncio.run(daemon_client.DaemonConnection.open(path))
            outcomes.append("connected")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        return json.dumps(outcomes).encode()

    checked, ensured, opened = json.loads(Child(NOBODY, attempt).result())
    for outcome in (checked, ensured):
        assert outcome.startswith("UnsafeSocketDirectory: "), outcome
        assert f"{path.parent} cannot be examined (permission denied)" in outcome
        assert "set $CLAIF_COD_SOCKET to a path in a directory you own" in outcome
    assert opened == "UntrustedDaemon"  # which an auto client takes as "no daemon": Codex runs in-process


def test_check_socket_accepts_our_socket_and_refuses_planted_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    check_socket(run / "codd.sock")  # nothing there yet: connecting will say so
    check_socket(tmp_path / "missing" / "codd.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(run / "codd.sock"))
        check_socket(run / "codd.sock")
        if os.geteuid() == 0:
            os.chown(run / "codd.sock", NOBODY, NOBODY)
            with pytest.raises(ForeignSocket, match=f"owned by uid {NOBODY}"):
                check_socket(run / "codd.sock")
    finally:
        listener.close()
    (run / "codd.sock").unlink()
    (run / "codd.sock").write_text("not a socket")
    with pytest.raises(UnsafeSocketDirectory, match="is not a socket"):
        check_socket(run / "codd.sock")


def test_a_socket_path_through_a_file_is_no_daemon_and_an_auto_client_runs_codex_itself(
    codex_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$XDG_CACHE_HOME`` (where the socket goes without ``$XDG_RUNTIME_DIR``) a file, or a
    ``$CLAIF_COD_SOCKET`` under one: every client, ``claif-cod query`` and ``claif-codd status``
    included, died with a ``NotADirectoryError`` traceback from the socket check."""
    (tmp_path / "cache").write_text("a file, not a directory")
    path = tmp_path / "cache" / "claif-cod" / "codd.sock"
    check_socket(path)  # nothing there: connecting says so
    assert not socket_path.listening(path)
    with pytest.raises(daemon_unusable.DaemonUnavailable, match="no claif-codd answers at"):
        asyncio.run(daemon_client.DaemonConnection.open(path))
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(path))
    with CodexClient(daemon="auto", working_dir=str(tmp_path)) as client:
        reply = client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert reply.choices[0].message.content == "Echo: hi"


def impostor(path: Path, ready: int, done: tuple[int, int]) -> Callable[[], bytes]:
    """In a child of another uid: a fake claif-codd that answers hello and records everything it is
    sent, until ``done``'s write end is closed (by the test, once its client is finished)."""
    hello_reply = encode_frame(
        encode(
            Response(
                id=1,
                result=HelloResult(
                    protocol_version=PROTOCOL_VERSION,
                    package_version="evil",
                    daemon_pid=1,
                    capabilities=[],
                    max_frame_size=1 << 24,
                ),
            )
        )
    )
    error = encode_frame(encode(ErrorResponse(id=2, error=ErrorObject(code=-32603, message="gotcha"))))

    def run() -> bytes:
        done_r, done_w = done
        os.close(done_w)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o666)
        listener.listen(8)
        os.write(ready, b"R")
        captured = b""
        try:
            while True:
                readable, _, _ = select.select([listener, done_r], [], [], 15)
                if done_r in readable or not readable:  # the test is done (or gave up on the client)
                    return captured
                conn, _ = listener.accept()
                conn.settimeout(5)
                replies = [hello_reply, error]
                try:
                    while chunk := conn.recv(65536):
                        captured += chunk
                        if replies and len(captured) >= 4:
                            conn.sendall(replies.pop(0))
                except OSError:
                    pass
                conn.close()
        except OSError:
            return captured

    return run


class Impostor:
    """An impostor of uid 65534 listening at ``directory/codd.sock`` (a directory 65534 owns)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o755)
        os.chown(directory, NOBODY, NOBODY)
        ready_r, ready_w = os.pipe()
        done_r, self._done_w = os.pipe()
        try:
            self._child = Child(NOBODY, impostor(directory / "codd.sock", ready_w, (done_r, self._done_w)))
            os.close(ready_w)
            ready, _, _ = select.select([ready_r], [], [], 10)
            if not (ready and os.read(ready_r, 1) == b"R"):
                raise AssertionError(f"impostor did not start: {self.captured()!r}")
        finally:
            os.close(ready_r)
            os.close(done_r)

    def captured(self) -> bytes:
        """Everything the impostor was sent, once it stopped (told to now)."""
        os.close(self._done_w)
        return self._child.result(timeout=20)


@root_only
def test_check_peer_names_a_listener_of_another_uid(
    public_tmp: Path, daemons: list[DaemonProcess], codex_home: Path, tmp_path: Path
) -> None:
    evil = public_tmp / "evil"
    evil_daemon = Impostor(evil)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(evil / "codd.sock"))
        assert socket_path.peer_uid(sock) == NOBODY
        with pytest.raises(ForeignSocket, match=f"runs as uid {NOBODY}, not as you"):
            check_peer(sock, evil / "codd.sock")
        sock.close()
    finally:
        evil_daemon.captured()
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    ours = launch(run / "codd.sock", tmp_path, codex_home)
    daemons.append(ours)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(ours.socket))
    check_peer(sock, ours.socket)  # our own daemon passes
    sock.close()


def _client_checks_wired() -> bool:
    source = inspect.getsource(daemon_client.DaemonConnection.open)
    return "check_socket(" in source and "check_peer(" in source


@root_only
@pytest.mark.parametrize("planted", ["foreign-directory", "planted-socket"])
@pytest.mark.xfail(
    not _client_checks_wired(),
    strict=True,
    reason="SECURITY BUG: the client sends its API key and prompt to a daemon another uid runs; "
    "DaemonConnection.open must call socket_path.check_socket before connecting and check_peer before hello",
)
def test_client_never_sends_its_key_to_an_impostor(
    planted: str, public_tmp: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon another user runs, reachable at the client's socket path, must get nothing from it.

    foreign-directory: the socket directory belongs to uid 65534 (check_socket refuses it).
    planted-socket: the directory and socket file look like ours (root's, 0700/0600), but the process
    listening is uid 65534's, as after a path swap (only check_peer, i.e. SO_PEERCRED, can tell).
    """
    evil = public_tmp / "evil"
    evil_daemon = Impostor(evil)
    path = evil / "codd.sock"
    if planted == "planted-socket":
        ours = public_tmp / "run"
        ours.mkdir(mode=0o700)
        os.rename(path, ours / "codd.sock")  # a socket keeps its listener when renamed
        path = ours / "codd.sock"
        os.chown(path, 0, 0)
        path.chmod(0o600)
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(path))
    try:
        with CodexClient(daemon="require", api_key=API_KEY) as client, pytest.raises(openai.APIConnectionError) as exc:
            client.chat.completions.create(model="o4-mini", messages=[user(PROMPT)])
    finally:
        captured = evil_daemon.captured()
    assert API_KEY.encode() not in captured and PROMPT.encode() not in captured, captured[:400]
    assert captured == b"", "the client sent something to a daemon another user runs"
    assert str(path.parent) in str(exc.value) or str(path) in str(exc.value)


# --- the socket is born 0600 ---------------------------------------------------------------------


def test_socket_is_0600_and_ours_right_after_start(
    tmp_path: Path, codex_home: Path, daemons: list[DaemonProcess]
) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    process = launch(run / "codd.sock", tmp_path, codex_home)
    daemons.append(process)
    st = os.lstat(process.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()
    dir_st = os.lstat(run)
    assert stat.S_ISDIR(dir_st.st_mode) and stat.S_IMODE(dir_st.st_mode) == 0o700 and dir_st.st_uid == os.getuid()


def test_socket_is_never_observable_with_a_wider_mode(
    tmp_path: Path, codex_home: Path, daemons: list[DaemonProcess]
) -> None:
    """Poll lstat in a tight loop while daemons started with umask 000 come up: bind-then-chmod would
    show 0777 for a moment; binding under umask 0o177 never does."""
    modes: set[int] = set()
    for attempt in range(3):
        run = tmp_path / f"run{attempt}"
        run.mkdir(mode=0o700)
        path = run / "codd.sock"
        stop = threading.Event()

        def poll(path: Path = path, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                with contextlib.suppress(FileNotFoundError):
                    modes.add(stat.S_IMODE(os.lstat(path).st_mode))

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            state = tmp_path / f"d{attempt}"
            state.mkdir(mode=0o700)
            process = launch(path, state, codex_home, umask=0o000)  # bind-then-chmod would show 0777
            daemons.append(process)
        finally:
            stop.set()
            poller.join()
    assert modes == {0o600}


def test_bind_happens_under_umask_0177(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the umask in force when the daemon calls bind(), and no chmod after it."""
    from claif_codd.server import Daemon, DaemonConfig

    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    seen: list[int] = []
    real_bind = socket.socket.bind

    def bind(self: socket.socket, address: Any) -> None:
        current = os.umask(0o077)
        os.umask(current)
        seen.append(current)
        real_bind(self, address)

    def no_chmod(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the socket's mode must come from the umask at bind(), not a later chmod")

    monkeypatch.setattr(socket.socket, "bind", bind)
    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    previous = os.umask(0o000)  # the most permissive caller
    try:
        daemon = Daemon(DaemonConfig(socket_path=run / "codd.sock", state_dir=tmp_path / "state"))
        sock = daemon._bind()
    finally:
        os.umask(previous)
    try:
        assert seen == [0o177]
        assert stat.S_IMODE(os.lstat(run / "codd.sock").st_mode) == 0o600
    finally:
        sock.close()


# --- peers of another uid ------------------------------------------------------------------------


@root_only
def test_other_uid_cannot_even_reach_the_socket_in_a_0700_directory(
    public_tmp: Path, tmp_path: Path, codex_home: Path, daemons: list[DaemonProcess]
) -> None:
    run = public_tmp / "run"
    run.mkdir(mode=0o700)
    process = launch(run / "codd.sock", tmp_path, codex_home)
    daemons.append(process)
    assert Child(NOBODY, connect_and_hello(process.socket)).result() == b"EACCES"
    assert "foreign_peer_refused" not in process.log.read_text()  # it never got as far as the daemon


@root_only
def test_peer_of_another_uid_is_cut_off_without_a_reply(
    public_tmp: Path, tmp_path: Path, codex_home: Path, daemons: list[DaemonProcess]
) -> None:
    """Open the path to the socket for the test only (dir 0711, socket 0666) so a uid-65534 child can
    connect at all: SO_PEERCRED records its uid at connect(), and the daemon must refuse it on accept."""
    run = public_tmp / "run"
    run.mkdir(mode=0o700)
    process = launch(run / "codd.sock", tmp_path, codex_home)
    daemons.append(process)
    run.chmod(0o711)
    process.socket.chmod(0o666)
    try:
        outcome = Child(NOBODY, connect_and_hello(process.socket)).result()
    finally:
        run.chmod(0o700)
        process.socket.chmod(0o600)
    assert outcome in (b"EOF", b"RESET"), outcome  # closed, and not a single byte of reply
    deadline = time.monotonic() + 5
    while "foreign_peer_refused" not in (log := process.log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)  # the console renderer colours key=value pairs
    (line,) = [line for line in plain.splitlines() if "daemon.foreign_peer_refused" in line]
    assert f"peer_uid={NOBODY}" in line
    status = process.status_json()  # our own uid is still welcome
    assert status["connections"] == 1


# --- no secrets in logs or errors ----------------------------------------------------------------


def _error_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc)]
    if isinstance(exc, openai.APIStatusError):
        texts += [exc.message, repr(exc.body), exc.response.text, repr(exc.response.headers)]
    return texts


@pytest.mark.codex
@pytest.mark.parametrize("log_level", [None, "debug"], ids=["default-level", "debug-level"])
def test_no_secret_reaches_the_log_or_an_error(
    log_level: str | None,
    tmp_path: Path,
    codex_home: Path,
    workdir: Path,
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    process = launch(run / "codd.sock", tmp_path, codex_home, log_level=log_level)
    daemons.append(process)
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(process.socket))
    errors: list[str] = []
    with CodexClient(daemon="require", api_key=API_KEY) as client:
        ok = client.chat.completions.create(model="o4-mini", messages=[user(PROMPT)])
        assert ok.choices[0].message.content == f"Echo: {PROMPT}"  # the prompt belongs in the answer
        with pytest.raises(openai.AuthenticationError) as failed:
            client.chat.completions.create(model="o4-mini", messages=[user(f"[[status:401]] {PROMPT}")])
        errors += _error_texts(failed.value)
        with pytest.raises(openai.APIError) as failed_stream:
            for _ in client.chat.completions.create(
                model="o4-mini", messages=[user(f"[[status:401]] {PROMPT}")], stream=True
            ):
                pass
        errors += _error_texts(failed_stream.value)
        with pytest.raises(openai.APIError) as bad_request:
            client.chat.completions.create(model="o4-mini", messages=[{"role": "nobody", "content": PROMPT}])
        errors += _error_texts(bad_request.value)
    status_text = json.dumps(process.status_json())
    log = process.log.read_text()
    assert "request.failed" in log or log_level is None  # the failures were logged, without the secrets
    for secret in (API_KEY, PROMPT):  # at no level: debug logging is for the daemon's workings
        assert secret not in log, f"{secret} in the daemon log"
        assert secret not in status_text
        for text in errors:
            assert secret not in text, f"{secret} in an error the client saw: {text[:300]}"


def test_codex_options_and_config_reprs_mask_the_key() -> None:
    options = CodexOptions(api_key=API_KEY, working_dir="/w")
    for text in (repr(options), str(options), f"{options}", "%r" % (options,)):  # noqa: UP031
        assert API_KEY not in text
        assert "api_key='***'" in text or "api_key=***" in text
    assert "working_dir='/w'" in repr(options)
    assert repr(CodexOptions()).count("api_key=None") == 1  # unset stays visible as unset
    assert API_KEY not in repr(CodexConfig(working_dir="/w", api_key=API_KEY))
    # On the wire the key is there, as it must be: the socket is the private channel.
    assert API_KEY.encode() in msgspec.json.encode(options)


# --- what Codex children inherit -----------------------------------------------------------------

SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def _unix_socket_inodes(path: Path) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == str(path):
            inodes.add(fields[6])
    return inodes


@pytest.mark.codex
def test_codex_children_get_no_daemon_fds_no_systemd_variables_and_no_http_token(
    tmp_path: Path, codex_home: Path, workdir: Path, daemons: list[DaemonProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(10)
    marker = tmp_path / "inherited-marker"
    marker.write_text("the daemon's parent left this open")
    inherited = os.open(marker, os.O_RDONLY)
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    try:
        process = launch(
            run / "codd.sock",
            tmp_path,
            codex_home,
            pass_fds=(inherited,),
            env={
                "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                "WATCHDOG_USEC": "60000000",
                "LISTEN_FDS": "1",
                "LISTEN_PID": "1",  # not the daemon: it must ignore and still scrub these
                "LISTEN_FDNAMES": "claif-codd.socket",
                "CLAIF_CODD_HTTP_TOKEN": "the HTTP endpoint's token",  # a command the model runs could print it
            },
        )
        daemons.append(process)
        assert b"READY=1" in notify.recv(4096)  # the daemon itself did get systemd's notify socket
    finally:
        os.close(inherited)
        notify.close()
    assert process.proc is not None
    daemon_fds = set()
    for fd in os.listdir(f"/proc/{process.proc.pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed between the listing and the readlink
            daemon_fds.add(os.readlink(f"/proc/{process.proc.pid}/fd/{fd}"))
    assert str(marker) in daemon_fds  # the daemon did inherit it ...

    monkeypatch.setenv("CLAIF_COD_SOCKET", str(process.socket))
    with CodexClient(daemon="require") as client:
        assert client.chat.completions.create(model="o4-mini", messages=[user("fds")]).choices[0].message.content
    (codex,) = process.status_json()["processes"]
    pid = codex["pid"]

    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert not names & {*SYSTEMD_VARIABLES, "CLAIF_CODD_HTTP_TOKEN"}, names & set(SYSTEMD_VARIABLES)
    assert "CODEX_HOME" in names  # what Codex needs is still there

    targets = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            targets[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
    assert {0, 1, 2} <= set(targets)
    listening = {f"socket:[{inode}]" for inode in _unix_socket_inodes(process.socket)}
    assert listening, "the daemon's socket is not in /proc/net/unix"
    assert not {targets[fd] for fd in (0, 1, 2)} & listening  # stdio are the daemon's pipes to Codex
    private = {str(marker), str(process.log), str(process.state_dir / "sessions.db")}
    leaked = {fd: t for fd, t in targets.items() if t in private | listening or t == str(tmp_path / "notify.sock")}
    assert not leaked, f"Codex child {pid} holds daemon fds: {leaked} (all: {targets})"
    assert inherited not in targets or targets[inherited] != str(marker)


# --- the socket the daemon removes is the one it bound -------------------------------------------


def test_shutdown_leaves_a_socket_that_replaced_ours_alone(
    tmp_path: Path, codex_home: Path, daemons: list[DaemonProcess]
) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    process = launch(run / "codd.sock", tmp_path, codex_home)
    daemons.append(process)
    os.rename(process.socket, run / "old.sock")
    newcomer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        newcomer.bind(str(process.socket))
        newcomer.listen(1)
        assert process.stop() == 0
        assert process.socket.exists() and answers(process.socket)  # not unlinked: not the daemon's inode
    finally:
        newcomer.close()


def test_daemon_start_writes_its_log_only_in_a_private_directory(tmp_path: Path) -> None:
    """``claif-codd start`` checks the socket's directory before it creates ``codd.log`` there, and
    creates it 0600 whatever the umask."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}

    def codd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claif_codd", *args], env=env, capture_output=True, text=True, timeout=60
        )

    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    refused = codd("start", "--socket", str(open_dir / "codd.sock"))
    assert refused.returncode == 1 and f"chmod 700 {open_dir}" in refused.stderr, refused.stderr
    assert list(open_dir.iterdir()) == []

    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    socket_file = private / "codd.sock"
    old_umask = os.umask(0o022)
    try:
        started = codd("start", "--socket", str(socket_file))
    finally:
        os.umask(old_umask)
        codd("stop", "--socket", str(socket_file))
    assert started.returncode == 0, started.stderr
    assert stat.S_IMODE((private / "codd.log").stat().st_mode) == 0o600


def test_start_on_a_socket_path_through_a_file_says_where_and_what_to_do(tmp_path: Path) -> None:
    """It printed only "[Errno 20] Not a directory: '.../claif-cod'"."""
    (tmp_path / "cache").write_text("a file, not a directory")
    path = tmp_path / "cache" / "claif-cod" / "codd.sock"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    started = subprocess.run(
        [sys.executable, "-m", "claif_codd", "start", "--socket", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert started.returncode == 1
    assert started.stderr == (
        f"claif-codd: error: cannot start claif-codd on {path}: {path.parent}: Not a directory; "
        "choose another socket with --socket or $CLAIF_COD_SOCKET\n"
    )
