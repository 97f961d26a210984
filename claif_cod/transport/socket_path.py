"""Where the daemon's socket lives, and whether its directory can be trusted.

The socket grants full use of the user's Codex (and API key), so its directory must be
owned by us, not a symlink, and closed to group and others, like ssh-agent's.

Trust runs both ways: the daemon refuses to bind in such a directory (:func:`ensure_directory`),
and a client, which sends its API key and prompts, checks the directory and the socket before
connecting (:func:`check_socket`) and the listening process's uid right after (:func:`check_peer`),
so it never talks to a daemon another user planted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
from pathlib import Path

from claif_cod._private_dirs import make_private_dirs

ENV_SOCKET = "CLAIF_COD_SOCKET"
SOCKET_NAME = "codd.sock"


class UnsafeSocketDirectory(Exception):
    """The socket's directory could let another user in; the message names the fix."""


class ForeignSocket(UnsafeSocketDirectory):
    """The socket file, or the process listening on it, belongs to another user."""


def default_socket_path() -> Path:
    explicit = os.environ.get(ENV_SOCKET)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "claif-cod" / SOCKET_NAME
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "claif-cod" / SOCKET_NAME


def _unreachable(directory: Path) -> UnsafeSocketDirectory:
    return UnsafeSocketDirectory(
        f"{directory} cannot be examined (permission denied): it is in a directory of another user's "
        f"(such as the $XDG_RUNTIME_DIR a `su` keeps); set ${ENV_SOCKET} to a path in a directory you own"
    )


def check_directory(directory: Path) -> None:
    """Refuse a directory another user could write to or swap; raise with the fix named."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        raise UnsafeSocketDirectory(f"{directory} does not exist") from None
    except PermissionError:
        raise _unreachable(directory) from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeSocketDirectory(f"{directory} is a symlink; remove it (rm {directory}) and restart the daemon")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeSocketDirectory(f"{directory} is not a directory; remove it and restart the daemon")
    if st.st_uid != os.getuid():
        raise UnsafeSocketDirectory(
            f"{directory} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}); "
            f"remove it or set ${ENV_SOCKET} to a path in a directory you own"
        )
    if st.st_mode & 0o077:
        raise UnsafeSocketDirectory(
            f"{directory} has mode {stat.S_IMODE(st.st_mode):04o}; group and others must have no access: "
            f"chmod 700 {directory}"
        )


def ensure_directory(directory: Path) -> None:
    """Create the socket directory 0700 if missing, then check it."""
    try:
        make_private_dirs(directory)
    except PermissionError:
        raise _unreachable(directory) from None
    check_directory(directory)


def check_socket(path: Path) -> None:
    """A client's check before connecting to ``path``: a safe directory, and a socket that is ours.

    A missing directory or socket passes: there is nothing to talk to, and connecting says so; so does
    a path through a file (``$XDG_CACHE_HOME`` a file), where no socket can be. One we may not even
    look at (another user's) is refused, so that an ``auto`` client runs Codex itself.
    """
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        try:
            os.lstat(path.parent)
        except PermissionError:
            raise _unreachable(path.parent) from None
        check_directory(path.parent)
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise UnsafeSocketDirectory(f"{path} is not a socket; remove it (rm {path}) and restart the daemon")
        if st.st_uid != os.getuid():
            raise ForeignSocket(
                f"{path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}); "
                f"remove it (rm {path}) and restart the daemon"
            )


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket (Linux ``SO_PEERCRED``).

    On the connecting side this is whoever called ``listen()``. None where the platform can't tell.
    """
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def check_peer(sock: socket.socket, path: Path) -> None:
    """A client's check right after connecting, before sending anything: the daemon runs as us."""
    uid = peer_uid(sock)
    if uid is not None and uid != os.getuid():
        raise ForeignSocket(
            f"the process listening on {path} runs as uid {uid}, not as you (uid {os.getuid()}), so it is not "
            f"your claif-codd; remove {path} or set ${ENV_SOCKET} to a path in a directory you own"
        )


def listening(path: Path) -> bool:
    """Whether a daemon accepts on ``path``; an error other than "nobody there" is raised,
    so that a socket we merely cannot probe is never mistaken for a stale one."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK, errno.ENOTDIR):
            return False
        raise
    finally:
        probe.close()
    return True
