"""``CLAIF_COD_AUTOSTART=1``: however many clients race to start it, exactly one daemon runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_until

from claif_cod.testing import ModelServer, write_codex_home
from claif_cod.transport import autostart
from claif_cod.transport.autostart import DaemonStartFailed

pytestmark = [pytest.mark.codex, pytest.mark.timeout(180)]

CLIENTS = 20

CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from claif_cod import CodexClient

    with CodexClient() as client:  # daemon mode "auto": CLAIF_COD_DAEMON is unset
        response = client.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": sys.argv[1]}]
        )
        backend = client.backend
        daemon = backend.daemon if backend is not None else None
        print(json.dumps({
            "text": response.choices[0].message.content,
            "daemon_pid": daemon.conn.hello.daemon_pid if daemon is not None else None,
            "in_process": backend is not None and backend.local is not None,
        }))
    """
)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def running(pid: int) -> bool:
    """Alive and not a zombie (PID 1 here may be slow to reap what it inherited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def all_pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def serve_processes(socket: Path) -> list[int]:
    """Live ``claif_codd serve`` processes bound to ``socket``."""
    found = []
    for pid in all_pids():
        args = cmdline(pid)
        if "claif_codd" in args and "serve" in args and str(socket) in args and running(pid):
            found.append(pid)
    return found


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for pid in all_pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {pid for pid in pids if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def autostart_env(codex_home: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    socket = run_dir / "codd.sock"
    env = {
        **os.environ,
        "CLAIF_COD_AUTOSTART": "1",
        "CLAIF_COD_SOCKET": str(socket),
        "CLAIF_COD_STATE_DIR": str(tmp_path / "state"),  # never the user's ~/.local/state
        "CODEX_HOME": str(codex_home),
    }
    env.pop("CLAIF_COD_DAEMON", None)
    yield env
    # Whatever happened, leave no daemon (nor its Codex children) behind.
    leftovers = serve_processes(socket)
    if leftovers:
        subprocess.run(
            [sys.executable, "-m", "claif_codd", "stop", "--socket", str(socket)],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    for pid in leftovers:
        family = {pid} | descendants(pid)
        for left in wait_gone(family, 10.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(left, signal.SIGKILL)


def test_twenty_racing_clients_start_exactly_one_daemon(
    autostart_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    socket = Path(autostart_env["CLAIF_COD_SOCKET"])
    assert not socket.exists()
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT, f"client {i}"],
            env=autostart_env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(CLIENTS)
    ]
    outputs = []
    try:
        for proc in clients:
            stdout, stderr = proc.communicate(timeout=120)
            outputs.append((proc.returncode, stdout, stderr))
    finally:
        for proc in clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    failures = [(i, code, err[-2000:]) for i, (code, _, err) in enumerate(outputs) if code != 0]
    assert failures == [], failures
    results = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in outputs]
    assert [r["text"] for r in results] == [f"Echo: client {i}" for i in range(CLIENTS)]
    assert [r["in_process"] for r in results] == [False] * CLIENTS  # nobody fell back to a local engine
    pids = {r["daemon_pid"] for r in results}
    assert len(pids) == 1 and None not in pids, results
    [daemon_pid] = pids
    assert serve_processes(socket) == [daemon_pid]
    for name in ("codd.log", "autostart.lock"):  # private, whatever the umask
        assert stat.S_IMODE((socket.parent / name).stat().st_mode) == 0o600, name

    family = {daemon_pid} | descendants(daemon_pid)  # the daemon and its Codex processes
    assert len(family) > 1, "the daemon should have a Codex process running"
    subprocess.run(
        [sys.executable, "-m", "claif_codd", "stop", "--socket", str(socket)],
        env=autostart_env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert wait_gone(family, 10.0) == set()
    assert serve_processes(socket) == []
    assert not socket.exists()


FAILED_START_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import openai
    from claif_cod import CodexClient

    with CodexClient() as client:  # the mode from CLAIF_COD_DAEMON
        try:
            for text in ("first", sys.argv[1]):  # two requests: the second must not try a start again
                response = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": text}])
        except openai.APIConnectionError as exc:
            print(json.dumps({"error": exc.message}))
        else:
            backend = client.backend
            print(json.dumps({
                "text": response.choices[0].message.content,
                "in_process": backend is not None and backend.local is not None,
                "daemon": backend is not None and backend.daemon is not None,
            }))
    """
)


