"""What a Codex home must be before a Codex process starts in it: closed to other users.

Codex keeps there what claif_cod's conversations hold: each persisted thread's rollout (the prompts,
answers and images of named sessions, stored responses and conversations, under ``sessions/``), its
state databases (thread history), and each thread's shell environment (``shell_snapshots/``, which
holds ``CODEX_API_KEY``). It writes them with the umask's mode, and makes ``~/.codex`` 0755 under
umask 022 (0777 under umask 000, where another user could then plant a ``config.toml`` that sends
the prompts elsewhere or runs commands). A 0700 home keeps all of it from other users whatever
the files' modes: a missing home is made 0700, one of ours open to others is closed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from claif_cod._log import get_logger
from claif_cod._private_dirs import make_private_dirs

log = get_logger(__name__)


def codex_home(env: Mapping[str, str]) -> str:
    """The home ``env`` gives Codex (as Codex reads it: ``$CODEX_HOME``, else ``~/.codex``)."""
    return env.get("CODEX_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".codex")


def keep_home_private(env: Mapping[str, str]) -> None:
    """Make the Codex home ``env`` names 0700: ``~/.codex`` created so when missing (a ``$CODEX_HOME``
    that is missing is Codex's error to report), closed when ours and open to others (a home of
    another user's is left alone)."""
    home = codex_home(env)
    try:
        if not os.path.exists(home):
            if not env.get("CODEX_HOME"):
                make_private_dirs(Path(home))  # (a missing $HOME too: makedirs would give it the umask's mode)
            return
        info = os.stat(home)  # a home linked elsewhere is its target: closed too, if it is ours
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(home, 0o700)
            log.info("codex.home_closed", path=home, mode=oct(stat.S_IMODE(info.st_mode)))
    except OSError as exc:  # a read-only home: Codex says what it cannot do itself
        log.warning("codex.home_not_private", path=home, error=str(exc))
