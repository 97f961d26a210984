"""``n > 1`` on a conversation whose thread is warm: one choice continues it, the others are new threads.

An ephemeral (anonymous) thread cannot be forked, so the extra choices start new threads seeded with
the history; each must see exactly that history, and the warm thread must answer exactly one choice
(a thread reused for a second choice would see the first choice's answer as history).
"""

from __future__ import annotations

import pytest

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_n_choices_on_a_warm_conversation(client: CodexClient, codex_model_server: ModelServer) -> None:
    messages: list[dict[str, str]] = [{"role": "user", "content": "one"}]
    first = client.chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
    assert first.choices[0].message.content == "Echo: one"
    messages += [{"role": "assistant", "content": "Echo: one"}, {"role": "user", "content": "two"}]

    second = client.chat.completions.create(model="o4-mini", messages=messages, n=3)  # type: ignore[arg-type]

    assert [c.index for c in second.choices] == [0, 1, 2]
    assert [c.message.content for c in second.choices] == ["[turn 2] Echo: two"] * 3
    warm_request, *choice_requests = codex_model_server.requests
    assert len(choice_requests) == 3  # one model request per choice, nothing else
    threads = [r.body["prompt_cache_key"] for r in choice_requests]
    assert threads.count(warm_request.body["prompt_cache_key"]) == 1, threads  # the warm thread took one choice
    assert len(set(threads)) == 3, threads  # and every other choice a thread of its own
    for request in choice_requests:  # each with the whole history, once
        assert request.messages()[-3:] == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]
        assert request.user_texts().count("one") == 1 and request.user_texts().count("two") == 1


def test_n_streamed_choices_start_in_index_order_for_openais_stream_helper(client: CodexClient) -> None:
    """The choices run at once, so any may speak first; openai's ``chat.completions.stream`` helper
    files a choice's deltas by the order choices first appear (as OpenAI starts them: 0, 1, ...)."""
    messages = [{"role": "user", "content": "[[long:3]] many"}]
    with client.chat.completions.stream(model="o4-mini", messages=messages, n=3) as stream:  # type: ignore[arg-type]
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    starts = [(c.choices[0].index, c.choices[0].delta.role, c.choices[0].delta.content) for c in chunks[:3]]
    assert starts == [(0, "assistant", ""), (1, "assistant", ""), (2, "assistant", "")]
    assert all(c.choices[0].delta.role is None for c in chunks[3:])
    assert [(c.index, c.message.content) for c in final.choices] == [
        (i, final.choices[0].message.content) for i in range(3)
    ]
    assert final.choices[0].message.content == "w1 w2 w3"  # [[long:3]]: three words
