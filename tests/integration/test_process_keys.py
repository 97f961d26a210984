"""Which warm Codex process a request's settings select (``Engine.resolve``), remembered per settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claif_cod.engine.config import CodexConfig
from claif_cod.engine.engine import Engine

pytestmark = pytest.mark.codex


async def test_each_set_of_settings_keeps_its_own_process_key(codex_home: Path, tmp_path: Path) -> None:
    engine = Engine()
    try:
        a, b = str(tmp_path / "a"), str(tmp_path / "b")
        for folder in (a, b):  # a key is resolved for directories that are there
            os.mkdir(folder)
        settings = [
            CodexConfig(working_dir=a),
            CodexConfig(working_dir=b),
            CodexConfig(working_dir=a, api_key="sk-one"),
            CodexConfig(working_dir=a, api_key="sk-two"),
            CodexConfig(working_dir=a, sandbox_mode="read-only"),
        ]
        keys = [await engine.resolve(config) for config in settings]
        assert len(set(keys)) == len(settings)
        assert [await engine.resolve(config) for config in settings] == keys  # again, from memory
        assert await engine.resolve(CodexConfig(working_dir=a)) == keys[0]  # equal settings, another object
    finally:
        await engine.close()
