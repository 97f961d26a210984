"""Named sessions in the engine itself (no daemon)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_a_session_bound_to_a_thread_that_never_ran_a_turn_starts_afresh(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Codex writes a rollout only at a thread's first turn: a crash right after binding leaves
    nothing to resume, and the session must not stay broken."""
    with CodexClient(daemon="off", session_id="fresh") as client:
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "one"}])
        assert client.backend is not None and client.backend.local is not None
        sessions = client.backend.local.engine.sessions
        record = sessions.get("fresh")
        assert record is not None
        sessions.put(dataclasses.replace(record, thread_id="00000000-0000-7000-8000-000000000000", turns=0))
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "two"}])
    assert reply.choices[0].message.content == "Echo: two"
    record = sessions.get("fresh")
    assert record is not None and record.thread_id != "00000000-0000-7000-8000-000000000000"
