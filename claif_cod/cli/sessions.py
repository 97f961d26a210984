"""``claif-cod sessions``: the daemon's named sessions, listed and closed over its socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from claif_cod._visible import visible
from claif_cod.cli.exits import EXIT_CONNECTION, EXIT_NO_SESSION, CliFailure
from claif_cod.engine.sessions import session_id_problem
from claif_cod.protocol import (
    ClosedResult,
    SessionCloseParams,
    SessionCloseRequest,
    SessionInfo,
    SessionsListRequest,
    SessionsListResult,
    decode_result,
)
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonHung, DaemonUnavailable
from claif_cod.transport.socket_path import default_socket_path

T = TypeVar("T")


def session_name(ctx: click.Context, param: click.Parameter, name: str | None) -> str | None:
    """A name ``sessions`` can list on a line of its own: not empty, no control characters."""
    problem = None if name is None else session_id_problem(name)
    if problem is not None:
        raise click.BadParameter(problem)
    return name


def _session_names(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        session_name(ctx, param, name)
    return names


async def _list_sessions(path: Path) -> list[SessionInfo]:
    conn = await DaemonConnection.open(path, client_name="claif-cod-cli")
    try:
        raw = await conn.call(SessionsListRequest(id=conn.next_id()))
    finally:
        await conn.close()
    return decode_result(raw, SessionsListResult).sessions


async def _close_sessions(path: Path, names: tuple[str, ...]) -> list[str]:
    """The names of ``names`` that had no session (the others are closed)."""
    conn = await DaemonConnection.open(path, client_name="claif-cod-cli")
    try:
        missing = []
        for name in names:
            raw = await conn.call(SessionCloseRequest(id=conn.next_id(), params=SessionCloseParams(session_id=name)))
            if not decode_result(raw, ClosedResult).closed:
                missing.append(name)
    finally:
        await conn.close()
    return missing


def _ask_daemon(what: str, job: Callable[[Path], Coroutine[Any, Any, T]]) -> T:
    """``job`` run against the daemon's socket, its failures worded for the terminal."""
    path = default_socket_path()
    try:
        return asyncio.run(job(path))
    except DaemonHung as exc:  # starting one would change nothing
        raise CliFailure(str(exc), EXIT_CONNECTION) from None
    except DaemonUnavailable as exc:
        hint = "sessions live in claif-codd: start it with `claif-codd start`"
        raise CliFailure(f"{exc}; {hint}", EXIT_CONNECTION) from None
    except Exception as exc:  # the daemon answered with an error, or hung up
        raise CliFailure(f"claif-codd at {path} could not {what}: {exc}", EXIT_CONNECTION) from None


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the sessions as a JSON list.")
@click.pass_context
def sessions(ctx: click.Context, as_json: bool) -> None:
    """List claif-codd's named sessions (needs a running daemon); `sessions close NAME` forgets one."""
    if ctx.invoked_subcommand is not None:
        return
    listing = _ask_daemon("list sessions", _list_sessions)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(listing), indent=2))
        return
    if not listing:
        click.echo("no sessions")
    for line in listing_lines(listing):
        click.echo(line)


def listing_lines(listing: list[SessionInfo], *, threads: bool = False) -> list[str]:
    """A line per session (``threads``: with its Codex thread), its Codex home named where the same
    name lives in more than one. A folder's name may hold any character but ``/``: its hidden ones
    are written out."""
    names = [s.session_id for s in listing]
    lines = []
    for s in listing:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_used))
        busy = "  busy" if s.busy else ""
        thread = f"  thread {s.thread_id}" if threads else ""
        home = f"  (CODEX_HOME {visible(s.codex_home)})" if names.count(s.session_id) > 1 and s.codex_home else ""
        lines.append(f"{s.session_id}  turns {s.turns}  last {when}{busy}{thread}  {visible(s.working_dir)}{home}")
    return lines


@sessions.command("close")
@click.argument("names", nargs=-1, required=True, metavar="NAME...", callback=_session_names)
def close_sessions(names: tuple[str, ...]) -> None:
    """Forget named sessions: the next turn under a closed name starts a new conversation."""
    missing = _ask_daemon("close sessions", lambda path: _close_sessions(path, names))
    if missing:
        raise CliFailure(f"no session named {', '.join(map(repr, missing))}", EXIT_NO_SESSION)
