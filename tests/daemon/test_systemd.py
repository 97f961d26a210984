"""systemd integration without systemd: a datagram socket in tmp_path plays the notify socket.

sd_notify, the watchdog and socket activation are exercised against real sockets; socket
activation runs in a child process (``LISTEN_PID`` must be the pid of the process that calls
``listen_fds``, and the passed socket must sit on fd 3).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from claif_codd import systemd

SYSTEMD_VARIABLES = (*systemd.NOTIFY_VARIABLES, *systemd.LISTEN_VARIABLES)


@pytest.fixture(autouse=True)
def _clean_systemd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start with none of systemd's variables, whatever runs pytest (maybe a systemd unit)."""
    for name in SYSTEMD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def short_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose socket paths fit in sun_path (108 bytes), tmp_path if short enough."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="sd-") as short:
        yield Path(short)


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, address: str | bytes, env_value: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.env_value = env_value

    def receive(self, timeout: float = 5.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def pending(self) -> list[str]:
        """Every datagram already queued, without waiting."""
        self.sock.setblocking(False)
        out: list[str] = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_systemd(short_dir: Path) -> Iterator[FakeSystemd]:
    path = short_dir / "notify.sock"
    fake = FakeSystemd(str(path), str(path))
    yield fake
    fake.close()


@pytest.fixture
def abstract_systemd() -> Iterator[FakeSystemd]:
    name = f"claif-codd-test/{uuid.uuid4().hex}"
    fake = FakeSystemd(b"\0" + name.encode(), "@" + name)
    yield fake
    fake.close()


# --- sd_notify ----------------------------------------------------------------------------------


def test_notify_delivers_ready_status_and_stopping(fake_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", fake_systemd.env_value)
    assert systemd.notify("READY=1", "STATUS=serving on /run/user/1000/claif-cod/codd.sock")
    assert fake_systemd.receive() == "READY=1\nSTATUS=serving on /run/user/1000/claif-cod/codd.sock"
    assert systemd.notify("STOPPING=1")
    assert fake_systemd.receive() == "STOPPING=1"
    assert fake_systemd.pending() == []


def test_notify_abstract_namespace(abstract_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", abstract_systemd.env_value)
    assert systemd.notify("READY=1")
    assert abstract_systemd.receive() == "READY=1"


@pytest.mark.parametrize("value", [None, ""])
def test_notify_without_notify_socket_is_a_no_op(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is not None:
        monkeypatch.setenv("NOTIFY_SOCKET", value)

    def no_sockets(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("notify must not create a socket without NOTIFY_SOCKET")

    monkeypatch.setattr(socket, "socket", no_sockets)
    assert systemd.notify("READY=1") is False
    assert systemd.SystemdNotifier().notify("READY=1") is False
    assert systemd.SystemdNotifier().enabled is False


def test_notify_send_errors_are_logged_not_raised(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "nobody-listens.sock"))
    with caplog.at_level(logging.DEBUG, logger="claif_codd.systemd"):
        assert systemd.notify("READY=1") is False
    assert any(r.name == "claif_codd.systemd" and r.levelno == logging.DEBUG for r in caplog.records)


def test_notify_ignores_unsupported_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert systemd.notify("READY=1") is False


# --- capture, then scrub --------------------------------------------------------------------------


def test_scrub_environment_removes_only_notify_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/user/1000/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("CLAIF_COD_UNRELATED", "kept")
    systemd.scrub_environment()
    for name in systemd.NOTIFY_VARIABLES:
        assert name not in os.environ
    assert os.environ["CLAIF_COD_UNRELATED"] == "kept"
    systemd.scrub_environment()  # idempotent


def test_notifier_keeps_working_after_scrub(fake_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", fake_systemd.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    notifier = systemd.from_environment()

    assert notifier.enabled
    assert notifier.watchdog_interval == 15.0
    for name in systemd.NOTIFY_VARIABLES:
        assert name not in os.environ
    # a child spawned now would see none of it
    child_env = subprocess.run(
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not set(json.loads(child_env)) & set(systemd.NOTIFY_VARIABLES)
    assert systemd.notify("READY=1") is False  # the environment is gone ...
    assert notifier.notify("READY=1")  # ... but the captured address still works
    assert fake_systemd.receive() == "READY=1"


def test_from_env_reads_a_mapping() -> None:
    notifier = systemd.SystemdNotifier.from_env({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000"})
    assert notifier == systemd.SystemdNotifier(address="@x", watchdog_interval=1.0)
    assert systemd.SystemdNotifier.from_env({}) == systemd.SystemdNotifier(None, None)


# --- watchdog -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("1000000", None, 0.5),
        ("30000000", "other", None),
        ("30000000", "not-a-pid", None),
        (None, None, None),
        (None, "self", None),
        ("", None, None),
        ("0", None, None),
        ("-5", None, None),
        ("thirty", None, None),
    ],
)
def test_watchdog_interval(
    usec: str | None, pid: str | None, expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if usec is not None:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid == "self":
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    elif pid == "other":
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    elif pid is not None:
        monkeypatch.setenv("WATCHDOG_PID", pid)
    assert systemd.watchdog_interval() == expected


async def test_watchdog_loop_pings_until_cancelled(fake_systemd: FakeSystemd) -> None:
    notifier = systemd.SystemdNotifier(address=fake_systemd.env_value, watchdog_interval=0.02)
    task = asyncio.create_task(systemd.watchdog_loop(notifier, 0.02))
    pings: list[str] = []
    deadline = time.monotonic() + 5
    while len(pings) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        pings += fake_systemd.pending()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(pings) >= 4
    assert set(pings) == {"WATCHDOG=1"}
    assert task.cancelled()  # the loop is over: nothing is left to ping


async def test_blocked_event_loop_stops_the_pings(fake_systemd: FakeSystemd) -> None:
    notifier = systemd.SystemdNotifier(address=fake_systemd.env_value)
    task = asyncio.create_task(systemd.watchdog_loop(notifier, 0.01))
    first: list[str] = []
    deadline = time.monotonic() + 5
    while not first and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # polls for the first ping, while the loop runs
        first = fake_systemd.pending()
    assert first, "no ping while the loop ran"
    time.sleep(0.2)  # noqa: ASYNC251 - the point: a loop stuck in blocking code
    assert fake_systemd.pending() == []  # 20 intervals went by without a ping
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- socket activation ------------------------------------------------------------------------------

# Runs in the child: put the passed socket on fd 3 (as systemd would), set LISTEN_* for this very
# pid, call listen_fds and report; then serve one connection on what it got, proving it is live.
ACTIVATED_CHILD = textwrap.dedent(
    """
    import json, os, socket, sys
    from claif_codd import systemd

    passed, mode = int(sys.argv[1]), sys.argv[2]
    if passed != 3:
        os.dup2(passed, 3)
        os.close(passed)
    pid = os.getpid() if mode == "ours" else os.getppid()
    os.environ.update(LISTEN_PID=str(pid), LISTEN_FDS="1", LISTEN_FDNAMES="claif-codd.socket")
    sockets = systemd.listen_fds()
    report = {
        "count": len(sockets),
        "fds": [s.fileno() for s in sockets],
        "families": [int(s.family) for s in sockets],
        "types": [int(s.type) for s in sockets],
        "names": [s.getsockname() for s in sockets],
        "fd3_inheritable": os.get_inheritable(3),
        "env_left": [n for n in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if n in os.environ],
    }
    print(json.dumps(report), flush=True)
    if sockets:
        conn, _ = sockets[0].accept()
        conn.sendall(b"hello from fd 3")
        conn.close()
    """
)


def run_activated_child(listener: socket.socket, mode: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    fd = listener.fileno()
    proc = subprocess.Popen(
        [sys.executable, "-c", ACTIVATED_CHILD, str(fd), mode],
        pass_fds=(fd,),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"child failed: {proc.communicate()[1]}")
    return proc, json.loads(line)


def test_listen_fds_takes_the_passed_socket_in_a_child(short_dir: Path) -> None:
    path = short_dir / "codd.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(8)
        proc, report = run_activated_child(listener, "ours")
        try:
            assert report == {
                "count": 1,
                "fds": [3],
                "families": [int(socket.AF_UNIX)],
                "types": [int(socket.SOCK_STREAM)],
                "names": [str(path)],
                "fd3_inheritable": False,  # close-on-exec: Codex children do not get the listener
                "env_left": [],
            }
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(10)
                client.connect(str(path))
                assert client.recv(100) == b"hello from fd 3"
        finally:
            _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err


def test_listen_fds_ignores_fds_meant_for_another_pid(short_dir: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(short_dir / "codd.sock"))
        listener.listen(8)
        proc, report = run_activated_child(listener, "parent")
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert report["count"] == 0
    assert report["fd3_inheritable"] is True  # not ours: left untouched
    assert report["env_left"] == []  # but still scrubbed


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LISTEN_FDS": "1"},
        {"LISTEN_PID": "self", "LISTEN_FDS": "0"},
        {"LISTEN_PID": "self", "LISTEN_FDS": "many"},
        {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"},
        {"LISTEN_PID": "nope", "LISTEN_FDS": "1"},
    ],
)
def test_listen_fds_without_activation(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert systemd.listen_fds() == []
    for name in systemd.LISTEN_VARIABLES:
        assert name not in os.environ


# --- the daemon under a pretend systemd ------------------------------------------------------------

# Exec's the daemon with the listener on fd 3 and LISTEN_PID = its pid (exec keeps the pid).
EXEC_DAEMON = textwrap.dedent(
    """
    import os, sys
    passed = int(sys.argv[1])
    if passed != 3:
        os.dup2(passed, 3)
        os.close(passed)
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="claif-codd.socket")
    os.execv(sys.executable, [sys.executable, "-m", "claif_codd", "serve", *sys.argv[2:]])
    """
)


def test_daemon_socket_activation_and_notify(fake_systemd: FakeSystemd, short_dir: Path, tmp_path: Path) -> None:
    from claif_cod.transport.autostart import answers

    run_dir = short_dir / "run"
    run_dir.mkdir(mode=0o700)
    path = run_dir / "codd.sock"
    env = {
        **os.environ,
        "NOTIFY_SOCKET": fake_systemd.env_value,
        "WATCHDOG_USEC": "200000",  # pings every 0.1 s
        "CLAIF_COD_SOCKET": str(path),
        "CODEX_HOME": str(tmp_path / "codex-home"),
    }
    log_path = tmp_path / "codd.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener, open(log_path, "ab") as log:
        listener.bind(str(path))
        listener.listen(8)
        fd = listener.fileno()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                EXEC_DAEMON,
                str(fd),
                "--socket",
                str(path),
                "--state-dir",
                str(tmp_path / "state"),
                "--log-format",
                "json",
            ],
            pass_fds=(fd,),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            assert fake_systemd.receive(timeout=30) == f"READY=1\nSTATUS=serving on {path}", log_path.read_text()
            assert answers(path)  # served by the daemon through the socket we passed
            pings = [fake_systemd.receive(timeout=5) for _ in range(3)]
            assert set(pings) == {"WATCHDOG=1"}
            proc.send_signal(signal.SIGTERM)
            messages = [fake_systemd.receive(timeout=30)]
            while messages[-1] == "WATCHDOG=1":
                messages.append(fake_systemd.receive(timeout=30))
            assert messages[-1] == "STOPPING=1"
            assert proc.wait(timeout=30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert path.exists()  # the socket file belongs to systemd: the daemon leaves it in place
