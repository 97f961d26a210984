"""Why a daemon on the socket cannot be used, or not for one request: it is not there, hung, not the
user's, or of another release of claif_cod than this client (a package upgraded while its daemon
runs on), in words that say how to put it right."""

from __future__ import annotations

from pathlib import Path

from claif_cod._version import __version__
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.protocol import PROTOCOL_VERSION, HelloResult, Request
from claif_cod.protocol.capabilities import lacking
from claif_cod.transport.wire_errors import DAEMON_OUTDATED


class DaemonUnavailable(Exception):
    """Nothing usable answers on the socket."""


class DaemonHung(DaemonUnavailable):
    """Something listens on the socket but does not answer: a daemon stopped (``kill -STOP``) or hung."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"claif-codd at {path} {what} (stopped or hung?): `kill -CONT` it, or kill it")


def connection_not_taken(path: Path) -> DaemonHung:
    """A listening socket whose backlog is full: its daemon takes no connection from it."""
    return DaemonHung(path, "takes no more connections (its backlog is full)")


class DaemonMismatch(DaemonUnavailable):
    """The daemon is of another release of claif_cod, one that speaks another protocol version (a
    package upgraded while its daemon runs on)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"claif-codd at {path} is of another release of claif_cod ({why}): restart it ({RESTART})")


def other_protocol(hello: HelloResult) -> str | None:
    """Why a daemon's hello cannot be taken, when it speaks another protocol version than this client."""
    if hello.protocol_version == PROTOCOL_VERSION:
        return None
    return f"it speaks protocol {hello.protocol_version}, this client {PROTOCOL_VERSION}"


RESTART = "`claif-codd stop`, then `claif-codd start`, or `systemctl --user restart claif-codd`"
"""How a daemon of another release is restarted, so that one of the installed release serves."""


def other_release(path: Path | None, daemon_version: str) -> str | None:
    """What to say of a daemon of another claif_cod release than this process's (None: the same):
    what the installed release added is not served until it is restarted."""
    if daemon_version == __version__:
        return None
    return (
        f"claif-codd at {path} runs claif_cod {daemon_version}, and claif_cod {__version__} is installed "
        f"(upgraded or downgraded while the daemon ran on?): restart it ({RESTART}) to run {__version__}"
    )


def outdated(path: Path | None, hello: HelloResult, what: str) -> APIFailure:
    """A request an older daemon (same protocol, started before claif_cod was upgraded) cannot serve
    as sent: ``what`` it lacks. Never sent to it, where a method would be unknown and a member of its
    params or body ignored; the daemon is to be restarted."""
    said = (
        f"claif-codd at {path} (claif_cod {hello.package_version}, pid {hello.daemon_pid}) does not serve {what}: "
        f"it runs an older claif_cod than this client ({__version__}), started before claif_cod was upgraded; "
        f"restart it ({RESTART})"
    )
    return APIFailure("connection", 0, ErrorDetail(said, "connection_error", DAEMON_OUTDATED))


def refusal(path: Path | None, hello: HelloResult | None, request: Request) -> APIFailure | None:
    """Why ``request`` may not go to the daemon that said ``hello`` (None: it may)."""
    if hello is None:
        return None
    missing = lacking(request, hello.capabilities)
    if not missing:
        return None
    method = type(request).__struct_config__.tag
    return outdated(path, hello, f"{method} as sent (it lacks the capability {', '.join(missing)})")


class UntrustedDaemon(DaemonUnavailable):
    """The socket path, or the process behind it, is not the user's own: nothing is sent to it."""
