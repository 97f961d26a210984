"""The Neovim plugin (``editors/nvim``) in a headless Neovim, against a real claif-codd.

The Lua codec and helpers have their own tests (``frame_test.lua``, ``unit_test.lua``), run here
under ``nvim --headless``. The end-to-end tests start a daemon like ``tests/daemon/conftest.py``
does (Codex pointed at the offline model), then run ``ask.lua``, which drives the plugin's real
user commands and writes a JSON report of what the user would have seen.

Skipped when ``nvim`` (0.7 or newer) is not installed; CI installs Debian's: ``apt-get install -y neovim``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "nvim"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "daemon"))

from daemon_process import DaemonProcess  # noqa: E402

NVIM = shutil.which("nvim")
NVIM_TIMEOUT_S = 90
ERROR, WARN, INFO = 4, 3, 2  # vim.log.levels


def _nvim_version() -> tuple[int, ...] | None:
    if NVIM is None:
        return None
    first = subprocess.run([NVIM, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    match = re.search(r"v(\d+)\.(\d+)", first)
    return (int(match.group(1)), int(match.group(2))) if match else None


NVIM_VERSION = _nvim_version()
pytestmark = pytest.mark.skipif(
    NVIM_VERSION is None or NVIM_VERSION < (0, 7),
    reason="Neovim >= 0.7 is not installed (Debian: apt-get install -y neovim)",
)

EXAMPLE = ["def add(a, b):", '    """Add two numbers."""', "    return a + b", "[[slow:20]]"]
"""example.py; the marker line makes the offline model pause 20 ms before each delta."""

USAGE_LINE = re.compile(
    r"_(?P<status>\w+) · tokens: (?P<prompt>\d+) prompt(?: \((?P<cached>\d+) cached\))?"
    r" \+ (?P<completion>\d+) completion = (?P<total>\d+) total_"
)


# --- running Neovim -----------------------------------------------------------------------------


def nvim(script: Path, *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``nvim --headless -u NONE`` with the plugin on 'runtimepath', running ``script``."""
    assert NVIM is not None
    rtp = str(PLUGIN).replace("\\", "\\\\").replace(" ", "\\ ").replace(",", "\\,")
    command = [
        NVIM,
        "--headless",
        "-u",
        "NONE",
        "-i",
        "NONE",
        "-n",
        "--cmd",
        f"set rtp+={rtp}",
        "-c",
        f"luafile {script}",
        "-c",
        "cquit 3",  # only reached if the script died before quitting
    ]
    return subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=NVIM_TIMEOUT_S
    )


def private_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment with Neovim's own state kept under ``tmp_path``."""
    env = {**os.environ, **extra}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / "xdg" / name.lower())
    return env


def run_scenario(scenario: str, *, workdir: Path, socket: Path, tmp_path: Path, **extra_env: str) -> dict[str, Any]:
    report_path = tmp_path / f"report-{scenario}.json"
    env = private_env(
        tmp_path,
        CLAIF_COD_SOCKET=str(socket),
        CLAIF_TEST_SCENARIO=scenario,
        CLAIF_TEST_OUT=str(report_path),
        **extra_env,
    )
    proc = nvim(HERE / "ask.lua", cwd=workdir, env=env)
    log = tmp_path / "codd.log"
    context = f"nvim exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    if log.exists():
        context += f"\ndaemon log (tail):\n{log.read_text()[-4000:]}"
    assert proc.returncode == 0, context
    assert report_path.exists(), context
    report: dict[str, Any] = json.loads(report_path.read_text())
    assert "script_error" not in report, f"{report['script_error']}\n{context}"
    return report


def run_lua_unit_tests(script: Path, tmp_path: Path) -> tuple[int, int]:
    proc = nvim(script, cwd=ROOT, env=private_env(tmp_path))
    summary = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert proc.returncode == 0 and summary, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return int(summary.group(1)), int(summary.group(2))


# --- expectations -------------------------------------------------------------------------------


def model_reply(user_text: str, turn: int = 1) -> str:
    """What the offline model answers to ``user_text`` (see claif_cod/testing/model_server.py)."""
    stripped = re.sub(r"\[\[(slow|long|tool|reply)(?::(.*?))?\]\]", "", user_text, flags=re.DOTALL).strip()
    prefix = f"[turn {turn}] " if turn > 1 else ""
    return f"{prefix}Echo: {stripped}"


