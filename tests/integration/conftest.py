from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from claif_cod import AsyncCodexClient, CodexClient


@pytest.fixture
def client(codex_home: Path, workdir: Path) -> Iterator[CodexClient]:
    with CodexClient(daemon="off", model="o4-mini") as c:
        yield c


@pytest.fixture
async def aclient(codex_home: Path, workdir: Path) -> AsyncIterator[AsyncCodexClient]:
    async with AsyncCodexClient(daemon="off", model="o4-mini") as c:
        yield c
