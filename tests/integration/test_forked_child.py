"""A client used before ``os.fork()`` (``multiprocessing``'s default on Linux) works in the child.

The engine loop's thread is not in the child and its Codex process is the parent's: the child gets
its own on its next request, and lets go at once of its copy of the parent's Codex input, so that
the parent's ``close()`` still ends Codex with end of input (with a copy held open in the child,
Codex saw none, and the kill ladder went on to SIGTERM 2 s later).
Through a daemon: tests/daemon/test_forked_child_daemon.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from forked_script import run_forking_script, run_stream_forking_script
from test_unclosed_client import gone

pytestmark = [pytest.mark.codex, pytest.mark.timeout(150)]


def test_a_forked_child_gets_its_own_codex_and_leaves_the_parents_alone(codex_home: Path, workdir: Path) -> None:
    parent, child = run_forking_script(workdir, {**os.environ, "CLAIF_COD_DAEMON": "off"})
    (parents_codex,) = parent["codex"]
    (childs_codex,) = child["codex"]
    assert childs_codex != parents_codex
    (codex_input,) = parent["held"]
    assert codex_input is not None and codex_input not in child["fds"]
    assert gone(childs_codex) and gone(parents_codex)


def test_a_stream_opened_before_the_fork_ends_in_the_child_and_goes_on_in_the_parent(
    codex_home: Path, workdir: Path
) -> None:
    assert run_stream_forking_script(workdir, {**os.environ, "CLAIF_COD_DAEMON": "off"}) == [
        "child: APIConnectionError: this stream was opened before the process forked: read it in the parent",
        "parent: Echo: one two three four / Echo: five six",
        "child exit: 0",
    ]


def test_an_async_stream_opened_before_the_fork_ends_in_the_child_and_goes_on_in_the_parent(
    codex_home: Path, workdir: Path
) -> None:
    env = {**os.environ, "CLAIF_COD_DAEMON": "off"}
    assert run_stream_forking_script(workdir, env, asynchronous=True) == [
        "child: APIConnectionError: this stream was opened before the process forked: read it in the parent",
        "parent: Echo: one two three four / Echo: five six",
        "child exit: 0",
    ]
