"""Directories claif_cod makes for itself (state, cache, the socket's): 0700, missing parents too.

``Path.mkdir(parents=True, mode=...)`` gives only the last directory that mode; the parents it makes
get the umask's (0777 under umask 000).
"""

from __future__ import annotations

import os
from pathlib import Path


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents 0700, whatever the umask. Existing ones are left
    alone, as are those someone else makes meanwhile: they are not ours to chmod."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)  # umask can only narrow this, never widen it
        except FileExistsError:
            continue
        os.chmod(path, 0o700)
