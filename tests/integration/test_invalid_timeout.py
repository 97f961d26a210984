"""A ``timeout`` of nan is refused before anything is sent, with the ``ValueError`` openai's own client
raises for it (its socket refuses it: "Invalid value NaN (not a number)"); the client goes on.

It used to reach the engine's timer (``asyncio.timeout(nan)``): in-process an ``InternalServerError``
("internal error in claif_cod: ValueError: cannot convert float NaN to integer"), which openai retried
as a 500, with a "coroutine ... was never awaited" warning for each try; through the daemon a bare
``ValueError`` from the engine loop, with the same warnings.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

NAN = float("nan")
WAYS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {"timeout": NAN}),  # on the call
    ({"timeout": NAN}, {}),  # with_options
    ({}, {"timeout": httpx2.Timeout(5, read=NAN)}),  # the read timeout httpx would use
]


def _ask(client: Any, api: str, stream: bool, **kwargs: Any) -> Any:
    if api == "chat":
        return client.chat.completions.create(messages=[{"role": "user", "content": "hi"}], stream=stream, **kwargs)
    return client.responses.create(input="hi", stream=stream, **kwargs)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_nan_timeout_is_refused_before_anything_is_sent(
    client: CodexClient, codex_model_server: ModelServer, api: str, stream: bool
) -> None:
    for options, per_call in WAYS:
        with pytest.raises(ValueError, match="nan"):
            _ask(client.with_options(max_retries=2, **options), api, stream, **per_call)
    with pytest.raises(ValueError, match="nan"):
        client.models.list(timeout=NAN)  # through openai's own pipeline
    assert codex_model_server.requests == []
    answer = _ask(client, api, False)
    assert (answer.choices[0].message.content if api == "chat" else answer.output_text) == "Echo: hi"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_async_nan_timeout_is_refused_before_anything_is_sent(
    aclient: AsyncCodexClient, codex_model_server: ModelServer, api: str, stream: bool
) -> None:
    for options, per_call in WAYS:
        with pytest.raises(ValueError, match="nan"):
            await _ask(aclient.with_options(max_retries=2, **options), api, stream, **per_call)
    assert codex_model_server.requests == []
    answer = await _ask(aclient, api, False)
    assert (answer.choices[0].message.content if api == "chat" else answer.output_text) == "Echo: hi"
