"""``claif-codd``: run, start, stop and inspect the daemon."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import msgspec
import structlog

from claif_cod._cli_group import QuietGroup
from claif_cod._log import cap_strings, get_logger
from claif_cod._seconds_param import PositiveSeconds
from claif_cod._version import __version__
from claif_cod.cli.sessions import listing_lines
from claif_cod.engine.idle import DEFAULT_THREAD_IDLE_TIMEOUT_S
from claif_cod.engine.suspensions import DEFAULT_MAX_SUSPENDED
from claif_cod.protocol import (
    DaemonShutdownRequest,
    DaemonStatus,
    DaemonStatusRequest,
    SessionsListRequest,
    SessionsListResult,
    decode_result,
)
from claif_cod.transport.autostart import DaemonStartFailed, answers, launch, wait_until_answering
from claif_cod.transport.daemon_client import DaemonConnection, DaemonHung, DaemonUnavailable
from claif_cod.transport.socket_path import UnsafeSocketDirectory, default_socket_path
from claif_codd.http.options import checked_http_settings, http_args, http_options
from claif_codd.http.settings import ENV_TOKEN, HttpSettings, http_url
from claif_codd.instance import Holder, StateInUse, holder
from claif_codd.systemd_units import UNIT_FILES, unit_texts

ENV_STATE_DIR = "CLAIF_COD_STATE_DIR"


def default_state_dir() -> Path:
    explicit = os.environ.get(ENV_STATE_DIR)
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "claif-cod"


def configure_logging(fmt: str, level: str) -> None:
    """structlog output for the daemon process: JSON lines (for journald) or console."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())  # a log file gets no escape codes
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.ExtraAdder(),  # our loggers pass their key-values as `extra`
                cap_strings,  # ours are capped already; other libraries' messages may hold a client's strings
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso"),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


IDLE_TIMEOUT = PositiveSeconds()
IDLE_TIMEOUT_HELP = "Exit after this many seconds with no clients and no work (a positive number); default: never."

socket_option = click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help=(
        "Socket path (default: $CLAIF_COD_SOCKET, else $XDG_RUNTIME_DIR/claif-cod/codd.sock when that "
        "directory exists, else $XDG_CACHE_HOME/claif-cod/codd.sock)."
    ),
)


