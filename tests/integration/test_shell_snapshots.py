"""Codex saves each thread's shell environment (the client's ``CODEX_API_KEY`` in it) under
``$CODEX_HOME/shell_snapshots`` with the umask's mode: claif_cod keeps that directory 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_until

from claif_cod import CodexClient

pytestmark = pytest.mark.codex

KEY = "sk-test-only-in-the-snapshot"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("before", ["missing", "open to others"])
def test_the_snapshots_holding_the_api_key_are_closed_to_other_users(
    codex_home: Path, workdir: Path, umask_022: None, before: str
) -> None:
    codex_home.chmod(0o755)  # as Codex makes ~/.codex under umask 022
    snapshots = codex_home / "shell_snapshots"
    if before == "open to others":
        snapshots.mkdir(mode=0o755)
        snapshots.chmod(0o755)
    with CodexClient(daemon="off", api_key=KEY) as client:
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Echo: hi"
        wait_until(lambda: any(KEY in p.read_text() for p in snapshots.glob("*.sh")), "a shell snapshot")
    assert stat.S_IMODE(snapshots.stat().st_mode) == 0o700
