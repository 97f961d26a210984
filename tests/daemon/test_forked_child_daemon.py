"""A client used before ``os.fork()`` works in the child through the daemon too, on connections of
its own: on the parent's, two processes would number their requests alike and could each read the
other's answers (until this was fixed, the child's first request waited forever).  The child lets go
at once of its copies of the parent's connections, so the daemon sees them close when the parent
closes its client.  In-process: tests/integration/test_forked_child.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from forked_script import run_forking_script, run_stream_forking_script
from waiting import wait_until

pytestmark = [pytest.mark.codex, pytest.mark.timeout(150)]


def test_a_forked_child_asks_on_its_own_connections(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    def parents_connections_closed() -> None:
        # the child's two (its engine loop's, its caller connection) and this status call's
        wait_until(lambda: daemon.status().connections == 3, "the parent's connections to close")

    parent, child = run_forking_script(
        workdir, {**daemon_env, "CLAIF_COD_DAEMON": "require"}, while_child_holds=parents_connections_closed
    )
    assert parent["codex"] == child["codex"] == []  # both through the daemon
    assert len(parent["held"]) == 2 and not set(parent["held"]) & set(child["fds"])


def test_a_stream_opened_before_the_fork_ends_in_the_child_and_goes_on_in_the_parent(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    child, parent, child_exit = run_stream_forking_script(workdir, {**daemon_env, "CLAIF_COD_DAEMON": "require"})
    assert child == "child: APIConnectionError: this stream was opened before the process forked: read it in the parent"
    assert (parent, child_exit) == ("parent: Echo: one two three four / Echo: five six", "child exit: 0")


def test_an_async_stream_opened_before_the_fork_ends_in_the_child_and_goes_on_in_the_parent(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    env = {**daemon_env, "CLAIF_COD_DAEMON": "require"}
    child, parent, child_exit = run_stream_forking_script(workdir, env, asynchronous=True)
    # its loop's own connection: its reader, on the parent's loop, is not running in the child
    assert child == "child: APIConnectionError: this stream was opened before the process forked: read it in the parent"
    assert (parent, child_exit) == ("parent: Echo: one two three four / Echo: five six", "child exit: 0")