class CliFailure(click.ClickException):
    """Shown as ``claif-codd: error: ...``, the style of ``claif-cod`` (click's own is ``Error: ...``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar, and reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"claif-codd: error: {self.format_message()}", err=True)


@click.group("claif-codd", cls=QuietGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="claif-codd")
def main() -> None:
    """The claif_cod daemon: warm Codex processes and shared sessions behind a private Unix socket."""


@main.command()
@socket_option
@click.option("--idle-timeout", type=IDLE_TIMEOUT, default=None, help=IDLE_TIMEOUT_HELP)
@click.option("--log-format", type=click.Choice(["json", "console"]), default="console", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option("--state-dir", type=click.Path(path_type=Path), default=None, help="Where the session registry lives.")
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Connections beyond this get a retryable OVERLOADED error and are closed.",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Requests in flight per connection; more get a retryable OVERLOADED error.",
)
@click.option(
    "--max-turns",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Turn-starting requests in flight in the whole daemon; more get OVERLOADED.",
)
@click.option(
    "--max-outbound-bytes",
    type=click.IntRange(min=1),
    default=64 * 2**20,
    show_default=True,
    help="Unread backlog after which a client that stopped reading is disconnected.",
)
@click.option(
    "--max-processes",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Warm Codex processes kept; beyond it the least recently used idle one is closed.",
)
@click.option(
    "--max-suspended-turns",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SUSPENDED,
    show_default=True,
    help="Turns waiting for their caller's tool results kept at once; beyond it the oldest is given up.",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="On SIGTERM or stop, seconds running requests get to finish before they are interrupted.",
)
@click.option(
    "--thread-idle-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_THREAD_IDLE_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Unload a Codex thread unused this long (sessions resume, conversations are re-seeded); 0: never.",
)
@http_options
def serve(
    socket_path: Path | None,
    idle_timeout: float | None,
    log_format: str,
    log_level: str,
    state_dir: Path | None,
    max_connections: int,
    max_inflight: int,
    max_turns: int,
    max_outbound_bytes: int,
    max_processes: int,
    max_suspended_turns: int,
    drain_timeout: float,
    thread_idle_timeout: float,
    http: str | None,
    http_token_file: Path | None,
    http_working_dir: Path | None,
    http_strict: bool,
) -> None:
    """Run in the foreground (what systemd and `start` run)."""
    from claif_codd.config import DaemonConfig
    from claif_codd.run import StartFailed, run

    http_settings = checked_http_settings(http, http_token_file, http_working_dir, http_strict)
    os.environ.pop(ENV_TOKEN, None)  # the endpoint's alone: Codex, and every command its model runs, inherit the rest
    configure_logging(log_format, log_level)
    config = DaemonConfig(
        socket_path=socket_path or default_socket_path(),
        state_dir=state_dir or default_state_dir(),
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_inflight_per_connection=max_inflight,
        max_turns_in_flight=max_turns,
        max_outbound_bytes=max_outbound_bytes,
        max_processes=max_processes,
        max_suspended_turns=max_suspended_turns,
        drain_timeout=drain_timeout,
        thread_idle_timeout=thread_idle_timeout or None,
        http=http_settings,
    )
    try:
        run(config)
    except StartFailed as exc:  # said once: as a JSON log line (journald, codd.log) or as one for a person
        if log_format == "json":
            get_logger("claif_codd").error("daemon.start_failed", error=str(exc))
            sys.exit(exc.code)
        raise CliFailure(str(exc), exc.code) from None


@main.command()
@socket_option
@click.option("--idle-timeout", type=IDLE_TIMEOUT, default=None, help=IDLE_TIMEOUT_HELP)
@http_options
def start(
    socket_path: Path | None,
    idle_timeout: float | None,
    http: str | None,
    http_token_file: Path | None,
    http_working_dir: Path | None,
    http_strict: bool,
) -> None:
    """Start in the background and return once the socket (and --http endpoint) accept connections."""
    path = socket_path or default_socket_path()
    settings = checked_http_settings(http, http_token_file, http_working_dir, http_strict)  # usage errors here
    running = answers(path)
    state_dir = default_state_dir()
    if not running and (held := holder(state_dir)) is not None:  # (draining, or another socket's)
        raise CliFailure(str(StateInUse(held, state_dir)))
    if running:
        unchecked = {
            "--idle-timeout": idle_timeout is not None,
            "--http-token-file": http_token_file is not None,
            "--http-working-dir": http_working_dir is not None,
            "--http-strict": http_strict,
        }
        _already_running(path, settings, [name for name, given in unchecked.items() if given])
        return
    options = ["--idle-timeout", str(idle_timeout)] if idle_timeout is not None else []
    options += http_args(http, http_token_file, http_working_dir, http_strict)
    try:
        proc, log_path = launch(path, options)
        if sys.stderr.isatty():  # seconds of silence otherwise; nothing extra when piped
            click.echo(f"claif-codd: starting (its log: {log_path})...", err=True)
        wait_until_answering(path, proc, log_path)
    except (UnsafeSocketDirectory, DaemonStartFailed, OSError) as exc:
        raise CliFailure(str(exc)) from None
    click.echo(f"claif-codd {__version__} running (pid {proc.pid}) on {path}")
    if settings is not None:  # the port it took, when --http asked for any (:0)
        click.echo(f"HTTP endpoint: {decode_result(_query(path, DaemonStatusRequest), DaemonStatus).http}/v1")


def _already_running(path: Path, http: HttpSettings | None, unchecked: list[str]) -> None:
    """``start`` with a daemon already answering changes nothing: an HTTP endpoint it was asked for
    must be the running daemon's, and the ``unchecked`` options are said to be left as they are.
    One that takes connections but does not answer (stopped, hung) is an error: it serves nobody."""
    serving = decode_result(_query(path, DaemonStatusRequest), DaemonStatus).http
    if http is not None:
        asked = http_url(http.host, http.port)
        if serving != asked and not (http.port == 0 and serving is not None and _host(serving) == _host(asked)):
            running = f"serving HTTP on {serving}" if serving is not None else "without an HTTP endpoint"
            raise CliFailure(
                f"claif-codd already running on {path}, {running}: stop it first (claif-codd stop) "
                f"to start one serving {asked}"
            )
    click.echo(f"claif-codd already running on {path}")
    if serving is not None:
        click.echo(f"HTTP endpoint: {serving}/v1")
    if unchecked:
        click.echo(f"claif-codd: not applied to the running daemon: {', '.join(unchecked)}", err=True)


def _host(url: str) -> str:
    return url.rpartition(":")[0]


async def _call(path: Path, request_type: Any) -> tuple[int, msgspec.Raw]:
    """The daemon's pid (from its hello) and its answer."""
    conn = await DaemonConnection.open(path, client_name="claif-codd-cli")
    try:
        assert conn.hello is not None  # (open() said hello)
        return conn.hello.daemon_pid, await conn.call(request_type(id=conn.next_id()))
    finally:
        await conn.close()


def _query(path: Path, request_type: Any) -> msgspec.Raw:
    return _ask(path, request_type)[1]


def _ask(path: Path, request_type: Any) -> tuple[int, msgspec.Raw]:
    try:
        return asyncio.run(_call(path, request_type))
    except DaemonHung as exc:  # (its message says what to do)
        raise CliFailure(str(exc)) from None
    except DaemonUnavailable as exc:
        raise CliFailure(f"{exc}; start one with `claif-codd start`") from None


STOP_WAIT_S = 90.0
"""How long ``stop`` waits for the daemon to be gone (its drain takes ``--drain-timeout``, 60 s by default)."""


