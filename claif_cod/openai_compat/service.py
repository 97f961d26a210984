"""``chat.completions`` and ``models`` on top of the engine: the one place OpenAI meets Codex.

Both the in-process transport and the daemon call this service, so a request behaves the
same whichever path it takes.
"""

from __future__ import annotations

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.engine import Engine
from claif_cod.engine.errors import InvalidRequest
from claif_cod.openai_compat.chat_history import HistoryMemo
from claif_cod.openai_compat.chat_run import ChatRun
from claif_cod.openai_compat.errors import translate, translated_stream
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.request import no_session, parse_chat_request
from claif_cod.openai_compat.schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    Model,
    ModelList,
    Usage,
)
from claif_cod.openai_compat.tool_calls import chat_tool_calls


class ChatService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._history = HistoryMemo()

    # --- public API ------------------------------------------------------------------------

    async def complete(self, body: bytes, options: RequestOptions) -> tuple[ChatCompletion, tuple[str, ...]]:
        """A whole ``chat.completion`` plus the names of parameters that had no effect."""
        try:
            run = await self._prepare(body, options)
            results = await run.gather()
        except Exception as exc:
            raise translate(exc) from exc
        completion = ChatCompletion(
            id=run.completion_id,
            created=run.created,
            model=run.model,
            choices=[
                Choice(
                    index=r.index,
                    message=AssistantMessage(
                        content=r.text.text or (None if r.tool_calls else ""),
                        tool_calls=chat_tool_calls(r.tool_calls) if r.tool_calls else None,
                    ),
                    finish_reason=r.finish_reason,
                )
                for r in results
            ],
            usage=Usage.from_turns([r.usage for r in results]),
            interrupted=True if any(r.interrupted for r in results) else msgspec.UNSET,
        )
        return completion, run.parsed.ignored

    async def stream(
        self, body: bytes, options: RequestOptions
    ) -> tuple[ChainedStream[ChatCompletionChunk], tuple[str, ...]]:
        """Chunks as Codex produces them.  Failures before the first chunk raise here, so
        callers can still answer with a proper HTTP status; later ones raise from the iterator."""
        try:
            run = await self._prepare(body, options)
        except Exception as exc:
            raise translate(exc) from exc
        chunks = run.chunks()
        try:
            first = await chunks.__anext__()  # a stream always has its finish chunk
        except Exception as exc:
            await chunks.aclose()
            raise translate(exc) from exc
        return translated_stream(first, chunks), run.parsed.ignored

    async def models(self, options: RequestOptions) -> ModelList:
        try:
            key = await self.engine.resolve(options.config)
            models = await self.engine.list_models(key, options.config.api_key)
        except Exception as exc:
            raise translate(exc) from exc
        return ModelList(data=[Model(id=m.id, created=0, owned_by="openai") for m in models if not m.hidden])

    async def _prepare(self, body: bytes, options: RequestOptions) -> ChatRun:
        parsed = parse_chat_request(
            body, default_model=options.default_model, strict=options.strict, memo=self._history
        )
        if parsed.request.n > 1 and options.session_id is not None:  # the body's session_id is checked in parsing
            raise InvalidRequest("n > 1 cannot be combined with a named session", param="n")
        if options.session_id is not None:
            no_session(parsed.tools)
        await parsed.with_images()
        key = await self.engine.resolve(options.config)
        return ChatRun(self.engine, key, options, parsed)


__all__ = ["ChatService"]
