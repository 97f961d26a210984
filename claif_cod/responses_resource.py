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
from claif_cod.fast_create import Endpoint, NotPlain, create, create_async, defaulted, keywords, prepare, stream_class
from claif_cod.transport.early import RESPONSES_PATH

RESPONSES = Endpoint(keywords(Responses.create), ())

# The stream classes create() returns, subscripted once rather than on every call.
_EVENTS = stream_class(EventStream[ResponseStreamEvent])
_ASYNC_EVENTS = stream_class(AsyncEventStream[ResponseStreamEvent])


class CodexResponses(Responses):
    if not TYPE_CHECKING:

        def create(self, **kwargs: Any) -> Any:
            fast = prepare(kwargs, RESPONSES)
            if fast is None:
                return super().create(**kwargs)
            try:
                return create(self, RESPONSES_PATH, fast, Response, _EVENTS)
            except NotPlain:
                return super().create(**kwargs)

        def stream(self, **kwargs: Any) -> Any:
            return super().stream(**defaulted(self._client, kwargs))


class AsyncCodexResponses(AsyncResponses):
    if not TYPE_CHECKING:

        async def create(self, **kwargs: Any) -> Any:
            fast = prepare(kwargs, RESPONSES)
            if fast is None:
                return await super().create(**kwargs)
            try:
                return await create_async(self, RESPONSES_PATH, fast, Response, _ASYNC_EVENTS)
            except NotPlain:
                return await super().create(**kwargs)

        def stream(self, **kwargs: Any) -> Any:
            return super().stream(**defaulted(self._client, kwargs))
