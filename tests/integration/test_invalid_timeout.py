"""A ``timeout`` of nan, or a negative one, is refused before anything is sent, with the ``ValueError``
openai's own client raises for it (its socket refuses it: "Invalid value NaN (not a number)", "Timeout
value out of range"); the client goes on.

It used to reach the engine's timer (``asyncio.timeout(nan)``): in-process an ``InternalServerError``
("internal error in claif_cod: ValueError: cannot convert float NaN to integer"), which openai retried
as a 500, with a "coroutine ... was never awaited" warning for each try; through the daemon a bare
``ValueError`` from the engine loop, with the same warnings.  A negative one timed the request out
(``APITimeoutError``) as if it had been sent.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

INVALID = [(float("nan"), "nan"), (-1.0, "out of range"), (float("-inf"), "out of range")]


def _ways(value: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        ({}, {"timeout": value}),  # on the call
        ({"timeout": value}, {}),  # with_options
        ({}, {"timeout": httpx2.Timeout(5, read=value)}),  # the read timeout httpx would use
    ]


def _ask(client: Any, api: str, stream: bool, **kwargs: Any) -> Any:
    if api == "chat":
        return client.chat.completions.create(messages=[{"role": "user", "content": "hi"}], stream=stream, **kwargs)
    return client.responses.create(input="hi", stream=stream, **kwargs)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_an_invalid_timeout_is_refused_before_anything_is_sent(
    client: CodexClient, codex_model_server: ModelServer, api: str, stream: bool
) -> None:
    for value, said in INVALID:
        for options, per_call in _ways(value):
            with pytest.raises(ValueError, match=said):
                _ask(client.with_options(max_retries=2, **options), api, stream, **per_call)
        with pytest.raises(ValueError, match=said):
            client.models.list(timeout=value)  # through openai's own pipeline
    assert codex_model_server.requests == []
    answer = _ask(client, api, False)
    assert (answer.choices[0].message.content if api == "chat" else answer.output_text) == "Echo: hi"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_async_invalid_timeout_is_refused_before_anything_is_sent(
    aclient: AsyncCodexClient, codex_model_server: ModelServer, api: str, stream: bool
) -> None:
    for value, said in INVALID:
        for options, per_call in _ways(value):
            with pytest.raises(ValueError, match=said):
                await _ask(aclient.with_options(max_retries=2, **options), api, stream, **per_call)
    assert codex_model_server.requests == []
    answer = await _ask(aclient, api, False)
    assert (answer.choices[0].message.content if api == "chat" else answer.output_text) == "Echo: hi"