def deltas(reply: str) -> int:
    """How many text deltas the model streams for ``reply`` (one per word)."""
    return len(re.findall(r"\s*\S+", reply))


def usage_line(usage: dict[str, int], status: str = "completed") -> str:
    cached = f" ({usage['cached_tokens']} cached)" if usage.get("cached_tokens") else ""
    return (
        f"_{status} · tokens: {usage['prompt_tokens']} prompt{cached} + {usage['completion_tokens']} completion"
        f" = {usage['total_tokens']} total_"
    )


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def daemon(codex_home: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    """A real claif-codd on a private socket, its Codex using the offline model (as tests/daemon does)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    socket = run_dir / "codd.sock"
    env = {**os.environ, "CLAIF_COD_SOCKET": str(socket), "CODEX_HOME": str(codex_home)}
    process = DaemonProcess(socket=socket, state_dir=tmp_path / "state", log=tmp_path / "codd.log", env=env)
    process.start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


@pytest.fixture
def project(workdir: Path) -> Path:
    """The work directory with example.py in it; Neovim starts here."""
    (workdir / "example.py").write_text("\n".join(EXAMPLE) + "\n")
    return Path(os.path.realpath(workdir))


# --- Lua unit tests -----------------------------------------------------------------------------


def test_frame_codec(tmp_path: Path) -> None:
    passed, failed = run_lua_unit_tests(HERE / "frame_test.lua", tmp_path)
    assert (passed, failed) == (13, 0)


def test_plugin_helpers(tmp_path: Path) -> None:
    passed, failed = run_lua_unit_tests(HERE / "unit_test.lua", tmp_path)
    assert (passed, failed) == (20, 0)


def test_hello_names_this_release() -> None:
    """The hello's package_version is the claif-cod release the plugin ships with: bumped with it."""
    from claif_cod import __version__

    rpc = (PLUGIN / "lua" / "claif_cod" / "rpc.lua").read_text()
    [version] = re.findall(r'^M\.PACKAGE_VERSION = "([^"]*)"$', rpc, re.MULTILINE)
    assert version == __version__


# --- against a real daemon ----------------------------------------------------------------------


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_ask_streams_the_answer_into_a_scratch_buffer(
    daemon: DaemonProcess, codex_model_server: Any, project: Path, tmp_path: Path
) -> None:
    report = run_scenario("ask", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    session = f"nvim-{project.name}-{hashlib.sha256(str(project).encode()).hexdigest()[:8]}"
    assert report["session"] == session
    assert report["socket"] == str(daemon.socket)
    assert report["notifications"] == [  # from the :ClaifReset at the end, nothing before
        {"message": f"claif-cod: closed session {session}", "level": INFO},
        {"message": f"claif-cod: no session {session} to close", "level": INFO},
    ]

    # What the plugin sent: the prompt, where the lines are from, the lines in a fence.
    text1 = "explain\n\nFrom `example.py`:\n```python\n" + "\n".join(EXAMPLE) + "\n```"
    text2 = "summarize\n\nFrom `example.py` (lines 2-3):\n```python\n" + "\n".join(EXAMPLE[1:3]) + "\n```"
    requests = codex_model_server.requests
    assert [r.user_texts()[-1] for r in requests] == [text1, text2]

    reply1, reply2 = model_reply(text1), model_reply(text2, turn=2)
    first, second = report["turns"]
    assert first["done"] and second["done"]
    assert (first["status"], first["text"]) == ("completed", reply1)
    assert (second["status"], second["text"]) == ("completed", reply2)
    assert first["session"] == second["session"] == session
    for turn, reply in ((first, reply1), (second, reply2)):
        usage = turn["usage"]
        assert usage["completion_tokens"] == deltas(reply)
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    # The scratch buffer: one section per turn, the streamed text exactly, usage at the end.
    assert report["buffer"] == [
        "## explain",
        "",
        *reply1.split("\n"),
        "",
        usage_line(first["usage"]),
        "",
        "## summarize",
        "",
        *reply2.split("\n"),
        "",
        usage_line(second["usage"]),
    ]
    [output] = [w for w in report["windows"] if w["name"] == f"claif://{session}"]
    assert output == {
        "name": f"claif://{session}",
        "buftype": "nofile",
        "filetype": "markdown",
        "modifiable": False,
        "current": False,  # the cursor stayed in example.py
    }

    # Incremental: while the first turn streamed, the buffer changed with every delta, over time
    # (the model paused 20 ms before each one).
    streaming = report["timeline"][: first["timeline_end"]]
    sizes = [change["bytes"] for change in streaming]
    lines = [change["lines"] for change in streaming]
    assert len(set(sizes)) >= deltas(reply1), sizes
    assert lines == sorted(lines) and len(set(lines)) > reply1.count("\n"), lines
    assert streaming[-1]["t"] - streaming[0]["t"] >= 20 * (deltas(reply1) - 1) * 0.5, streaming


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_approval_prompt_declined_leaves_no_file(daemon: DaemonProcess, project: Path, tmp_path: Path) -> None:
    report = run_scenario("approval", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    [select] = report["selects"]
    assert select["kind"] == "claif_cod.approval"
    assert select["labels"] == ["Accept", "Accept for session", "Decline", "Cancel"]
    assert select["items"] == ["accept", "acceptForSession", "decline", "cancel"]
    assert select["prompt"].startswith("Codex wants to run: ")
    assert "touch x.txt" in select["prompt"]
    assert f"in {project}" in select["prompt"]

    [turn] = report["turns"]
    assert turn["status"] == "completed", turn
    assert turn["approvals"] == [{"kind": "command", "command": turn["approvals"][0]["command"], "decision": "decline"}]
    assert "touch x.txt" in turn["approvals"][0]["command"]
    assert turn["text"].startswith("Tool said: ") and "rejected" in turn["text"]
    assert not (project / "x.txt").exists()
    assert report["notifications"] == []

    buffer = report["buffer"]
    assert buffer[:2] == ["## [[tool:touch x.txt]] make the file", ""]
    [command] = [line for line in buffer if line.startswith("$ ")]
    assert "touch x.txt" in command and command.endswith("  (declined)")
    assert buffer.index(command) < buffer.index(turn["text"].split("\n")[0])  # the command, then the answer
    assert buffer[-2:] == ["", usage_line(turn["usage"])]


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_approval_by_confirm_accepted_runs_the_command(daemon: DaemonProcess, project: Path, tmp_path: Path) -> None:
    report = run_scenario(
        "approval_confirm", workdir=project, socket=daemon.socket, tmp_path=tmp_path, CLAIF_TEST_CONFIRM="Accept"
    )

    [confirm] = report["confirms"]
    # each button its own key ("a" for both Accepts would always pick the first)
    assert confirm["choices"] == "&Accept\nAccept for &session\n&Decline\n&Cancel"
    assert confirm["msg"].startswith("Codex wants to run: ") and "touch x.txt" in confirm["msg"]
    assert report["selects"] == []
    [turn] = report["turns"]
    assert turn["status"] == "completed", turn
    assert [a["decision"] for a in turn["approvals"]] == ["accept"]
    assert (project / "x.txt").exists()
    assert report["notifications"] == []
    [command] = [line for line in report["buffer"] if line.startswith("$ ")]
    assert command.endswith("touch x.txt'") or command.endswith("touch x.txt"), command  # ran, exit 0


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_a_file_change_is_asked_with_its_files(daemon: DaemonProcess, project: Path, tmp_path: Path) -> None:
    report = run_scenario("approval_patch", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    [select] = report["selects"]
    assert select["prompt"] == f"Codex wants to change files:\n  update {project}/example.py -> {project}/renamed.py"
    [turn] = report["turns"]
    assert turn["status"] == "completed", turn
    assert turn["approvals"] == [{"kind": "file_change", "decision": "decline"}]
    assert (project / "example.py").exists() and not (project / "renamed.py").exists()


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_interrupt_stops_the_turn(daemon: DaemonProcess, project: Path, tmp_path: Path) -> None:
    report = run_scenario("interrupt", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    assert report["streaming"]
    [turn] = report["turns"]
    assert turn["status"] == "interrupted", turn
    full = " ".join(f"w{i}" for i in range(1, 301))
    assert turn["text"].startswith("w1 w2 w3") and len(turn["text"]) < len(full)
    assert full.startswith(turn["text"])
    assert report["notifications"] == [{"message": "claif-cod: turn interrupted", "level": INFO}]
    assert report["buffer"] == ["## [[long:300]] [[slow:50]] count", "", turn["text"], "", "_interrupted_"]


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_a_daemons_warning_is_notified_and_the_turn_goes_on(
    daemon: DaemonProcess, project: Path, tmp_path: Path
) -> None:
    report = run_scenario("retired_approval", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    [notification] = report["notifications"]
    assert notification["level"] == WARN
    assert notification["message"].startswith("claif-cod: approval_policy='on-failure' is not accepted by codex")
    assert notification["message"].endswith("using 'on-request' instead")
    [turn] = report["turns"]
    assert turn["status"] == "completed"


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_daemon_errors_are_notified(daemon: DaemonProcess, project: Path, tmp_path: Path) -> None:
    # setup({options = {timeout_s = "soon"}}): the daemon answers INVALID_PARAMS with the path.
    report = run_scenario("bad_params", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    [notification] = report["notifications"]
    assert notification["level"] == ERROR
    [turn] = report["turns"]
    assert turn["status"] == "error"
    assert turn["error"]["code"] == -32602
    message = turn["error"]["message"]
    assert "`str`" in message and "$.params.options.timeout_s" in message
    assert notification["message"] == f"claif-cod: {message}"
    assert report["buffer"][-1] == f"_error: {message}_"


def test_missing_daemon_is_notified(project: Path, tmp_path: Path) -> None:
    socket = tmp_path / "nowhere" / "codd.sock"
    report = run_scenario("no_daemon", workdir=project, socket=socket, tmp_path=tmp_path)

    expected = f"claif-codd is not running (no daemon on {socket}); start it with `claif-codd start`"
    assert report["notifications"] == [{"message": f"claif-cod: {expected}", "level": ERROR}]
    [turn] = report["turns"]
    assert turn["status"] == "error" and turn["elapsed_ms"] < 10_000  # at once, no hanging
    assert report["buffer"] == ["## explain", "", "", f"_error: {expected}_"]


@pytest.mark.codex
@pytest.mark.timeout(120)
def test_commands_show_on_one_line_with_their_exit_code(daemon: DaemonProcess, project: Path, tmp_path: Path) -> None:
    report = run_scenario("commands", workdir=project, socket=daemon.socket, tmp_path=tmp_path)

    assert report["notifications"] == []  # no "String cannot contain newlines"
    assert [turn["status"] for turn in report["turns"]] == ["completed", "completed"]
    commands = [line for line in report["buffer"] if line.startswith("$ ")]
    assert len(commands) == 2, report["buffer"]
    multi, failing = commands
    assert "echo alpha" in multi and multi.endswith(" …") and "echo beta" not in multi, multi
    assert "exit 3" in failing and failing.endswith("  (exit 3)"), failing  # the daemon says "failed", with the code


def test_a_socket_in_an_open_directory_is_refused(project: Path, tmp_path: Path) -> None:
    # Another user could have planted a listener in a directory open to all: the plugin sends it nothing.
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    path = open_dir / "codd.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        listener.setblocking(False)
        report = run_scenario("no_daemon", workdir=project, socket=path, tmp_path=tmp_path)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected

    expected = (
        f"refusing to connect to claif-codd at {path}: {open_dir} has mode 0777; group and others must have no"
        f" access: chmod 700 {open_dir}"
    )
    assert report["notifications"] == [{"message": f"claif-cod: {expected}", "level": ERROR}]
    assert report["buffer"] == ["## explain", "", "", f"_error: {expected}_"]


_FOREIGN_LISTENER = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])  # the file is ours (root's) and so is its directory: only the peer check can tell
os.setuid(65534)  # listen() as nobody: that is whose credentials a client sees
s.listen(1)
print("ready", flush=True)
s.settimeout(60)
conn, _ = s.accept()
received = b""
while chunk := conn.recv(65536):
    received += chunk
print(len(received), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to listen as another user")
def test_a_listener_of_another_user_is_refused(project: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    path = run_dir / "codd.sock"
    with subprocess.Popen(
        [sys.executable, "-c", _FOREIGN_LISTENER, str(path)], stdout=subprocess.PIPE, text=True
    ) as listener:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        report = run_scenario("no_daemon", workdir=project, socket=path, tmp_path=tmp_path)
        received = listener.stdout.readline().strip()
        listener.wait(30)

    assert received == "0"  # connected, then closed without a byte: no hello, no code
    expected = (
        f"refusing to connect to claif-codd at {path}: the process listening on {path} runs as uid 65534, not as"
        f" you (uid 0), so it is not your claif-codd; remove {path} or set $CLAIF_COD_SOCKET to a path in a"
        " directory you own"
    )
    assert report["notifications"] == [{"message": f"claif-cod: {expected}", "level": ERROR}]
