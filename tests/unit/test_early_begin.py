"""The early dispatch is under way, its first message to Codex out, by the time create() goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from claif_cod.engine.config import CodexConfig
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.transport.backend import Reply
from claif_cod.transport.transport_core import TransportCore


async def test_begin_returns_once_the_dispatch_took_its_first_step(tmp_path: Path) -> None:
    core = TransportCore(RequestOptions(config=CodexConfig(working_dir=str(tmp_path))), "off")
    steps: list[tuple[str, bytes, float | None]] = []
    never = asyncio.Event()

    async def dispatch(method: str, path: str, body: bytes, timeout: float | None, *_: Any, **__: Any) -> Reply:
        steps.append((path, body, timeout))  # where the engine parses the body and writes to Codex
        await never.wait()
        raise AssertionError("unreachable")

    core.dispatch = dispatch  # type: ignore[method-assign]
    task = await core.begin("/chat/completions", b'{"messages": []}', 2.5)
    assert steps == [("/chat/completions", b'{"messages": []}', 2.5)]
    task.cancel()
    await asyncio.wait({task})
