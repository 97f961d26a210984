"""The directories claif_cod makes for itself (state, probe cache, socket, chat history) are 0700,
missing parents included, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from claif_cod._private_dirs import make_private_dirs


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_missing_parents_are_made_0700_and_existing_ones_left_alone(tmp_path: Path, umask: int) -> None:
    """``Path.mkdir(parents=True, mode=0o700)`` made $XDG_CACHE_HOME 0777 under umask 000."""
    tmp_path.chmod(0o755)
    target = tmp_path / "xdg" / "cache" / "claif-cod"
    old = os.umask(umask)
    try:
        make_private_dirs(target)
        make_private_dirs(target)  # there already: nothing to do
    finally:
        os.umask(old)
    for made in (target, target.parent, target.parent.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
