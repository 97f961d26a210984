"""Line editing and a persistent input history for ``claif-cod chat`` (when ``readline`` exists)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from claif_cod._private_dirs import make_private_dirs

HISTORY_LENGTH = 1000


def history_path() -> Path:
    """``$XDG_STATE_HOME/claif-cod/chat_history``, else ``~/.local/state/claif-cod/chat_history``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "claif-cod" / "chat_history"


@dataclass
class History:
    readline: ModuleType
    path: Path

    def save(self) -> None:
        """Write the history (best effort: a read-only home must not break leaving the chat)."""
        with contextlib.suppress(OSError):
            make_private_dirs(self.path.parent)
            self.readline.set_history_length(HISTORY_LENGTH)
            self.readline.write_history_file(str(self.path))


def start() -> History | None:
    """Load the history into readline; None when this Python has no readline."""
    try:
        import readline
    except ImportError:
        return None
    path = history_path()
    with contextlib.suppress(OSError):
        readline.read_history_file(str(path))
    readline.set_history_length(HISTORY_LENGTH)
    return History(readline, path)
