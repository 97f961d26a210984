"""A Codex binary that is no longer there (uninstalled, or moved away under a running daemon) is the
caller's setting to mend, as a missing working directory is: each request says so, the crash-loop
breaker is not tripped by it, and Codex starts as soon as the binary is back.

Real child processes (the fake ``codex`` of tests/fakes), driven through :class:`ProcessPool` alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_codex_bin import no_server_requests, write_fake_codex

import claif_cod.engine.pool as pool_module
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.errors import CodexNotFound
from claif_cod.engine.pool import ProcessPool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals are POSIX")


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    return write_fake_codex(tmp_path)


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(handle_server_request=no_server_requests)
    yield pool
    await pool.close()


async def test_a_binary_that_is_gone_is_said_so_every_time_and_starts_as_soon_as_it_is_back(
    pool: ProcessPool, fake_codex: Path, tmp_path: Path
) -> None:
    key = ProcessKey(str(fake_codex), None, None, str(tmp_path), None, None)
    moved = fake_codex.with_name("codex.uninstalled")
    os.rename(fake_codex, moved)
    for _ in range(pool_module.CRASH_LOOP_THRESHOLD + 1):  # more than the breaker lets fail
        with pytest.raises(CodexNotFound) as gone:
            await pool.acquire(key, None)
        assert str(gone.value) == (
            f"Codex CLI binary not found. Searched: {fake_codex} (no longer there: uninstalled, or moved away?)"
        )

    os.rename(moved, fake_codex)
    server = await pool.acquire(key, None)  # at once: no back-off, no breaker to wait out
    pool.release(key)
    assert server.alive


async def test_a_binary_no_longer_executable_is_said_so_too(
    pool: ProcessPool, fake_codex: Path, tmp_path: Path
) -> None:
    key = ProcessKey(str(fake_codex), None, None, str(tmp_path), None, None)
    os.chmod(fake_codex, 0o644)
    for _ in range(pool_module.CRASH_LOOP_THRESHOLD + 1):
        with pytest.raises(CodexNotFound, match="no longer executable"):
            await pool.acquire(key, None)
    os.chmod(fake_codex, 0o755)
    server = await pool.acquire(key, None)
    pool.release(key)
    assert server.alive
