"""``with_options()`` / ``copy()``: a client with other request defaults on the same Codex engine
(real binary, offline model)."""

from __future__ import annotations

import gc
from pathlib import Path

import openai
import pytest
from chat_messages import user

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_with_options_continues_on_the_same_engine_with_its_own_defaults(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    client.chat.completions.create(model="o4-mini", messages=[user("one")])
    quick = client.with_options(timeout=30, max_retries=0, default_headers={"x-trace": "1"})
    assert isinstance(quick, CodexClient) and isinstance(quick, openai.OpenAI)
    assert (quick.timeout, quick.max_retries, quick.default_headers["x-trace"]) == (30, 0, "1")
    assert "x-trace" not in client.default_headers and client.timeout != 30  # the original is unchanged
    history = [user("one"), {"role": "assistant", "content": "Echo: one"}, user("two")]

    second = quick.chat.completions.create(model="o4-mini", messages=history)

    assert second.choices[0].message.content == "[turn 2] Echo: two"
    one, two = codex_model_server.requests
    assert two.body["prompt_cache_key"] == one.body["prompt_cache_key"]  # the original's warm thread
    assert client.copy(timeout=30).models.list().data  # copy() is the same as with_options()


def test_a_copys_timeout_applies_to_its_requests(client: CodexClient) -> None:
    client.chat.completions.create(model="o4-mini", messages=[user("before")])  # openai caches client.chat
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=1).chat.completions.create(model="o4-mini", messages=[user("[[stall]]")])
    assert client.chat.completions.create(model="o4-mini", messages=[user("after")]).choices[0].message.content == (
        "Echo: after"
    )


def test_the_engine_lives_while_any_copy_does(codex_home: Path, workdir: Path) -> None:
    copy = CodexClient(daemon="off", model="o4-mini").with_options(timeout=30)
    gc.collect()  # the original is gone: its copy still has the engine
    assert copy.chat.completions.create(messages=[user("hi")]).choices[0].message.content == "Echo: hi"  # type: ignore[call-overload]
    original = copy.with_options(max_retries=1)
    del copy
    gc.collect()
    assert original.chat.completions.create(messages=[user("hi")]).choices[0].message.content == "Echo: hi"  # type: ignore[call-overload]
    original.close()


def test_settings_a_copy_cannot_change_are_refused_by_name(client: CodexClient) -> None:
    with pytest.raises(TypeError, match=r"cannot change api_key, base_url"):
        client.with_options(base_url="http://elsewhere/v1", api_key="sk-other")
    with pytest.raises(ValueError, match="mutually exclusive"):
        client.with_options(default_headers={"a": "1"}, set_default_headers={"b": "2"})


async def test_the_async_client_copies_too(aclient: AsyncCodexClient) -> None:
    quick = aclient.with_options(max_retries=0, timeout=30)
    assert isinstance(quick, AsyncCodexClient) and quick.max_retries == 0
    completion = await quick.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert completion.choices[0].message.content == "Echo: hi"


def closed_client_error() -> tuple[type[Exception], str]:
    """What this openai version raises for a request on a closed client (3.0 an APIConnectionError, newer
    ones httpx's RuntimeError), and its message."""
    plain = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1", max_retries=0)
    plain.close()
    try:
        plain.models.list()
    except Exception as exc:
        return type(exc), str(exc)
    raise AssertionError("a closed openai client sent a request")


def test_closing_a_copy_closes_the_engine_it_shares(codex_home: Path, workdir: Path) -> None:
    original = CodexClient(daemon="off", model="o4-mini")
    original.with_options(timeout=30).close()  # as openai's copies, which share their HTTP client
    for request in (
        lambda: original.chat.completions.create(messages=[user("hi")]),  # type: ignore[call-overload]
        lambda: original.models.list(),
    ):
        kind, message = closed_client_error()
        with pytest.raises(kind) as raised:  # as a closed openai client
            request()
        assert str(raised.value) == message
    original.close()
