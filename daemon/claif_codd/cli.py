"""``claif-codd``: run, start, stop and inspect the daemon."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import click
import structlog

from claif_cod._cli_group import QuietGroup
from claif_cod._log import cap_strings, get_logger
from claif_cod._private_dirs import make_private_dirs
from claif_cod._seconds_param import Seconds
from claif_cod._version import __version__
from claif_cod._visible import LINES, visible
from claif_cod.engine.idle import DEFAULT_THREAD_IDLE_TIMEOUT_S
from claif_cod.engine.suspensions import DEFAULT_MAX_SUSPENDED
from claif_cod.transport.socket_path import default_socket_path
from claif_codd.cli_control import sessions, start, status, stop
from claif_codd.cli_options import IDLE_TIMEOUT, IDLE_TIMEOUT_HELP, CliFailure, default_state_dir, socket_option
from claif_codd.http.options import checked_http_settings, http_args, http_options
from claif_codd.http.settings import ENV_TOKEN, beyond_loopback
from claif_codd.systemd_units import UNIT_FILES, enable_commands, socket_elsewhere, unit_texts, write_unit


def visible_controls(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Hidden characters in a console record's strings, written as escapes (:mod:`claif_cod._visible`):
    many strings come from clients (an HTTP request's path, ids, names), and the console renderer
    writes them as they are, so a client could write escape sequences or a bidi override to the
    terminal the daemon runs in (a NUL, to its log file). A traceback is formatted here, as the text
    the renderer then writes, so that its own are escaped too; it keeps its lines and indents."""
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(_logger, _method, event_dict)
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = visible(value, LINES if key == "exception" else frozenset())
    return event_dict


def log_colours() -> bool:
    """Colours in the console log on a terminal only (a log file gets no escape codes), and not when
    ``NO_COLOR`` is set to anything but the empty string (https://no-color.org)."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def configure_logging(fmt: str, level: str) -> None:
    """structlog output for the daemon process: JSON lines (for journald) or console."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=log_colours())
    )
    rendering = [renderer] if fmt == "json" else [visible_controls, renderer]  # (JSON escapes them itself)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
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
    help="Socket connections beyond this get a retryable OVERLOADED error and are closed; so many HTTP ones "
    "besides, beyond which a new one is closed as it is accepted.",
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
    type=Seconds(),
    default=60.0,
    show_default=True,
    help="On SIGTERM or stop, seconds running requests get to finish before they are interrupted.",
)
@click.option(
    "--thread-idle-timeout",
    type=Seconds(),
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
    sse_keepalive: float | None,
) -> None:
    """Run in the foreground (what systemd and `start` run)."""
    from claif_codd.config import DaemonConfig
    from claif_codd.run import StartFailed, run

    http_settings = checked_http_settings(http, http_token_file, http_working_dir, http_strict, sse_keepalive)
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
    sse_keepalive: float | None,
) -> None:
    """Install the socket-activated user service: the daemon starts on first connection.

    With --http the service also starts at login, so the HTTP endpoint is up before any
    socket client has connected.
    """
    if http is not None and http_token_file is None:
        if os.environ.get(ENV_TOKEN):
            raise click.UsageError(
                f"the systemd service does not see ${ENV_TOKEN}: give the token in a file only you can read "
                "(--http-token-file FILE)"
            )
        if beyond_loopback(http):  # the shared check would offer ${ENV_TOKEN}, refused just above
            raise click.UsageError(
                f"--http {http}: serving beyond loopback needs a bearer token, which the systemd service "
                "reads from a file only you can read (--http-token-file FILE)"
            )
    elsewhere = socket_elsewhere(os.environ)
    if elsewhere is not None:
        raise click.UsageError(elsewhere)
    checked_http_settings(http, http_token_file, http_working_dir, http_strict, sse_keepalive)
    serve_args = http_args(http, http_token_file, http_working_dir, http_strict, sse_keepalive)
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    target = unit_dir or Path(config) / "systemd" / "user"
    make_private_dirs(target)
    for name, text in unit_texts(serve_args).items():
        write_unit(target / name, text)
        click.echo(f"wrote {target / name}")
    units = [UNIT_FILES[0], UNIT_FILES[1]] if http else [UNIT_FILES[0]]
    commands = enable_commands(target, units, os.environ)
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


main.add_command(start)
main.add_command(stop)
main.add_command(status)
main.add_command(sessions)
