"""``responses.compact`` in-process, with the real Codex binary: the summary is a Codex turn on the
conversation (its input, or the stored chain ``previous_response_id`` names), answered as OpenAI's
``CompactedResponse`` (the user messages, then one ``compaction`` item), and that item, sent back
as input, is the summary in the next turn's history."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.responses import CompactedResponse
from test_responses_stored import thread_of

from claif_cod import CodexClient
from claif_cod.openai_compat import responses_compact_request
from claif_cod.openai_compat.compaction_item import SUMMARY_HEADER
from claif_cod.openai_compat.responses_compact_request import COMPACT_PROMPT
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

HISTORY: list[Any] = [
    {"role": "user", "content": "plan the trip"},
    {"role": "assistant", "content": "Go by train."},
    {"role": "user", "content": "book it"},
]


def as_input(compacted: CompactedResponse) -> list[Any]:
    """The output as an agent keeps it, to send as input later."""
    return [item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]


def test_compacting_input_answers_the_user_messages_and_one_compaction_item(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    compacted = client.responses.compact(model="o4-mini", input=HISTORY)
    assert isinstance(compacted, CompactedResponse) and compacted.object == "response.compaction"
    *users, item = compacted.output
    assert [(u.role, u.content[0].text) for u in users] == [("user", "plan the trip"), ("user", "book it")]  # type: ignore[union-attr]
    assert item.type == "compaction" and item.id.startswith("cmp_")
    assert compacted.usage.total_tokens > 0
    [asked] = codex_model_server.requests
    assert asked.user_texts()[-1] == COMPACT_PROMPT  # the summary is Codex's answer to it, on the history
    assert ("assistant", "Go by train.") in asked.messages()

    again = client.responses.create(model="o4-mini", input=[*as_input(compacted), {"role": "user", "content": "go on"}])
    assert again.output_text.endswith("Echo: go on")
    resumed = codex_model_server.requests[1]
    summaries = [text for text in resumed.user_texts() if text.startswith(SUMMARY_HEADER)]
    assert len(summaries) == 1 and "Echo: Compact this conversation" in summaries[0]  # what the model wrote
    assert ("assistant", "Go by train.") not in resumed.messages()  # compacted away
    assert resumed.user_texts()[-1] == "go on" and "plan the trip" in resumed.user_texts()


def test_compacting_a_stored_chain_keeps_the_chain_as_it_was(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.responses.create(model="o4-mini", input="first")
    second = client.responses.create(model="o4-mini", input="second", previous_response_id=first.id)
    compacted = client.responses.compact(model="o4-mini", previous_response_id=second.id)
    assert [u.content[0].text for u in compacted.output[:-1]] == ["first", "second"]  # type: ignore[union-attr]
    summarised = codex_model_server.requests[2]
    assert thread_of(summarised) == thread_of(codex_model_server.requests[1])  # on the chain's own thread
    assert summarised.user_texts()[-1] == COMPACT_PROMPT
    third = client.responses.create(model="o4-mini", input="third", previous_response_id=second.id)
    assert third.output_text.endswith("Echo: third")
    assert COMPACT_PROMPT not in codex_model_server.requests[3].user_texts()  # the chain never saw the summary turn


def test_what_cannot_be_compacted_or_read_is_refused(
    client: CodexClient, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any turn, but for a summary cut short, which is an error rather than a compaction."""
    foreign = {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAAABo-not-ours"}
    with pytest.raises(openai.BadRequestError, match="not made by claif_cod") as unreadable:
        client.responses.create(model="o4-mini", input=[foreign, {"role": "user", "content": "hi"}])  # type: ignore[list-item]
    assert unreadable.value.param == "input[0].encrypted_content"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as nothing:
        client.responses.compact(model="o4-mini")
    assert nothing.value.param == "input"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.compact(model="o4-mini", previous_response_id="resp_missing")
    assert unknown.value.param == "previous_response_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError, match="strict mode: Codex cannot honour prompt_cache_key"):
        client.responses.compact(model="o4-mini", input=HISTORY, prompt_cache_key="k", extra_body={"strict": True})
    assert not codex_model_server.requests
    with monkeypatch.context() as patched:  # the model stops the summary for length
        patched.setattr(responses_compact_request, "COMPACT_PROMPT", f"{COMPACT_PROMPT} [[incomplete]]")
        with pytest.raises(openai.InternalServerError, match="summary turn ended incomplete"):
            client.with_options(max_retries=0).responses.compact(model="o4-mini", input=HISTORY)
    assert len(codex_model_server.requests) == 1
    raw = client.responses.with_raw_response.compact(model="o4-mini", input=HISTORY, prompt_cache_key="k")  # a turn
    assert raw.headers["x-claif-cod-ignored-params"] == "prompt_cache_key"
    assert raw.parse().output[-1].type == "compaction"
