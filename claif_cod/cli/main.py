"""The ``claif-cod`` command line: ``query``, ``chat``, ``models`` and ``sessions``."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from claif_cod._cli_group import QuietGroup, stdout_closed
from claif_cod._defaults import DEFAULT_TIMEOUT
from claif_cod._entry import EXIT_INTERRUPTED
from claif_cod._seconds_param import PositiveSeconds
from claif_cod._utf8 import is_utf8
from claif_cod._version import __version__
from claif_cod.cli import history
from claif_cod.cli.exits import EXIT_CONNECTION, CliFailure, describe, exit_code
from claif_cod.cli.sessions import session_name, sessions
from claif_cod.cli.terminal import Console, TerminalApprover, is_interactive
from claif_cod.cli.turns import Interrupted, TurnResult, TurnRunner, messages_for, stream_turn
from claif_cod.transport.autostart import answers, autostart_enabled
from claif_cod.transport.select import DaemonMode, daemon_mode
from claif_cod.transport.socket_path import default_socket_path

if TYPE_CHECKING:  # the commands import these when they run: openai takes seconds to import, --version none
    import openai

    from claif_cod.client import AsyncCodexClient

F = TypeVar("F", bound=Callable[..., Any])

SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
APPROVAL_POLICIES = ("untrusted", "on-failure", "on-request", "never")


@dataclass(frozen=True)
class CodexOptions:
    """What every command that runs Codex takes from the command line."""

    model: str | None
    working_dir: Path | None
    sandbox: str | None
    approval: str | None
    timeout: float
    daemon: DaemonMode
    codex_path: str | None

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "working_dir": self.working_dir or current_dir(),
            "sandbox_mode": self.sandbox,
            "approval_policy": self.approval,
            "timeout": self.timeout,
            "daemon": self.daemon,
            "codex_path": self.codex_path,
        }


def current_dir(*, has_working_dir: bool = True) -> Path:
    """Where Codex runs by default; a current directory removed meanwhile (a deleted worktree) is a
    usage error, as a ``--working-dir`` that does not exist is. ``has_working_dir``: the command
    takes ``-C`` (``models`` does not, so it must not be offered)."""
    try:
        path = Path.cwd()
    except FileNotFoundError:
        fix = "cd to one that does, or give -C DIR" if has_working_dir else "cd to one that does"
        raise click.UsageError(f"the current directory no longer exists: {fix}") from None
    if not is_utf8(str(path)):  # (the client refuses it too; said here as the usage error it is)
        fix = "cd to another, or give -C DIR" if has_working_dir else "cd to another"
        raise click.UsageError(f"the current directory's name {NOT_UTF8_PATH}: {fix}")
    return path


NOT_UTF8_PATH = "is not UTF-8 (Codex takes only UTF-8 paths)"


def _utf8_dir(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and not is_utf8(str(value)):
        raise click.BadParameter(NOT_UTF8_PATH)
    return value


def _not_blank(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("is empty")
    return value


def _daemon_choice(_ctx: click.Context, _param: click.Parameter, value: str | None) -> DaemonMode:
    try:
        return daemon_mode(value)
    except ValueError as exc:  # a bad $CLAIF_COD_DAEMON
        raise click.BadParameter(f"{exc} (from $CLAIF_COD_DAEMON)") from None


def connection_options(command: F) -> F:
    """--daemon and --codex-path: how Codex is reached."""
    decorators = [
        click.option(
            "--daemon",
            type=click.Choice(["auto", "require", "off"]),
            default=None,
            callback=_daemon_choice,
            help="Use claif-codd: auto (when it answers, else run Codex here), require, or off. "
            "Default: $CLAIF_COD_DAEMON, else auto.",
        ),
        click.option(
            "--codex-path",
            type=str,
            default=None,
            metavar="PATH",
            help="The Codex binary (default: $CLAIF_COD_CODEX_PATH, `codex` on PATH, then the bundled one).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def codex_options(command: F) -> F:
    """Options of the commands that run turns (query, chat)."""
    decorators = [
        click.option(
            "--model",
            "-m",
            default=None,
            callback=_not_blank,
            help="Model for the turn (default: Codex's configured model).",
        ),
        click.option(
            "--working-dir",
            "-C",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=None,
            callback=_utf8_dir,
            help="Codex's working directory (default: the current directory).",
        ),
        click.option("--sandbox", type=click.Choice(SANDBOX_MODES), default=None, help="Codex sandbox mode."),
        click.option(
            "--approval",
            type=click.Choice(APPROVAL_POLICIES),
            default=None,
            help="When Codex asks before running a command (default: Codex's configuration).",
        ),
        click.option(
            "--system",
            "system",
            default=None,
            metavar="TEXT",
            help="System prompt (Codex's developer instructions); with --session, only for a new session.",
        ),
        click.option(
            "--timeout",
            type=PositiveSeconds(),
            default=DEFAULT_TIMEOUT,
            show_default=True,
            help="Seconds a turn may take; then it is interrupted (exit code 5).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return connection_options(command)


@click.group("claif-cod", cls=QuietGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="claif-cod")
def cli() -> None:
    """Ask OpenAI Codex from the terminal, through claif-codd when it runs.

    Exit codes: 0 ok, 2 usage error, 3 Codex or model error, 4 cannot reach Codex (or the
    daemon), 5 timeout, 6 output not writable, 7 no such session (sessions close), 130
    interrupted, 141 stdout closed.
    """


def _session_option(help_text: str) -> Callable[[F], F]:
    return click.option("--session", "-s", default=None, metavar="NAME", callback=session_name, help=help_text)


NOT_UTF8 = "the prompt is not UTF-8 text"


def _fail(error: openai.OpenAIError, timeout: float | None = None) -> CliFailure:
    return CliFailure(describe(error, timeout), exit_code(error))


def _read_prompt(prompt: str) -> str:
    if prompt == "-":
        try:
            prompt = sys.stdin.read()
        except UnicodeDecodeError:
            raise click.UsageError(NOT_UTF8) from None
    if not is_utf8(prompt):
        raise click.UsageError(NOT_UTF8)
    if not prompt.strip():
        raise click.UsageError("the prompt is empty")
    return prompt


def _session_note(client: AsyncCodexClient, session: str | None) -> str | None:
    backend = client.backend
    if session is None or backend is None or not backend.ran_here:
        return None
    return f"no claif-codd served this turn: session {session!r} lived only in this process"


@cli.command()
@click.argument("prompt")
@codex_options
@_session_option("Append to the named session (shared via claif-codd).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (text, usage...) when the turn ends.")
def query(
    prompt: str,
    model: str | None,
    working_dir: Path | None,
    sandbox: str | None,
    approval: str | None,
    system: str | None,
    timeout: float,
    daemon: DaemonMode,
    codex_path: str | None,
    session: str | None,
    as_json: bool,
) -> None:
    """Ask once and stream the answer; PROMPT `-` reads the prompt from stdin."""
    options = CodexOptions(model, working_dir, sandbox, approval, timeout, daemon, codex_path)
    text = _read_prompt(prompt)
    if stdout_closed():  # the answer would go nowhere: no turn for it
        sys.stdout.write("")
    console = _new_console()
    loop = asyncio.new_event_loop()
    asked_on = sys.stderr if as_json else None
    approver = TerminalApprover(console, interactive=is_interactive(asked_on), prompt_stream=asked_on)
    runner = TurnRunner(loop, approver)
    import openai

    from claif_cod.client import AsyncCodexClient

    client = AsyncCodexClient(session_id=session, approval_handler=approver, **options.client_kwargs())
    try:
        try:
            result = runner.run(
                stream_turn(
                    client,
                    messages_for(text, system),
                    model=model,
                    console=None if as_json else console,
                    progress=True,
                )
            )
        except Interrupted:
            console.note("interrupted")
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except openai.OpenAIError as error:
            console.end_line()  # the error's line after the text it cut short, not on it
            raise _fail(error, timeout) from None
        finally:
            note = _session_note(client, session)
    finally:
        with _quiet_interrupts():
            _shutdown(loop, client)
    if as_json:
        click.echo(json.dumps(_result_json(result, session)))
    else:
        _say_if_cut_short(console, result)
    if note is not None:
        console.note(note)


def _say_if_cut_short(console: Console, result: TurnResult) -> None:
    """On a line of its own after the text: a cut answer reads as a whole one (``--json`` has its
    ``finish_reason``)."""
    console.end_line()
    if result.finish_reason in ("length", "content_filter"):
        console.note(f"warning: the answer is incomplete (finish_reason {result.finish_reason})")


def _result_json(result: TurnResult, session: str | None) -> dict[str, Any]:
    return {
        "id": result.id,
        "model": result.model,
        "session": session,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "usage": result.usage.model_dump(mode="json") if result.usage is not None else None,
    }


_console: Console | None = None
"""The console of the running command, so that warnings start on a line of their own."""


def _new_console() -> Console:
    global _console
    _console = Console()
    return _console


class _quiet_interrupts:
    """Shut down without a traceback if Ctrl-C is pressed again while closing."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is KeyboardInterrupt


