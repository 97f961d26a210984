"""Run the next test's guide example beside this one's: two fresh interpreters at a time.

A guide example run as a script (``guide_exit.run_fresh``) is CPU in its own processes (openai's
import, Codex's start, the interpreter's exit) while pytest only waits for it: on two cores two
of them take about the time of one. Each example still runs in directories of its own, with its
own model server (and daemon), and its outcome is asserted by its own test; only when it runs
moves ahead, by one test. The test after the current one is read from the session's collected
items, so ``-k``, deselection and skips start nothing that will not be asserted. Under pytest-xdist
it looks ahead only with ``--dist loadfile`` (the default in pyproject.toml), which runs a file on
one worker, in order; otherwise the next test may run on another worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from api_guide import Example
from guide_exit import Exit

Run = Callable[[Example, Path, dict[str, str]], Exit]
"""Runs one example in the given (empty) directory, from the given environment; returns its exit."""


class Lookahead:
    def __init__(self, run: Run, root: Path, runs: Callable[[Example], bool]) -> None:
        self._run, self._root, self._runs = run, root, runs
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="guide-example")
        self._started: dict[str, Future[Exit]] = {}
        self._count = 0

    def exit_of(self, request: pytest.FixtureRequest) -> Exit:
        """The exit of the example of ``request``'s test, with the next test's example started.

        The environment each is started from is this test's (its ``HOME`` and the like are then
        replaced by the example's own), read now: only the running test's fixtures set it up.
        """
        node = request.node
        items = request.session.items
        here = items.index(node)
        # A worker's own options say "no" distribution; the arguments it was started with say which.
        in_order = "PYTEST_XDIST_WORKER" not in os.environ or request.config.known_args_namespace.dist == "loadfile"
        for item in [node, *items[here + 1 : here + 2 if in_order else here + 1]]:
            if item.nodeid in self._started or not isinstance(item, pytest.Function):
                continue
            example = item.callspec.params.get("example") if item.originalname == node.originalname else None
            if isinstance(example, Example) and item.parent is node.parent and self._runs(example):
                self._count += 1  # a number, not the example's id: a daemon's socket path must stay short
                self._started[item.nodeid] = self._pool.submit(
                    self._run, example, self._root / str(self._count), dict(os.environ)
                )
        return self._started.pop(node.nodeid).result()

    def close(self) -> None:
        """Waits for an example still running (a run stopped by ``-x``), never starts another."""
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def lookahead(run: Run, root: Path, runs: Callable[[Example], bool]) -> Iterator[Lookahead]:
    ahead = Lookahead(run, root, runs)
    try:
        yield ahead
    finally:
        ahead.close()
