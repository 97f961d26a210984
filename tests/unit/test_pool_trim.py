"""The process cap after a burst: idle processes above it are closed as holds are let go, oldest first.

Real child processes (the fake ``codex`` of tests/fakes), driven through :class:`ProcessPool` alone.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_codex_bin import no_server_requests, write_fake_codex

from claif_cod.engine.appserver import AppServer
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.pool import ProcessPool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals are POSIX")


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    return write_fake_codex(tmp_path)


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(handle_server_request=no_server_requests, max_processes=1)
    yield pool
    await pool.close()


def key(fake_codex: Path, tmp_path: Path, name: str) -> ProcessKey:
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    return ProcessKey(str(fake_codex), None, None, str(directory), None, None)


async def held(pool: ProcessPool, process: ProcessKey, holds: int = 1) -> AppServer:
    """A process working for someone, as the engine holds one for a turn (and an approval within it)."""
    server = await pool.acquire(process, None)
    for _ in range(holds):
        pool.hold(server)
    pool.release(process)
    return server


def live(pool: ProcessPool) -> list[str]:
    return [Path(k.working_dir).name for k, _ in pool.servers()]


async def test_a_burst_above_the_cap_is_trimmed_as_its_holds_are_let_go(
    pool: ProcessPool, fake_codex: Path, tmp_path: Path
) -> None:
    a = await held(pool, key(fake_codex, tmp_path, "a"), holds=2)  # a turn and its pending approval
    b = await held(pool, key(fake_codex, tmp_path, "b"))
    c = await held(pool, key(fake_codex, tmp_path, "c"))
    assert live(pool) == ["a", "b", "c"]  # the cap of 1 is exceeded while every process works

    pool.let_go(a)  # the approval is answered; the turn goes on
    assert live(pool) == ["a", "b", "c"] and a.alive
    pool.let_go(b)  # b's turn ends: b is idle and above the cap
    assert live(pool) == ["a", "c"] and not b.alive
    pool.let_go(a)
    assert live(pool) == ["c"] and not a.alive
    pool.let_go(c)  # down to the cap: the last process stays warm
    assert live(pool) == ["c"] and c.alive


async def test_the_least_recently_used_idle_process_goes_first(
    pool: ProcessPool, fake_codex: Path, tmp_path: Path
) -> None:
    first = await held(pool, key(fake_codex, tmp_path, "first"))
    acquiring = key(fake_codex, tmp_path, "acquiring")
    caller = await pool.acquire(acquiring, None)  # acquired, not yet released: never trimmed either
    last = await held(pool, key(fake_codex, tmp_path, "last"))
    pool.let_go(first)
    assert live(pool) == ["acquiring", "last"] and not first.alive and caller.alive
    pool.release(acquiring)  # idle now, but releasing trims nothing: a hold may follow at once
    assert live(pool) == ["acquiring", "last"]
    pool.let_go(last)  # both idle, one above the cap: the one used longer ago goes
    assert live(pool) == ["last"] and not caller.alive and last.alive


async def test_a_process_answering_a_request_is_not_trimmed(fake_codex: Path, tmp_path: Path) -> None:
    """Between acquiring a process and holding it for a turn, the engine asks it things (thread/start...)."""
    pool = ProcessPool(
        handle_server_request=no_server_requests,
        max_processes=1,
        base_env={**os.environ, "FAKE_CODEX_IGNORE": "model/list"},  # its answer never comes
    )
    try:
        asking = key(fake_codex, tmp_path, "asking")
        server = await pool.acquire(asking, None)
        pool.release(asking)
        question = asyncio.create_task(server.request_raw("model/list", None, timeout=30))
        while not server.requests_in_flight:
            assert not question.done(), question
            await asyncio.sleep(0)
        other = await held(pool, key(fake_codex, tmp_path, "other"))
        pool.let_go(other)  # "asking" was used longer ago, but it is waiting for an answer
        assert live(pool) == ["asking"] and server.alive and not other.alive
        question.cancel()
        await asyncio.gather(question, return_exceptions=True)
    finally:
        await pool.close()


async def test_at_the_cap_an_idle_process_closes_before_another_directory_spawns(
    pool: ProcessPool, fake_codex: Path, tmp_path: Path
) -> None:
    older = await pool.acquire(key(fake_codex, tmp_path, "older"), None)
    pool.release(key(fake_codex, tmp_path, "older"))  # idle; releasing trims nothing by itself
    newer = await pool.acquire(key(fake_codex, tmp_path, "newer"), None)
    # Closed, and waited for, before the new process started: never two processes at a cap of 1.
    assert not older.alive and newer.alive
    assert live(pool) == ["newer"]
