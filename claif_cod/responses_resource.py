"""``client.responses`` of the Codex clients: openai's Responses resource with claif_cod's ``create``.

In a module of its own, imported when a client's ``responses`` is first used: openai's Responses
resource imports its streaming helpers with it (~75 ms of a fresh process here, a twentieth of a
script's first answer), which a script that only chats never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openai.resources.responses.responses import AsyncResponses, Responses
from openai.types.responses import Response, ResponseStreamEvent

from claif_cod.event_stream import AsyncEventStream, EventStream
from claif_cod.fast_create import Endpoint, defaulted, fast_or_openai, fast_or_openai_async, keywords, stream_class
from claif_cod.transport.early import RESPONSES_PATH

RESPONSES = Endpoint(keywords(Responses.create), ())

# The stream classes create() returns, subscripted once rather than on every call.
_EVENTS = stream_class(EventStream[ResponseStreamEvent])
_ASYNC_EVENTS = stream_class(AsyncEventStream[ResponseStreamEvent])


def _defaulted(client: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The client's ``model=`` for a new response's stream, not for one of a stored response (openai
    refuses a ``model`` beside ``response_id``)."""
    return kwargs if "response_id" in kwargs else defaulted(client, kwargs)


class CodexResponses(Responses):
    if not TYPE_CHECKING:

        def create(self, **kwargs: Any) -> Any:
            return fast_or_openai(super().create, self, kwargs, RESPONSES, RESPONSES_PATH, Response, _EVENTS)

        def stream(self, **kwargs: Any) -> Any:
            return super().stream(**_defaulted(self._client, kwargs))


class AsyncCodexResponses(AsyncResponses):
    if not TYPE_CHECKING:

        async def create(self, **kwargs: Any) -> Any:
            return await fast_or_openai_async(
                super().create, self, kwargs, RESPONSES, RESPONSES_PATH, Response, _ASYNC_EVENTS
            )

        def stream(self, **kwargs: Any) -> Any:
            return super().stream(**_defaulted(self._client, kwargs))