@main.command()
@socket_option
def stop(socket_path: Path | None) -> None:
    """Ask the daemon to drain its turns and exit; waits until it is gone."""
    path = socket_path or default_socket_path()
    if answers(path):
        pid, _ = _ask(path, DaemonShutdownRequest)
    elif (stopping := _stopping(path)) is not None:
        pid = stopping.pid
        click.echo(f"claif-codd (pid {pid}) is already stopping; waiting for it")
    else:
        click.echo(f"claif-codd is not running on {path}")
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while _running(pid):  # not the socket: it stops accepting as soon as the drain begins
        if time.monotonic() >= deadline:
            raise CliFailure(
                f"claif-codd on {path} is still draining its turns after {STOP_WAIT_S:g} s; "
                "it exits once they end or its --drain-timeout passes"
            )
        time.sleep(0.05)
    click.echo("claif-codd stopped")


def _stopping(path: Path) -> Holder | None:
    """The daemon of ``path`` that no longer answers but still runs: it drains its turns."""
    held = holder(default_state_dir())
    return held if held is not None and held.socket == str(path) else None


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (the daemon's parent, systemd or init, reaps it, not us)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # reused by another user's process: ours is gone
        return False
    try:  # a zombie its parent has not reaped yet is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it runs


@main.command()
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(socket_path: Path | None, as_json: bool) -> None:
    """Versions, uptime, Codex processes (workdir, RSS, threads), sessions and turns in flight."""
    path = socket_path or default_socket_path()
    if not answers(path) and (stopping := _stopping(path)) is not None:
        raise CliFailure(f"claif-codd (pid {stopping.pid}) on {path} is stopping: it exits once its running turns end")
    info = decode_result(_query(path, DaemonStatusRequest), DaemonStatus)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(info), indent=2))
        return
    click.echo(f"claif-codd {info.package_version} (protocol {info.protocol_version}) pid {info.pid}")
    click.echo(f"socket      {info.socket}")
    if info.http is not None:
        click.echo(f"http        {info.http}/v1")
    click.echo(f"uptime      {info.uptime_s:.0f} s")
    click.echo(f"connections {info.connections}   sessions {info.sessions}   turns in flight {info.turns_in_flight}")
    click.echo(f"codex processes: {len(info.processes)}")
    for p in info.processes:
        rss = f"{p.rss_bytes / 2**20:.0f} MiB" if p.rss_bytes else "?"
        click.echo(f"  pid {p.pid}  codex {p.codex_version}  rss {rss}  threads {p.threads}  busy {p.turns_in_flight}")
        click.echo(f"      {p.working_dir}")


@main.command()
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def sessions(socket_path: Path | None, as_json: bool) -> None:
    """Named sessions the daemon knows (persisted across restarts)."""
    path = socket_path or default_socket_path()
    listing = decode_result(_query(path, SessionsListRequest), SessionsListResult)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(listing.sessions), indent=2))
        return
    if not listing.sessions:
        click.echo("no sessions")
    for line in listing_lines(listing.sessions, threads=True):
        click.echo(line)


@main.command("install-systemd")
@click.option(
    "--unit-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the user units (default: $XDG_CONFIG_HOME/systemd/user).",
)
@click.option("--enable/--no-enable", default=True, show_default=True, help="Run systemctl --user to enable them.")
@http_options
def install_systemd(
    unit_dir: Path | None,
    enable: bool,
    http: str | None,
    http_token_file: Path | None,
    http_working_dir: Path | None,
    http_strict: bool,
) -> None:
    """Install the socket-activated user service: the daemon starts on first connection.

    With --http the service also starts at login, so the HTTP endpoint is up before any
    socket client has connected.
    """
    if http is not None and http_token_file is None and os.environ.get(ENV_TOKEN):
        raise click.UsageError(
            f"the systemd service does not see ${ENV_TOKEN}: give the token in a file only you can read "
            "(--http-token-file FILE)"
        )
    checked_http_settings(http, http_token_file, http_working_dir, http_strict)
    serve_args = http_args(http, http_token_file, http_working_dir, http_strict)
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    target = unit_dir or Path(config) / "systemd" / "user"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in unit_texts(serve_args).items():
        (target / name).write_text(text)
        click.echo(f"wrote {target / name}")
    units = [UNIT_FILES[0], UNIT_FILES[1]] if http else [UNIT_FILES[0]]
    commands = [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", *units]]
    if not enable:
        click.echo("enable with: " + " && ".join(" ".join(c) for c in commands))
        return
    for command in commands:
        try:
            result = subprocess.run(command, capture_output=True, text=True)
            why = result.stderr.strip() if result.returncode != 0 else None
        except OSError as exc:  # no systemctl at all
            why = str(exc)
        if why is not None:
            raise CliFailure(
                f"{' '.join(command)} failed: {why}; the units stay in {target}: enable them with "
                f"`{' && '.join(' '.join(c) for c in commands)}` once systemctl --user works, or, without systemd, "
                "start claif-codd on login with `claif-codd start --idle-timeout 3600`"
            )
    if http:
        click.echo(f"{' and '.join(units)} enabled: the daemon runs from login, with the HTTP endpoint on {http}")
    else:
        click.echo("claif-codd.socket enabled: the daemon starts on the first connection")
