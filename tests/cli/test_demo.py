"""``python -m claif_cod.demo``: the README's first command, offline; and what ``--live`` adds."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from claif_cod.demo import QUESTIONS, _Retries

pytestmark = pytest.mark.codex


def test_the_offline_demo_chats_three_turns_and_exits_quietly(env: dict[str, str], workdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claif_cod.demo"], env=env, cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.count("codex> ") == len(QUESTIONS)
    assert done.stdout.count("usage: prompt=") == len(QUESTIONS)
    assert "models: " in done.stdout


def test_live_shows_codexs_retries(capsys: pytest.CaptureFixture[str]) -> None:
    """With no network Codex waits for it for ever: ``--live`` says so rather than nothing at all."""
    record = logging.makeLogRecord(
        {"msg": "turn.codex_retrying", "said": "Reconnecting... waiting for network", "details": "no route"}
    )
    _Retries().emit(record)
    _Retries().emit(logging.makeLogRecord({"msg": "engine.other"}))
    assert capsys.readouterr().err == "\n   codex: Reconnecting... waiting for network (no route)\n"
