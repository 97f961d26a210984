"""Codex starts without needless work: no ``git ls-remote`` to GitHub for the plugin marketplace."""

from __future__ import annotations

from pathlib import Path

import pytest

from claif_cod import CodexClient

pytestmark = pytest.mark.codex


def test_starting_codex_runs_no_git(
    codex_home: Path, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "git-trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # any git Codex runs (it inherits our environment) logs here
    with CodexClient(daemon="off", model="o4-mini") as client:
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Echo: hi"
        # Codex starts its plugin sync during start-up: without the option the trace exists by now.
    assert not trace.exists(), trace.read_text()