def _shutdown(loop: asyncio.AbstractEventLoop, client: AsyncCodexClient) -> None:
    try:
        loop.run_until_complete(client.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def new_session_name() -> str:
    return f"chat-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


CHAT_HELP = "/exit or Ctrl-D quits; Ctrl-C interrupts a running turn; /help shows this."


@cli.command()
@codex_options
@_session_option("Session to join or create (default: a new name).")
def chat(
    model: str | None,
    working_dir: Path | None,
    sandbox: str | None,
    approval: str | None,
    system: str | None,
    timeout: float,
    daemon: DaemonMode,
    codex_path: str | None,
    session: str | None,
) -> None:
    """Talk with Codex turn by turn on a named session."""
    options = CodexOptions(model, working_dir, sandbox, approval, timeout, daemon, codex_path)
    name = session or new_session_name()
    where = _where(daemon)
    interactive = is_interactive()
    console = _new_console()
    loop = asyncio.new_event_loop()
    approver = TerminalApprover(console, interactive=interactive)
    runner = TurnRunner(loop, approver)
    import openai

    from claif_cod.client import AsyncCodexClient

    client = AsyncCodexClient(session_id=name, approval_handler=approver, **options.client_kwargs())
    saved = history.start() if interactive else None
    click.echo(f"claif-cod chat: session {name} ({where})")
    shared = where.startswith("shared")
    click.echo(CHAT_HELP)
    try:
        while True:
            try:
                line: str | None = input("you> ")
            except EOFError:
                console.end_line()
                click.echo()
                break
            except KeyboardInterrupt:
                click.echo("^C")
                continue
            except UnicodeDecodeError:  # (a UTF-8 locale; others hold such bytes as surrogates)
                line = None
            if line is None or not is_utf8(line):
                console.note(f"{NOT_UTF8}; not sent")
                continue
            command = line.strip()
            if not command:
                continue
            if command in ("/exit", "/quit"):
                break
            if command == "/help":
                click.echo(CHAT_HELP)
                continue
            try:
                result = runner.run(stream_turn(client, messages_for(line, system), model=model, console=console))
                _say_if_cut_short(console, result)
            except Interrupted:
                console.note("turn interrupted")
            except openai.OpenAIError as error:
                console.note(f"error: {describe(error, timeout)}")
            console.end_line()
            if shared and _session_note(client, name) is not None:  # the daemon died, or did not start
                shared = False
                if client.backend is not None:  # (it is: a turn ran) the session's turns are this process's now
                    client.backend.stay_here()
                console.note(f"no claif-codd served this turn: session {name!r} goes on in this process only")
    finally:
        if saved is not None:
            saved.save()
        with _quiet_interrupts():
            _shutdown(loop, client)


def _where(mode: DaemonMode) -> str:
    """Where the chat's session lives, said up front; ``--daemon require`` with no daemon fails here."""
    if mode == "off":
        return "in this process only: --daemon off"
    path = default_socket_path()
    if answers(path):
        return f"shared through claif-codd at {path}"
    if autostart_enabled():
        return "shared through claif-codd, started on the first turn"
    if mode == "require":
        raise CliFailure(
            f"no claif-codd answers at {path} (--daemon require); start it with `claif-codd start`", EXIT_CONNECTION
        )
    return "in this process only: no claif-codd is running"


@cli.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the OpenAI model objects as a JSON list.")
def models(daemon: DaemonMode, codex_path: str | None, as_json: bool) -> None:
    """List the models Codex offers."""
    import openai

    from claif_cod.client import CodexClient

    try:
        with CodexClient(
            daemon=daemon, codex_path=codex_path, working_dir=current_dir(has_working_dir=False)
        ) as client:
            listing = list(client.models.list())
    except openai.OpenAIError as error:
        raise _fail(error) from None
    if as_json:
        click.echo(json.dumps([m.model_dump(mode="json") for m in listing], indent=2))
    else:
        for m in listing:
            click.echo(m.id)


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Warnings (say, a retired ``--approval`` value mapped to another) as one line, without source code."""
    (_console or Console()).note(f"warning: {message}")


cli.add_command(sessions)


def main() -> None:
    """Entry point of the ``claif-cod`` script."""
    warnings.showwarning = _show_warning
    cli(prog_name="claif-cod")
