"""Usage is summed over every model request of a turn, not taken from the last one."""

from __future__ import annotations

from pathlib import Path

import pytest

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_a_turn_with_a_tool_call_reports_the_usage_of_both_model_requests(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", sandbox_mode="danger-full-access", approval_policy="never") as client:
        completion = client.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": "run it [[tool:echo hi]]"}]
        )
    reply = completion.choices[0].message.content or ""
    assert reply.startswith("Tool said:") and len(codex_model_server.requests) == 2
    usage = completion.usage
    assert usage is not None
    # The second request resends the first one's input (its cached prefix) plus the call and its output:
    # the sum counts the first request's input on top, the last request alone would not reach twice it.
    assert usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert cached > 0 and usage.prompt_tokens >= 2 * cached, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
