"""What a Codex home must be before a Codex process starts in it: its shell snapshots private.

Codex saves the environment of each thread's shell under ``$CODEX_HOME/shell_snapshots`` with the
umask's mode (0644 in a 0755 ``~/.codex``), and that environment holds ``CODEX_API_KEY``, the key a
client gave claif_cod, and whatever secrets the user's own environment has. Codex keeps the mode
of a directory that exists: a 0700 one keeps every snapshot in it from other users.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from claif_cod._log import get_logger

log = get_logger(__name__)


def keep_snapshots_private(env: Mapping[str, str]) -> None:
    """Make ``shell_snapshots`` of the home ``env`` names 0700 (created when missing); a home not
    there yet is left to Codex, which makes it, and the next process start closes its snapshots."""
    home = env.get("CODEX_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".codex")
    path = os.path.join(home, "shell_snapshots")
    try:
        if not os.path.isdir(home):
            return
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            info = os.lstat(path)  # not through a symlink: whatever it points to is not ours to change
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
                os.chmod(path, 0o700)
    except OSError as exc:  # a read-only home: Codex says what it cannot do itself
        log.warning("codex.snapshots_not_private", path=path, error=str(exc))
