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
from forked_script import run_forking_script
from fresh_script import run_script
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
    script = """
        import os, signal, sys, warnings
        import openai
        from claif_cod import CodexClient

        client = CodexClient(model="o4-mini", daemon="off")
        stream = client.chat.completions.create(
            messages=[{"role": "user", "content": "[[slow:150]] one two three four"}], stream=True
        )
        chunks = iter(stream)
        first = next(chunks)
        unread = client.chat.completions.create(
            messages=[{"role": "user", "content": "[[slow:150]] five six"}], stream=True
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads running
            pid = os.fork()
        if pid == 0:
            signal.alarm(20)  # neither closing nor reading on may wait for the parent's engine thread
            unread.close()
            try:
                for chunk in chunks:
                    pass
            except openai.APIConnectionError as exc:
                print("child:", exc.message, flush=True)
            stream.close()
            sys.exit(0)
        text = "".join(c.choices[0].delta.content or "" for c in [first, *chunks] if c.choices)
        print("parent:", text, "/", "".join(c.choices[0].delta.content or "" for c in unread if c.choices), flush=True)
        print("child exit:", os.waitpid(pid, 0)[1], flush=True)
        """
    done = run_script(script, workdir, dict(os.environ))
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        "child: this stream was opened before the process forked: read it in the parent",
        "parent: Echo: one two three four / Echo: five six",
        "child exit: 0",
    ]
