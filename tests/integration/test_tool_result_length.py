"""What docs/parameters.md says of a long caller tool result: Codex keeps a function output within the
model's ``truncation_policy`` (10,000 tokens in the test catalog, as in OpenAI's models), cutting a
longer one in its middle with a ``…N tokens truncated…`` marker; ``tool_output_token_limit`` in
Codex's ``config.toml`` raises it. Nothing tells the caller otherwise, so the docs say it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claif_cod import CodexClient
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex

TOOL: Any = {"type": "function", "function": {"name": "read_doc", "parameters": {"type": "object", "properties": {}}}}
LONG = "".join(f"line {i:06d} " for i in range(8000))
"""96,000 characters, 16,000 words: beyond 10,000 tokens."""


def model_saw(codex_model_server: ModelServer) -> str:
    with CodexClient(daemon="off", model="o4-mini") as client:
        messages: list[Any] = [{"role": "user", "content": "read it [[call:read_doc]]"}]
        reply = client.chat.completions.create(messages=messages, tools=[TOOL])
        [call] = reply.choices[0].message.tool_calls or []
        messages += [reply.choices[0].message.model_dump(exclude_none=True)]
        messages += [{"role": "tool", "tool_call_id": call.id, "content": LONG}]
        client.chat.completions.create(messages=messages, tools=[TOOL])
    [output] = codex_model_server.requests[-1].function_outputs()
    return output.output


def test_a_long_tool_result_reaches_the_model_cut_in_its_middle(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    seen = model_saw(codex_model_server)
    assert seen != LONG and "tokens truncated" in seen
    assert seen.startswith(LONG[:1000]) and seen.endswith(LONG[-1000:])


def test_tool_output_token_limit_keeps_it_whole(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    write_codex_home(codex_home, codex_model_server.url, extra={"tool_output_token_limit": 50_000})
    assert model_saw(codex_model_server) == LONG
