"""Codex processes of several engines (two in-process clients in one script) start on one fresh
``CODEX_HOME`` in turns (engine/home_turns.py): Codex fails to start beside another one that is
initialising the home's sqlite state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from claif_cod import AsyncCodexClient
from claif_cod.engine.home_turns import LOCK_NAME
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex


async def test_two_in_process_clients_first_requests_at_once_on_a_fresh_home_all_answer(
    tmp_path: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = write_codex_home(tmp_path / "fresh-home", codex_model_server.url)  # no sqlite state in it yet
    monkeypatch.setenv("CODEX_HOME", str(home))
    async with AsyncCodexClient(daemon="off") as a, AsyncCodexClient(daemon="off") as b:
        answers = await asyncio.gather(
            *(
                client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": f"hi {i}"}])
                for i, client in enumerate([a, b, a, b])
            )
        )
    assert [answer.choices[0].message.content for answer in answers] == [f"Echo: hi {i}" for i in range(4)]
    assert (home / LOCK_NAME).stat().st_mode & 0o777 == 0o600
