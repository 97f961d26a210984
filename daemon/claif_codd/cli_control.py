"""``claif-codd start``, ``stop``, ``status`` and ``sessions``: start the daemon in the background,
and ask the one running on a socket to stop or to say what it holds."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import msgspec

from claif_cod._version import __version__
from claif_cod._visible import visible
from claif_cod.cli.sessions import listing_lines
from claif_cod.protocol import (
    DaemonShutdownRequest,
    DaemonStatus,
    DaemonStatusRequest,
    SessionsListRequest,
    SessionsListResult,
    decode_result,
)
from claif_cod.transport.autostart import DaemonStartFailed, answers, launch, let_go, wait_until_answering
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonHung, DaemonUnavailable, UntrustedDaemon, other_release
from claif_cod.transport.socket_path import UnsafeSocketDirectory, default_socket_path
from claif_codd.cli_options import IDLE_TIMEOUT, IDLE_TIMEOUT_HELP, CliFailure, default_state_dir, socket_option
from claif_codd.config import CONTROL_CLIENT
from claif_codd.http.options import checked_http_settings, http_args, http_options
from claif_codd.http.settings import HttpSettings, http_url
from claif_codd.instance import Holder, StateInUse, holder


@click.command()
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
    sse_keepalive: float | None,
) -> None:
    """Start in the background and return once the socket (and --http endpoint) accept connections."""
    path = socket_path or default_socket_path()
    settings = checked_http_settings(
        http, http_token_file, http_working_dir, http_strict, sse_keepalive
    )  # usage errors here
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
            "--sse-keepalive": sse_keepalive is not None,
        }
        _already_running(path, settings, [name for name, given in unchecked.items() if given])
        return
    options = ["--idle-timeout", str(idle_timeout)] if idle_timeout is not None else []
    options += http_args(http, http_token_file, http_working_dir, http_strict, sse_keepalive)
    try:
        proc, log_path = launch(path, options)
        if sys.stderr.isatty():  # seconds of silence otherwise; nothing extra when piped
            click.echo(f"claif-codd: starting (its log: {log_path})...", err=True)
        wait_until_answering(path, proc, log_path)
        let_go(proc)
    except (UnsafeSocketDirectory, DaemonStartFailed) as exc:
        raise CliFailure(str(exc)) from None
    except OSError as exc:  # the socket's folder or the log beside it (a path through a file, a full disk...)
        where = f"{exc.filename}: " if exc.filename else ""
        raise CliFailure(
            f"cannot start claif-codd on {path}: {where}{exc.strerror or exc}; "
            "choose another socket with --socket or $CLAIF_COD_SOCKET"
        ) from None
    click.echo(f"claif-codd {__version__} running (pid {proc.pid}) on {path}")
    if settings is not None:  # the port it took, when --http asked for any (:0)
        click.echo(f"HTTP endpoint: {decode_result(_query(path, DaemonStatusRequest), DaemonStatus).http}/v1")


def _already_running(path: Path, http: HttpSettings | None, unchecked: list[str]) -> None:
    """``start`` with a daemon already answering changes nothing: an HTTP endpoint it was asked for
    must be the running daemon's, and the ``unchecked`` options are said to be left as they are.
    One that takes connections but does not answer (stopped, hung) is an error: it serves nobody.
    One of another claif_cod release is named: this command did not start the installed one."""
    info = decode_result(_query(path, DaemonStatusRequest), DaemonStatus)
    serving = info.http
    if http is not None:
        asked = http_url(http.host, http.port)
        if serving != asked and not (http.port == 0 and serving is not None and _host(serving) == _host(asked)):
            running = f"serving HTTP on {serving}" if serving is not None else "without an HTTP endpoint"
            wanted = f"HTTP on {http.host} (any free port)" if http.port == 0 else asked
            raise CliFailure(
                f"claif-codd already running on {path}, {running}: stop it first (claif-codd stop) "
                f"to start one serving {wanted}"
            )
    click.echo(f"claif-codd already running on {path}")
    if serving is not None:
        click.echo(f"HTTP endpoint: {serving}/v1")
    if unchecked:
        click.echo(f"claif-codd: not applied to the running daemon: {', '.join(unchecked)}", err=True)
    if (said := other_release(path, info.package_version)) is not None:
        click.echo(f"claif-codd: {said}", err=True)


def _host(url: str) -> str:
    return url.rpartition(":")[0]


async def _call(path: Path, request_type: Any) -> tuple[int, msgspec.Raw]:
    """The daemon's pid (from its hello) and its answer."""
    conn = await DaemonConnection.open(path, client_name=CONTROL_CLIENT)  # let in beyond the daemon's limits
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
    except (DaemonHung, UntrustedDaemon) as exc:  # (its message says what to do: starting one would not help)
        raise CliFailure(str(exc)) from None
    except DaemonUnavailable as exc:
        raise CliFailure(f"{exc}; start one with `claif-codd start`") from None


STOP_WAIT_S = 90.0
"""How long ``stop`` waits for the daemon to be gone (its drain takes ``--drain-timeout``, 60 s by default)."""


@click.command()
@socket_option
def stop(socket_path: Path | None) -> None:
    """Ask the daemon to drain its turns and exit; waits until it is gone."""
    path = socket_path or default_socket_path()
    if answers(path):
        pid, _ = _ask(path, DaemonShutdownRequest)
    elif (stopping := _stopping(path)) is not None:
        pid = stopping.pid
        click.echo(f"claif-codd (pid {pid}) is already stopping{_lost(path)}; waiting for it")
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


def _lost(path: Path) -> str:
    """Why a daemon stops that nobody asked to: its socket file went (it then drains and exits)."""
    return "" if path.exists() else " (its socket file is gone: removed, or with $XDG_RUNTIME_DIR at logout)"


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


@click.command()
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(socket_path: Path | None, as_json: bool) -> None:
    """Versions, uptime, Codex processes (workdir, RSS, threads), sessions and turns in flight."""
    path = socket_path or default_socket_path()
    if not answers(path) and (stopping := _stopping(path)) is not None:
        raise CliFailure(
            f"claif-codd (pid {stopping.pid}) on {path} is stopping{_lost(path)}: it exits once its running turns end"
        )
    info = decode_result(_query(path, DaemonStatusRequest), DaemonStatus)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(info), indent=2))
        return
    click.echo(f"claif-codd {info.package_version} (protocol {info.protocol_version}) pid {info.pid}")
    if (said := other_release(path, info.package_version)) is not None:
        click.echo(f"claif-codd: {said}", err=True)
    click.echo(f"socket      {info.socket}")
    if info.http is not None:
        click.echo(f"http        {info.http}/v1")
    click.echo(f"uptime      {info.uptime_s:.0f} s")
    click.echo(f"connections {info.connections}   sessions {info.sessions}   turns in flight {info.turns_in_flight}")
    click.echo(f"codex processes: {len(info.processes)}")
    for p in info.processes:
        rss = f"{p.rss_bytes / 2**20:.0f} MiB" if p.rss_bytes else "?"
        click.echo(f"  pid {p.pid}  codex {p.codex_version}  rss {rss}  threads {p.threads}  busy {p.turns_in_flight}")
        click.echo(f"      {visible(p.working_dir)}")


@click.command()
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
