"""Codex keeps prompts (rollouts, thread history) and each thread's shell environment (the client's
``CODEX_API_KEY`` in it) in its home, written with the umask's mode: claif_cod keeps the home 0700."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_until

from claif_cod import CodexClient
from claif_cod.engine.private_home import keep_home_private

KEY = "sk-test-only-in-the-snapshot"
PROMPT = "PRIVATE-PROMPT-4471"


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.codex
@pytest.mark.parametrize(("mask", "made"), [(0o022, 0o755), (0o000, 0o777)], ids=["umask 022", "umask 000"])
def test_the_home_holding_the_prompts_and_the_api_key_is_closed_to_other_users(
    codex_home: Path, workdir: Path, mask: int, made: int
) -> None:
    codex_home.chmod(made)  # as Codex makes ~/.codex under that umask
    with umask(mask), CodexClient(daemon="off", api_key=KEY) as client:
        assert client.responses.create(model="o4-mini", input=PROMPT).output_text == f"Echo: {PROMPT}"
        snapshots = codex_home / "shell_snapshots"
        wait_until(lambda: any(KEY in p.read_text() for p in snapshots.glob("*.sh")), "a shell snapshot")
    rollouts = [p for p in (codex_home / "sessions").rglob("*.jsonl") if PROMPT in p.read_text()]
    assert rollouts  # a stored response's thread, which previous_response_id continues
    assert stat.S_IMODE(codex_home.stat().st_mode) == 0o700


def test_a_missing_default_home_is_made_private_and_a_missing_codex_home_is_left_to_codex(tmp_path: Path) -> None:
    with umask(0o000):
        keep_home_private({"HOME": str(tmp_path / "home")})  # $HOME missing too
    assert stat.S_IMODE((tmp_path / "home" / ".codex").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    keep_home_private({"CODEX_HOME": str(tmp_path / "typo")})  # Codex refuses a $CODEX_HOME that is not there
    assert not (tmp_path / "typo").exists()


def test_a_home_of_another_user_is_left_alone(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to make a directory another user owns")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    theirs.chmod(0o755)
    os.chown(theirs, 12345, 12345)
    keep_home_private({"CODEX_HOME": str(theirs)})
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o755
