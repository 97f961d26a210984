"""Where the daemon's socket lives, and whether its directory can be trusted.

The socket grants full use of the user's Codex (and API key), so its directory must be
owned by us, not a symlink, and closed to group and others, like ssh-agent's.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

ENV_SOCKET = "CLAIF_COD_SOCKET"
SOCKET_NAME = "codd.sock"


class UnsafeSocketDirectory(Exception):
    """The socket's directory could let another user in; the message names the fix."""


def default_socket_path() -> Path:
    explicit = os.environ.get(ENV_SOCKET)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "claif-cod" / SOCKET_NAME
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "claif-cod" / SOCKET_NAME


def check_directory(directory: Path) -> None:
    """Refuse a directory another user could write to or swap; raise with the fix named."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        raise UnsafeSocketDirectory(f"{directory} does not exist") from None
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
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
    check_directory(directory)
