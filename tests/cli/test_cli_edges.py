"""``claif-cod`` where a terminal user's setup is unusual: a current directory removed under it,
standard streams closed, stdout piped while the question is asked on the terminal, an answer cut
short, an empty model."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from cli_harness import CLI, PtyProcess, run_cli

from claif_cod._cli_group import EXIT_OUTPUT
from claif_cod.cli.exits import EXIT_CONNECTION, EXIT_USAGE

pytestmark = pytest.mark.codex


def in_shell(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in sh, where ``$CLI`` runs the command line."""
    return subprocess.run(
        ["sh", "-c", script], env={**env, "CLI": shlex.join(CLI)}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ["query --daemon off hi", "models --daemon off", "chat --daemon off"])
def test_a_current_directory_removed_is_a_usage_error(env: dict[str, str], workdir: Path, command: str) -> None:
    """A deleted worktree or build directory: it was a FileNotFoundError traceback, exit 1."""
    gone = workdir / "gone"
    gone.mkdir()
    done = in_shell(f"cd {gone} && rmdir {gone} && $CLI {command} </dev/null", env, workdir)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "the current directory no longer exists" in done.stderr and "Traceback" not in done.stderr
    # the way out it offers is one the command has: `models` takes no -C
    assert ("give -C DIR" in done.stderr) == (not command.startswith("models")), done.stderr


@pytest.mark.parametrize("command", ["query --daemon off hi", "models --daemon off", "chat --daemon off"])
def test_a_current_directory_not_utf8_is_a_usage_error(env: dict[str, str], workdir: Path, command: str) -> None:
    """A directory named in Latin-1: it was a 500 "internal error" (exit 3), naming no directory."""
    latin = workdir / os.fsdecode(b"lat\xe9n")
    latin.mkdir()
    done = subprocess.run([*CLI, *command.split()], env=env, cwd=latin, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "the current directory's name is not UTF-8" in done.stderr and "Traceback" not in done.stderr
    assert ("give -C DIR" in done.stderr) == (not command.startswith("models")), done.stderr


def test_a_working_dir_not_utf8_is_a_usage_error(env: dict[str, str], workdir: Path) -> None:
    latin = workdir / os.fsdecode(b"lat\xe9n")
    latin.mkdir()
    done = subprocess.run(
        [*CLI, "query", "--daemon", "off", "-C", latin, "hi"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "'--working-dir' / '-C': is not UTF-8" in done.stderr and "Traceback" not in done.stderr


def test_closed_standard_streams(env: dict[str, str], workdir: Path) -> None:
    """``2>&-`` lost the answer (a traceback nobody could see, exit 1), ``>&-`` and ``<&-`` were tracebacks."""
    quiet = in_shell("$CLI query --daemon off hi 2>&-", env, workdir)
    assert (quiet.returncode, quiet.stdout) == (0, "Echo: hi\n")
    closed_out = in_shell("$CLI query --daemon off hi >&-", env, workdir)
    assert closed_out.returncode == EXIT_OUTPUT
    assert closed_out.stderr == "claif-cod: error: cannot write its output: standard output is closed\n"
    closed_in = in_shell("$CLI query --daemon off - <&-", env, workdir)
    assert closed_in.returncode == EXIT_USAGE and "the prompt is empty" in closed_in.stderr


@pytest.mark.parametrize("answer", ["y", "n"])
def test_query_json_piped_asks_for_approval_on_the_terminal(env: dict[str, str], workdir: Path, answer: str) -> None:
    """``claif-cod query --json ... | jq`` (docs/cli.md's own example) declined every approval:
    "no terminal to ask on", while the question goes to stderr, the terminal."""
    term = PtyProcess(
        "query", "--json", "--daemon", "off", "--approval", "untrusted", "--sandbox", "workspace-write",
        "[[tool:touch made.txt]] go", env=env, cwd=workdir, stdout_piped=True,
    )  # fmt: skip
    try:
        term.expect(r"Allow\? \[y\]es")
        term.send(f"{answer}\n")
        assert term.wait() == 0
        assert term.proc.stdout is not None
        result = json.loads(term.proc.stdout.read())
    finally:
        term.close()
    assert result["text"].startswith("Tool said:")
    assert (workdir / "made.txt").exists() == (answer == "y")


def test_an_answer_cut_short_says_so_on_stderr(env: dict[str, str], workdir: Path) -> None:
    """It read as a whole answer; only ``--json`` showed ``finish_reason: "length"``."""
    done = run_cli("query", "--daemon", "off", "x [[incomplete]]", env=env, cwd=workdir)
    assert (done.returncode, done.stdout) == (0, "Echo: x\n")
    assert done.stderr == "claif-cod: warning: the answer is incomplete (finish_reason length)\n"
    whole = run_cli("query", "--daemon", "off", "x", env=env, cwd=workdir)
    assert whole.stderr == ""


@pytest.mark.parametrize("model", ["", "  "])
def test_an_empty_model_is_a_usage_error(env: dict[str, str], workdir: Path, model: str) -> None:
    """It reached Codex: "No models are available", exit 3."""
    done = run_cli("query", "--daemon", "off", "-m", model, "hi", env=env, cwd=workdir)
    assert done.returncode == EXIT_USAGE and "Invalid value for '--model' / '-m': is empty" in done.stderr


def test_codex_dying_with_several_lines_on_stderr_is_one_error_line(
    env: dict[str, str], workdir: Path, tmp_path: Path, codex_binary: Path
) -> None:
    """The stderr Codex wrote as it died was quoted as it was: a ``claif-cod: error:`` line, then
    Codex's other lines, which a reader (or a script keeping the last line) could not place."""
    dying = tmp_path / "dying-codex"
    dying.write_text(
        f'#!/bin/sh\ncase "$1" in --version) exec {shlex.quote(str(codex_binary))} --version;; esac\n'
        "echo 'first line' >&2\necho 'second line' >&2\nexit 1\n"
    )
    dying.chmod(0o755)
    done = run_cli("query", "--daemon", "off", "--codex-path", str(dying), "hi", env=env, cwd=workdir)
    assert done.returncode == EXIT_CONNECTION, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("claif-cod: error: cannot reach Codex: ") and line.endswith("first line | second line")


@pytest.mark.parametrize("closed", [">&-", ">&- 2>&-"])
def test_sessions_close_with_stdout_closed_closes_them(cli_daemon: dict[str, str], workdir: Path, closed: str) -> None:
    """``sessions close`` writes nothing when it succeeds, yet with stdout closed it exited 6 at once
    and closed nothing; a command that writes (``models``) still fails with 6, and cleanly (it
    aborted in uvloop: its socket had taken descriptor 1)."""
    assert run_cli("query", "--session", "review", "hello", env=cli_daemon, cwd=workdir).returncode == 0
    done = in_shell(f"$CLI sessions close review {closed}", cli_daemon, workdir)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert json.loads(run_cli("sessions", "--json", env=cli_daemon, cwd=workdir).stdout) == []
    listed = in_shell("$CLI models >&-", cli_daemon, workdir)
    assert listed.returncode == EXIT_OUTPUT
    assert listed.stderr == "claif-cod: error: cannot write its output: standard output is closed\n"
