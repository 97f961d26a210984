"""A client of the daemon never loads the engine: Codex runs in the daemon, and the engine's
modules (its app-server connection, turns, services) are only imported where Codex runs in the
caller's process, on first use."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from fresh_script import run_script

pytestmark = pytest.mark.codex

SCRIPT = """
import asyncio
import sys
from claif_cod import AsyncCodexClient, CodexClient

ENGINE = (
    "claif_cod.transport.in_process",
    "claif_cod.engine.engine",
    "claif_cod.engine.appserver",
    "claif_cod.engine.turns",
    "claif_cod.openai_compat.service",
    "claif_cod.openai_compat.responses_service",
    "claif_cod.openai_compat.conversations_service",
    "claif_cod.openai_compat.responses_compact",
)
hi = [{"role": "user", "content": "hi"}]

with CodexClient(daemon="require", model="o4-mini") as client:
    print(client.chat.completions.create(messages=hi).choices[0].message.content)
    print("".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(messages=hi, stream=True)))
    print(client.responses.create(input="there").output_text)
    print(client.responses.compact(model="o4-mini", input="long").output[-1].type)
    print(len(client.models.list().data) > 0)


async def main():
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        print((await client.chat.completions.create(messages=hi)).choices[0].message.content)
        print((await client.responses.create(input="there", stream=False)).output_text)


asyncio.run(main())
print("engine modules:", [name for name in ENGINE if name in sys.modules])
"""


def test_a_daemon_client_never_imports_the_engine(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    done = run_script(SCRIPT, workdir, daemon_env)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "Echo: hi",
        "Echo: hi",
        "Echo: there",
        "compaction",
        "True",
        "Echo: hi",
        "Echo: there",
        "engine modules: []",
    ]
