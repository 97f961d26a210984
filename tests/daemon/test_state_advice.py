"""What a daemon that cannot use its state files tells its user to do."""

from __future__ import annotations

import errno
import sqlite3

from claif_codd.run import what_to_do


def test_a_full_disk_is_made_room_on_not_moved_away() -> None:
    """Moving a registry away on a full disk would leave its sessions behind (the advice was that)."""
    for full in (OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EFBIG, "File too large")):
        assert what_to_do(full) == "make room on its disk (or raise the file size limit, `ulimit -f`) and start again"
    assert what_to_do(sqlite3.OperationalError("database or disk is full")).startswith("make room on its disk")
    io_error = what_to_do(sqlite3.OperationalError("disk I/O error"))  # a file size limit, or damage
    assert io_error.startswith("make room on its disk") and io_error.endswith("the file may be damaged: move it away")


def test_a_state_file_in_the_way_is_moved_away() -> None:
    advice = "move it away or point --state-dir (or CLAIF_COD_STATE_DIR) elsewhere"
    assert what_to_do(OSError(errno.EISDIR, "Is a directory")) == advice
    assert what_to_do(sqlite3.DatabaseError("file is not a database")) == advice
