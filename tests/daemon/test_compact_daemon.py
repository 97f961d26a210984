"""``responses.compact`` through both daemon doors, with the real Codex binary: the socket
(``CodexClient(daemon="require")``, and the ``responses.compact`` method its ``hello`` lists) and
``serve --http`` (the plain ``openai`` SDK) run the same turn on the same stored responses."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from test_conversations_daemon import raw_connection
from test_responses_doors import Doors
from test_responses_doors import doors as doors  # the fixture, re-exported by its name

from claif_cod.openai_compat.responses_compact_request import COMPACT_PROMPT
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_compacted_through_one_door_and_read_back_through_the_other(
    doors: Doors, codex_model_server: ModelServer
) -> None:
    with doors.socket() as client:
        first = client.responses.create(model="o4-mini", input="first")
    compacted = doors.http.responses.compact(model="o4-mini", previous_response_id=first.id)
    assert [item.type for item in compacted.output] == ["message", "compaction"]
    assert codex_model_server.requests[-1].user_texts()[-1] == COMPACT_PROMPT
    kept: list[Any] = [item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]
    with doors.socket() as client:
        again = client.responses.create(model="o4-mini", input=[*kept, {"role": "user", "content": "go on"}])
        assert again.output_text.endswith("Echo: go on")
        with pytest.raises(openai.BadRequestError) as missing:
            client.responses.compact(model="o4-mini", previous_response_id="resp_missing")
        assert missing.value.param == "previous_response_id"  # type: ignore[attr-defined]
        raw = client.responses.with_raw_response.compact(
            model="o4-mini", input=[{"role": "user", "content": "hi"}], prompt_cache_key="k"
        )
        assert raw.headers["x-claif-cod-ignored-params"] == "prompt_cache_key"
    summary = codex_model_server.requests[-2].user_texts()  # "go on"'s turn
    assert any(text.startswith("The conversation before this point was compacted") for text in summary)


def test_an_editor_compacts_with_the_documented_method(doors: Doors) -> None:
    """``hello`` lists ``responses.compact`` (checked by ``raw_connection``); its params are
    ``responses.create``'s (a body and options)."""
    with raw_connection(doors) as call:
        body = {
            "model": "o4-mini",
            "input": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
        }
        reply = call("responses.compact", {"body": body, "options": {"working_dir": str(doors.workdir)}})
    compacted = reply["result"]
    assert compacted["object"] == "response.compaction" and compacted["id"].startswith("resp_")
    user, item = compacted["output"]
    assert (user["role"], user["content"]) == ("user", [{"type": "input_text", "text": "one"}])
    assert item["type"] == "compaction" and item["encrypted_content"]
    assert compacted["usage"]["total_tokens"] > 0