@pytest.mark.parametrize("mode", ["auto", "require"])
def test_a_daemon_that_cannot_start_leaves_auto_in_process_and_require_a_connection_error(
    mode: str, autostart_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    """The daemon exits at start (its state directory is a file: exit 78): an ``auto`` client notices
    the exit (no wait for the start's timeout) and answers in-process, trying no second start; a
    ``require`` client raises openai's ``APIConnectionError`` naming the failure and the daemon's log."""
    state = tmp_path / "state-is-a-file"
    state.write_text("")
    env = {**autostart_env, "CLAIF_COD_STATE_DIR": str(state), "CLAIF_COD_DAEMON": mode}
    done = subprocess.run(
        [sys.executable, "-c", FAILED_START_SCRIPT, "hello"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log = Path(autostart_env["CLAIF_COD_SOCKET"]).parent / "codd.log"
    if mode == "auto":
        assert result == {"text": "Echo: hello", "in_process": True, "daemon": False}
        assert done.stderr == ""
        assert log.read_text().count("daemon.start_failed") == 1, log.read_text()  # one start, not one per request
        assert "\x1b[" not in log.read_text()  # a log file, not a terminal: no colours
    else:
        expected = (
            "could not start claif-codd (CLAIF_COD_AUTOSTART=1): claif-codd exited at start (status 78): "
            f"state directory {state} is not a directory"
        )
        assert expected in result["error"]
        assert str(log) in result["error"]
    assert serve_processes(Path(autostart_env["CLAIF_COD_SOCKET"])) == []


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.decode(errors="replace").partition("=")[::2] for entry in raw.split(b"\0") if entry)


def test_an_autostarted_daemon_keeps_none_of_its_starters_codex_settings(
    autostart_env: dict[str, str], codex_model_server: ModelServer, workdir: Path
) -> None:
    """The first client's ``CODEX_HOME`` and ``CODEX_API_KEY`` (which it sends with its requests)
    are not the daemon's: a later client without them reaches the Codex home of its user, as it
    would in-process, not the first client's model."""
    starter = {**autostart_env, "CODEX_API_KEY": "sk-test-first-client"}

    def ask(env: dict[str, str], text: str) -> dict[str, object]:
        args = [sys.executable, "-c", CLIENT_SCRIPT, text]
        done = subprocess.run(args, env=env, cwd=workdir, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    first = ask(starter, "from the first client")
    with ModelServer() as users_model:
        write_codex_home(Path(autostart_env["HOME"]) / ".codex", users_model.url)
        later = {k: v for k, v in autostart_env.items() if k not in ("CODEX_HOME", "CODEX_API_KEY")}
        second = ask(later, "from a later client")
        assert [r.user_texts() for r in users_model.requests] == [["from a later client"]]
    assert first["daemon_pid"] == second["daemon_pid"] is not None
    assert (first["text"], second["text"]) == ("Echo: from the first client", "Echo: from a later client")
    assert [r.user_texts() for r in codex_model_server.requests] == [["from the first client"]]
    daemon = _environ(int(str(first["daemon_pid"])))
    assert {"CODEX_HOME", "CODEX_API_KEY", "CLAIF_COD_CODEX_PATH"} & daemon.keys() == set()
    assert daemon["CLAIF_COD_STATE_DIR"] == autostart_env["CLAIF_COD_STATE_DIR"]  # the rest is kept


@pytest.mark.parametrize("given_up", ["too slow", "ctrl-c once it answers"])
def test_a_daemon_its_starter_gave_up_on_is_stopped(
    given_up: str, daemon_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``claif-codd start`` (and an autostarting client) that said the daemon did not start, or was
    interrupted while it waited, left the daemon to start later, unasked, holding the socket."""
    socket = Path(daemon_env["CLAIF_COD_SOCKET"])
    daemon, log = autostart.launch(socket, [], daemon_env)
    expected: type[BaseException]
    if given_up == "too slow":
        monkeypatch.setattr(autostart, "START_TIMEOUT_S", 0.0)
        expected = DaemonStartFailed
    else:
        listening = autostart.answers

        def interrupted_once_it_answers(path: Path) -> bool:
            if listening(path):
                raise KeyboardInterrupt
            return False

        monkeypatch.setattr(autostart, "answers", interrupted_once_it_answers)
        expected = KeyboardInterrupt
    with pytest.raises(expected):
        autostart.wait_until_answering(socket, daemon, log)
    assert daemon.poll() is not None  # stopped, and reaped
    assert not socket.exists()
    monkeypatch.undo()  # a daemon starts there again: nothing of the one given up on is in its way
    again, log = autostart.launch(socket, [], daemon_env)
    autostart.wait_until_answering(socket, again, log)
    again.terminate()
    assert again.wait(30) == 0


RUNS_ON_SCRIPT = textwrap.dedent(
    """
    import sys
    from claif_cod import CodexClient

    with CodexClient() as client:  # autostarts the daemon, which outlives it
        response = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
        print(client.backend.daemon.conn.hello.daemon_pid, flush=True)
        sys.stdin.readline()  # runs on while the daemon is stopped
    """
)


def test_a_daemon_its_starter_outlives_is_reaped_and_never_warned_of(
    autostart_env: dict[str, str], codex_model_server: ModelServer, workdir: Path
) -> None:
    """The daemon an autostarting client (or ``claif-codd start``) started is meant to outlive it, but
    its ``Popen`` was dropped still running: ``ResourceWarning: subprocess N is still running`` (under
    ``python -X dev``, an "Exception ignored" traceback with ``-W error``), and a daemon that stopped
    (its idle timeout, ``claif-codd stop``) while the client ran on stayed a zombie of the client's."""
    socket = Path(autostart_env["CLAIF_COD_SOCKET"])
    client = subprocess.Popen(
        [sys.executable, "-X", "dev", "-W", "error", "-c", RUNS_ON_SCRIPT],
        env=autostart_env,
        cwd=workdir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None and client.stdin is not None
        daemon_pid = int(client.stdout.readline())
        stop = [sys.executable, "-m", "claif_codd", "stop", "--socket", str(socket)]
        subprocess.run(stop, env=autostart_env, capture_output=True, timeout=60, check=True)
        wait_until(lambda: not Path(f"/proc/{daemon_pid}").exists(), "the stopped daemon to be reaped by the client")
        _, stderr = client.communicate("\n", timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 0, stderr
    assert stderr == ""
    start = [sys.executable, "-X", "dev", "-W", "error", "-m", "claif_codd", "start", "--socket", str(socket)]
    started = subprocess.run(start, env=autostart_env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert started.stderr == ""
