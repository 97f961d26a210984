"""``claif-cod`` as a user runs it: a subprocess (pipes or a pseudo-terminal), the real Codex, the offline model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from chat_messages import patch_prompt
from cli_harness import CLI, PtyProcess, run_cli
from click.testing import CliRunner
from daemon_process import DaemonProcess

from claif_cod import __version__
from claif_cod._cli_group import EXIT_BROKEN_PIPE, EXIT_OUTPUT
from claif_cod._entry import EXIT_INTERRUPTED
from claif_cod.cli import cli
from claif_cod.cli.exits import EXIT_CONNECTION, EXIT_MODEL, EXIT_NO_SESSION, EXIT_TIMEOUT, EXIT_USAGE
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex

SANDBOX = "workspace-write"
"""Lets an approved ``touch`` write to the working directory (Codex's default here is read-only)."""


# --- query -------------------------------------------------------------------------------------


def test_query_prints_the_answer_and_system_reaches_the_model_as_developer_instructions(
    env: dict[str, str], workdir: Path, codex_model_server: ModelServer
) -> None:
    result = run_cli("query", "--system", "Answer like a pirate.", "hello there", env=env, cwd=workdir)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: hello there\n", "")
    [request] = codex_model_server.requests
    assert request.user_texts() == ["hello there"]
    assert "Answer like a pirate." in request.developer_texts()


def test_query_streams_chunks_as_they_arrive_and_ctrl_c_exits_130(env: dict[str, str], workdir: Path) -> None:
    # The model sends two deltas, then hangs: they can only be on the terminal if each chunk is flushed.
    proc = subprocess.Popen(
        [*CLI, "query", "[[stall-mid]] one two three"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=workdir,
    )
    try:
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"Echo: one" not in seen:
            assert time.monotonic() < deadline, seen
            seen += os.read(proc.stdout.fileno(), 1024)
        assert proc.poll() is None  # the turn has not ended: the text came while it streamed
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()
    assert b"interrupted" in err


def test_query_json_reads_the_prompt_from_stdin(
    env: dict[str, str], workdir: Path, codex_model_server: ModelServer
) -> None:
    result = run_cli(
        "query", "--json", "--model", "o4", "--approval", "on-failure", "-", stdin="from stdin\n", env=env, cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    # A retired approval value is mapped, and the warning is one line on stderr: stdout stays JSON.
    assert "claif-cod: warning: approval_policy='on-failure' is not accepted" in result.stderr
    assert "using 'on-request' instead" in result.stderr
    output = json.loads(result.stdout)
    assert output["text"] == "Echo: from stdin"
    assert output["model"] == "o4"
    assert output["finish_reason"] == "stop"
    assert output["session"] is None
    assert output["id"].startswith("chatcmpl-")
    assert output["usage"]["completion_tokens"] == 3
    assert output["usage"]["total_tokens"] == output["usage"]["prompt_tokens"] + 3
    assert codex_model_server.requests[0].body["model"] == "o4"


def test_query_session_without_a_daemon_says_it_lived_in_this_process(env: dict[str, str], workdir: Path) -> None:
    result = run_cli("query", "--session", "solo", "hi", env=env, cwd=workdir)
    assert result.returncode == 0
    assert result.stdout == "Echo: hi\n"
    assert "session 'solo' lived only in this process" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["[[status:401]] who am I"], EXIT_MODEL, "AuthenticationError (401)"),
        (["--codex-path", "/nonexistent/codex", "hi"], EXIT_CONNECTION, "Codex CLI binary not found"),
        (["--timeout", "1", "[[stall]] hang"], EXIT_TIMEOUT, "deadline of 1 s (--timeout); any turn it had started"),
        (["--daemon", "require", "hi"], EXIT_CONNECTION, "no claif-codd answers"),
        (["--sandbox", "sideways", "hi"], EXIT_USAGE, "Invalid value for '--sandbox'"),
        (["--timeout", "nan", "hi"], EXIT_USAGE, "nan is not a number of seconds"),
        (["--session", "", "hi"], EXIT_USAGE, "needs 1 to 256 printable characters, not all spaces"),
        (["--session", "two\nlines", "hi"], EXIT_USAGE, "needs 1 to 256 printable characters, not all spaces"),
        ([], EXIT_USAGE, "Missing argument 'PROMPT'"),
    ],
    ids=[
        "401",
        "missing-binary",
        "timeout",
        "no-daemon-required",
        "bad-option",
        "nan-timeout",
        "empty-session",
        "session-with-a-newline",
        "no-prompt",
    ],
)
def test_query_exit_codes(env: dict[str, str], workdir: Path, args: list[str], code: int, message: str) -> None:
    result = run_cli("query", *args, env=env, cwd=workdir)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_a_reader_that_leaves_ends_the_query_quietly_with_141(env: dict[str, str], workdir: Path) -> None:
    """``| head`` ended it with click's exit status 1, which the docs give to a traceback."""
    with subprocess.Popen(
        [*CLI, "query", "[[long:20000]] go"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=workdir
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(5) == b"w1 w2"
        proc.stdout.close()
        assert proc.wait(timeout=60) == EXIT_BROKEN_PIPE
        assert proc.stderr.read() == b""


@pytest.mark.parametrize("args", [["query", "[[long:200]] go"], ["--help"]])
def test_output_that_cannot_be_written_is_one_line_and_exit_6(
    env: dict[str, str], workdir: Path, args: list[str]
) -> None:
    """``> /dev/full`` was a traceback (exit 1), ``--help`` as much as a turn's answer."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([*CLI, *args], stdout=full, stderr=subprocess.PIPE, env=env, cwd=workdir, timeout=120)
    assert result.returncode == EXIT_OUTPUT
    assert result.stderr == b"claif-cod: error: cannot write its output: No space left on device\n"


def test_timeout_is_the_deadline_of_the_whole_streamed_turn(env: dict[str, str], workdir: Path) -> None:
    """The client's timeout bounds only the wait for each of a stream's events; --timeout bounds the turn."""
    result = run_cli("query", "--timeout", "1.5", "[[long:10]] [[slow:300]] count", env=env, cwd=workdir)
    assert result.returncode == EXIT_TIMEOUT, result.stderr
    assert "deadline of 1.5 s" in result.stderr
    assert result.stdout.startswith("w1 w2") and "w10" not in result.stdout  # streamed until the deadline
    assert result.stdout.endswith("\n")  # the line it cut short is ended: the error's line is its own


def test_empty_prompt_from_stdin_is_a_usage_error(env: dict[str, str], workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["query", "-"], input="  \n")
    assert result.exit_code == EXIT_USAGE
    assert "the prompt is empty" in result.output


def test_approvals_without_a_terminal_are_declined_and_said_on_stderr(env: dict[str, str], workdir: Path) -> None:
    result = run_cli("query", "--approval", "untrusted", "[[tool:touch made.txt]] go", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "declined command" in result.stderr and "touch made.txt" in result.stderr
    assert "no terminal to ask on" in result.stderr
    assert result.stdout.startswith("Tool said:")
    assert not (workdir / "made.txt").exists()


@pytest.mark.parametrize(("answer", "created"), [("n", False), ("y", True)])
def test_approvals_are_asked_on_the_terminal(env: dict[str, str], workdir: Path, answer: str, created: bool) -> None:
    term = PtyProcess(
        "query", "--approval", "untrusted", "--sandbox", SANDBOX, "[[tool:touch made.txt]] go", env=env, cwd=workdir
    )
    try:
        term.expect("Codex asks for approval")
        term.expect(r"command: .*touch made\.txt")
        term.expect(f"cwd: +{workdir}")
        term.expect(r"Allow\? \[y\]es / \[a\]lways this session / \[n\]o / \[c\]ancel turn: ")
        term.send("what?\n")  # not an answer: asked again
        term.expect(r"Allow\?")
        term.send(f"{answer}\n")
        term.expect("-> allowed once" if created else "-> declined")
        term.expect("\nTool said:")
        assert term.wait() == 0
    finally:
        term.close()
    assert (workdir / "made.txt").exists() == created, term.output


def test_cancel_at_a_question_ends_the_query_as_interrupted(env: dict[str, str], workdir: Path) -> None:
    """It exited 0 with an empty answer (``finish_reason: "stop"``): a script could not tell a turn
    the user cancelled from an empty answer. Now as Ctrl-C at the same question: exit status 130."""
    term = PtyProcess(
        "query", "--approval", "untrusted", "--sandbox", SANDBOX, "--json", "[[tool:touch made.txt]] go",
        env=env, cwd=workdir,
    )  # fmt: skip
    try:
        term.expect(r"Allow\? \[y\]es")
        term.send("c\n")
        term.expect("-> declined; cancelling the turn")
        term.expect("claif-cod: interrupted")
        assert term.wait() == EXIT_INTERRUPTED
        assert '"finish_reason"' not in term.output
    finally:
        term.close()
    assert not (workdir / "made.txt").exists()


def test_a_file_change_is_asked_with_its_files_and_diff(env: dict[str, str], workdir: Path) -> None:
    prompt = patch_prompt("*** Add File: notes.txt", "+first line")
    term = PtyProcess("query", "--approval", "untrusted", "--sandbox", SANDBOX, prompt, env=env, cwd=workdir)
    try:
        term.expect("Codex asks for approval")
        term.expect(f"add: {workdir}/notes.txt\r?\n    first line")
        term.expect(r"Allow\? ")
        term.send("y\n")
        term.expect("-> allowed once")
        assert term.wait() == 0
    finally:
        term.close()
    assert (workdir / "notes.txt").read_text() == "first line\n"


def test_ctrl_c_while_asked_cancels_the_turn_and_the_next_one_asks_again(env: dict[str, str], workdir: Path) -> None:
    """Ctrl-C while a question waits for its answer interrupts only that turn: nothing runs, and the
    next turn's question is asked and answered as usual."""
    term = PtyProcess(
        "chat", "--session", "asked", "--approval", "untrusted", "--sandbox", SANDBOX, env=env, cwd=workdir
    )
    try:
        term.expect("you> ")
        term.send("[[tool:touch first.txt]] go\n")
        term.expect(r"Allow\? \[y\]es")
        term.send("\x03")
        term.expect("turn interrupted\n")
        term.expect("you> ")
        term.send("[[tool:touch second.txt]] go\n")
        term.expect(r"Allow\? \[y\]es")
        term.send("y\n")
        term.expect("-> allowed once")
        term.expect("you> ")
        term.send("/exit\n")
        assert term.wait() == 0
    finally:
        term.close()
    assert not (workdir / "first.txt").exists(), term.output
    assert (workdir / "second.txt").exists(), term.output


# --- chat --------------------------------------------------------------------------------------


def test_chat_turns_share_a_session_and_ctrl_c_interrupts_only_the_turn(
    env: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    term = PtyProcess("chat", "--session", "pair", env=env, cwd=workdir)
    try:
        term.expect(r"session pair \(in this process only: no claif-codd is running\)")
        term.expect("you> ")
        term.send("first\n")
        term.expect("\nEcho: first\n")
        term.expect("you> ")
        term.send("second\n")
        term.expect(r"\n\[turn 2\] Echo: second\n")  # the model saw the first turn: same Codex thread
        term.expect("you> ")
        term.send("[[slow:300]] [[long:50]]\n")
        term.expect("w2 ")  # streaming, far from the end of the turn
        term.send("\x03")
        term.expect("turn interrupted\n")
        term.expect("you> ")
        assert term.proc.poll() is None
        term.send("typed then abandoned")
        term.expect("abandoned")  # echoed: readline has the text (a ^C sent with it could flush it unread)
        term.wait_until_waiting_for_a_key()
        term.send("\x03")  # Ctrl-C at the prompt only drops the line
        term.expect(r"\^C\nyou> ")
        term.send("after\n")
        term.expect(r"\n\[turn \d\] Echo: after\n")
        term.expect("you> ")
        term.send("/exit\n")
        assert term.wait() == 0
    finally:
        term.close()
    history = (tmp_path / "state" / "claif-cod" / "chat_history").read_text()
    assert "first" in history and "after" in history
    assert "typed then abandoned" not in history


def _chat_daemon(env: dict[str, str], tmp_path: Path) -> DaemonProcess:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    daemon_env = {**env, "CLAIF_COD_SOCKET": str(run_dir / "codd.sock")}
    return DaemonProcess(
        socket=run_dir / "codd.sock", state_dir=tmp_path / "daemon-state", log=tmp_path / "codd.log", env=daemon_env
    )


def test_chat_says_when_its_session_no_longer_goes_through_the_daemon(
    env: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    """Its header said the session was shared; once the daemon died, the next turn ran in this process
    on a session without the earlier turns, and nothing said so."""
    daemon = _chat_daemon(env, tmp_path)
    daemon.start()
    term = PtyProcess("chat", "--session", "kept", env=daemon.env, cwd=workdir)
    try:
        term.expect("shared through claif-codd")
        term.expect("you> ")
        term.send("one\n")
        term.expect("\nEcho: one\n")
        term.expect("you> ")
        daemon.kill9()
        term.send("two\n")
        term.expect("Echo: two\n")
        term.expect("no claif-codd served this turn: session 'kept' goes on in this process only")
        term.expect("you> ")
        term.send("/exit\n")
        assert term.wait() == 0
    finally:
        term.close()


def test_chat_whose_session_went_on_in_this_process_stays_there_when_the_daemon_returns(
    env: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    """The note says the session goes on in this process only; once a daemon answered again, the next
    turn went back to the daemon's copy of the session, without the turns run here, and nothing said so."""
    daemon = _chat_daemon(env, tmp_path)
    daemon.start()
    term = PtyProcess("chat", "--session", "kept", env=daemon.env, cwd=workdir)
    try:
        term.expect("shared through claif-codd")
        for line, answer in (("one", r"\nEcho: one\n"), ("two", r"\n\[turn 2\] Echo: two\n")):
            term.expect("you> ")
            term.send(f"{line}\n")
            term.expect(answer)
        term.expect("you> ")
        daemon.kill9()
        term.send("three\n")
        term.expect("\nEcho: three\n")  # in this process, on a session without the daemon's two turns
        term.expect("no claif-codd served this turn: session 'kept' goes on in this process only")
        term.expect("you> ")
        daemon.start()  # the daemon's session has two turns: a turn there would be its third
        term.send("four\n")
        turn = term.expect(r"\n\[turn (\d)\] Echo: four\n").group(1)
        assert turn == "2"  # this process's session: three, four; the daemon's would make it turn 3
        term.expect("you> ")
        term.send("/exit\n")
        assert term.wait() == 0
        assert "kept  turns 2 " in run_cli("sessions", env=daemon.env, cwd=workdir).stdout  # one, two
    finally:
        term.close()
        daemon.stop()


def test_chat_on_daemon_require_does_not_say_it_goes_on_in_this_process(
    env: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    """With ``--daemon require`` a turn the dead daemon could not serve fails: the session does not go on
    here, and the next daemon continues it. The chat said it went on in this process only."""
    daemon = _chat_daemon(env, tmp_path)
    daemon.start()
    shown = ""
    term = PtyProcess("chat", "--daemon", "require", "--session", "kept", env=daemon.env, cwd=workdir)
    try:
        term.expect("shared through claif-codd")
        term.expect("you> ")
        term.send("one\n")
        term.expect("\nEcho: one\n")
        term.expect("you> ")
        daemon.kill9()
        term.send("two\n")
        term.expect("claif-cod: error: cannot reach Codex: no claif-codd answers")
        term.expect("you> ")
        daemon.start()
        term.send("three\n")
        term.expect(r"\n\[turn 2\] Echo: three\n")  # the daemon's session went on
        term.expect("you> ")
        term.send("/exit\n")
        assert term.wait() == 0
        shown = term.output
    finally:
        term.close()
        daemon.stop()
    assert "this process" not in shown


def test_chat_without_a_session_makes_a_name_and_ctrl_d_quits(env: dict[str, str], workdir: Path) -> None:
    term = PtyProcess("chat", env=env, cwd=workdir)
    try:
        term.expect(r"session chat-\d{8}-\d{6}-[0-9a-f]{6} ")
        term.expect("you> ")
        term.send("\x04")
        assert term.wait() == 0
    finally:
        term.close()


def test_chat_reads_piped_lines_and_reports_turn_errors_without_exiting(env: dict[str, str], workdir: Path) -> None:
    result = run_cli("chat", stdin="one\n[[status:401]] bad\ntwo\n", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Echo: one" in result.stdout
    assert "error: AuthenticationError (401)" in result.stderr
    assert "Echo: two" in result.stdout


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_a_prompt_that_is_not_utf8_is_said_so_not_a_traceback(env: dict[str, str], workdir: Path, locale: str) -> None:
    """It ended in a traceback (``UnicodeEncodeError`` when the request was encoded), exit 1; in chat it
    ended the session. Python holds such bytes as surrogates in the C locale, and fails to decode
    them from stdin in a UTF-8 one."""
    env = {**env, "LC_ALL": locale}
    for args, stdin in (([b"query", b"caf\xe9"], b""), ([b"query", b"-"], b"caf\xe9\n")):
        result = subprocess.run([*CLI, *args], input=stdin, capture_output=True, env=env, cwd=workdir, timeout=60)
        assert result.returncode == EXIT_USAGE, result.stderr
        assert b"the prompt is not UTF-8 text" in result.stderr and b"Traceback" not in result.stderr
    chat = subprocess.run(
        [*CLI, "chat"], input=b"caf\xe9\nstill here\n", capture_output=True, env=env, cwd=workdir, timeout=60
    )
    assert chat.returncode == 0, chat.stderr
    assert b"the prompt is not UTF-8 text; not sent" in chat.stderr and b"Echo: still here" in chat.stdout


def test_chat_requiring_a_missing_daemon_fails_at_once(env: dict[str, str], workdir: Path) -> None:
    result = run_cli("chat", "--daemon", "require", env=env, cwd=workdir)
    assert result.returncode == EXIT_CONNECTION
    assert "no claif-codd answers" in result.stderr


# --- models, sessions, version -----------------------------------------------------------------


def test_models(env: dict[str, str], workdir: Path) -> None:
    listing = run_cli("models", "--json", env=env, cwd=workdir)
    assert listing.returncode == 0, listing.stderr
    assert [m["id"] for m in json.loads(listing.stdout)] == ["o4-mini", "o4", "gpt-test-large"]
    assert run_cli("models", env=env, cwd=workdir).stdout == "o4-mini\no4\ngpt-test-large\n"


def test_sessions_are_shared_by_processes_through_the_daemon(cli_daemon: dict[str, str], workdir: Path) -> None:
    first = run_cli("query", "--session", "review", "--daemon", "require", "hello", env=cli_daemon, cwd=workdir)
    assert (first.returncode, first.stdout, first.stderr) == (0, "Echo: hello\n", "")
    second = run_cli("query", "--session", "review", "--json", "again", env=cli_daemon, cwd=workdir)
    assert json.loads(second.stdout)["text"] == "[turn 2] Echo: again"
    chat = run_cli("chat", "--session", "review", stdin="third\n", env=cli_daemon, cwd=workdir)
    assert chat.returncode == 0, chat.stderr
    assert "session review (shared through claif-codd at " in chat.stdout
    assert "[turn 3] Echo: third" in chat.stdout
    listing = run_cli("sessions", "--json", env=cli_daemon, cwd=workdir)
    assert listing.returncode == 0, listing.stderr
    [session] = json.loads(listing.stdout)
    assert session["session_id"] == "review"
    assert session["turns"] == 3
    assert session["working_dir"] == str(workdir)
    assert session["busy"] is False
    text = run_cli("sessions", env=cli_daemon, cwd=workdir).stdout
    assert text.startswith("review  turns 3  last ")


def test_sessions_close_forgets_a_session_and_names_the_ones_it_did_not_have(
    cli_daemon: dict[str, str], workdir: Path
) -> None:
    for name in ("review", "triage"):
        assert run_cli("query", "--session", name, "hello", env=cli_daemon, cwd=workdir).returncode == 0
    closed = run_cli("sessions", "close", "review", env=cli_daemon, cwd=workdir)
    assert (closed.returncode, closed.stdout, closed.stderr) == (0, "", "")
    listing = run_cli("sessions", "--json", env=cli_daemon, cwd=workdir)
    assert [s["session_id"] for s in json.loads(listing.stdout)] == ["triage"]
    again = run_cli("query", "--session", "review", "again", env=cli_daemon, cwd=workdir)
    assert again.stdout == "Echo: again\n"  # a new conversation: no "[turn 2]"
    partly = run_cli("sessions", "close", "nobody", "triage", env=cli_daemon, cwd=workdir)
    assert partly.returncode == EXIT_NO_SESSION
    assert partly.stderr == "claif-cod: error: no session named 'nobody'\n"
    listing = run_cli("sessions", env=cli_daemon, cwd=workdir)
    assert listing.stdout.startswith("review  turns 1  last ")  # triage closed despite 'nobody'
    blank = run_cli("sessions", "close", " ", env=cli_daemon, cwd=workdir)
    assert blank.returncode == EXIT_USAGE
    assert "Invalid value for 'NAME...': a session name needs 1 to 256 printable characters" in blank.stderr


def test_one_name_in_two_codex_homes_is_listed_with_each_home(
    cli_daemon: dict[str, str], workdir: Path, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    other_home = write_codex_home(tmp_path / "other-home", codex_model_server.url)
    for home in (cli_daemon["CODEX_HOME"], str(other_home)):
        done = run_cli("query", "--session", "dup", "hi", env={**cli_daemon, "CODEX_HOME": home}, cwd=workdir)
        assert done.returncode == 0, done.stderr
    run_cli("query", "--session", "solo", "hi", env=cli_daemon, cwd=workdir)
    listing = json.loads(run_cli("sessions", "--json", env=cli_daemon, cwd=workdir).stdout)
    homes = sorted(s["codex_home"] for s in listing if s["session_id"] == "dup")
    assert homes == sorted([cli_daemon["CODEX_HOME"], str(other_home)])
    lines = run_cli("sessions", env=cli_daemon, cwd=workdir).stdout.splitlines()
    assert sorted(line.rsplit("  (CODEX_HOME ", 1)[1] for line in lines if line.startswith("dup ")) == sorted(
        [f"{cli_daemon['CODEX_HOME']})", f"{other_home})"]
    )
    [solo] = [line for line in lines if line.startswith("solo ")]
    assert solo.endswith(f"  {workdir}")  # one home: the line as before


def test_sessions_without_a_daemon_is_a_connection_error(env: dict[str, str], workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["sessions", "--json"])
    assert result.exit_code == EXIT_CONNECTION
    assert f"no claif-codd answers at {os.environ['CLAIF_COD_SOCKET']}: " in result.output  # (the kit's socket)
    assert "claif-codd start" in result.output


def test_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).output == f"claif-cod, version {__version__}\n"
    help_text = runner.invoke(cli, ["--help"]).output
    for command in ("query", "chat", "models", "sessions"):
        assert command in help_text
    assert runner.invoke(cli, ["bogus"]).exit_code == EXIT_USAGE
    from claif_codd.cli import main as daemon_cli

    # the daemon's CLI takes the same short options (it refused -h)
    assert runner.invoke(daemon_cli, ["-V"]).output == f"claif-codd, version {__version__}\n"
    assert runner.invoke(daemon_cli, ["-h"]).output == runner.invoke(daemon_cli, ["--help"]).output


def test_shell_completion_script_and_choices(tmp_path: Path) -> None:
    env = {**os.environ, "_CLAIF_COD_COMPLETE": "bash_source"}
    script = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=60)
    assert "complete -o nosort -F _claif_cod_completion claif-cod" in script.stdout
    env = {
        **os.environ,
        "_CLAIF_COD_COMPLETE": "bash_complete",
        "COMP_WORDS": "claif-cod query --sandbox ",
        "COMP_CWORD": "3",
    }
    choices = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=60)
    assert choices.stdout.split() == ["plain,read-only", "plain,workspace-write", "plain,danger-full-access"]


def test_bad_daemon_mode_in_the_environment_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIF_COD_DAEMON", "sometimes")
    result = CliRunner().invoke(cli, ["query", "hi"])
    assert result.exit_code == EXIT_USAGE
    assert "CLAIF_COD_DAEMON" in result.output
