"""``chat.completions`` and ``models`` on top of the engine: the one place OpenAI meets Codex.

Both the in-process transport and the daemon call this service, so a request behaves the
same whichever path it takes.
"""

from __future__ import annotations

import asyncio

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.engine import Engine
from claif_cod.engine.errors import EngineError, InvalidRequest
from claif_cod.engine.session_order import Ticket
from claif_cod.engine.waiting import within
from claif_cod.engine.wire import CodexModel
from claif_cod.openai_compat.chat_history import HistoryMemo
from claif_cod.openai_compat.chat_run import ChatRun, session_of
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail, translate, translate_chat, translated_stream
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.request import ParsedRequest, no_session, parse_chat_request
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
        parsed = self.parse(body, options)
        ticket = self._ticket(parsed, options)
        try:
            run = await self._prepare(parsed, options, ticket)
            results = await run.gather()
        except Exception as exc:
            raise translate_chat(exc) from exc
        finally:
            if ticket is not None:
                ticket.done()
        completion = ChatCompletion(
            id=run.completion_id,
            created=run.created,
            model=run.model,
            choices=[
                Choice(
                    index=r.index,
                    message=AssistantMessage(
                        content=r.text.text or (None if r.tool_calls else ""),
                        tool_calls=chat_tool_calls(r.tool_calls) if r.tool_calls else msgspec.UNSET,
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
        """Chunks as Codex produces them, plus the names of parameters that had no effect."""
        parsed = self.parse(body, options)
        return await self.stream_parsed(parsed, options), parsed.ignored

    def parse(self, body: bytes, options: RequestOptions) -> ParsedRequest:
        """The request read and checked, before anything waits: what it ignores is known from here
        (``claif-codd --http`` may have to send it in a header before the turn says anything)."""
        try:
            parsed = parse_chat_request(
                body, default_model=options.default_model, strict=options.strict, memo=self._history
            )
            if parsed.request.choices > 1 and options.session_id is not None:  # the body's is checked in parsing
                raise InvalidRequest("n > 1 cannot be combined with a named session", param="n")
            if options.session_id is not None:
                no_session(parsed.tools)
        except Exception as exc:
            raise translate_chat(exc) from exc
        return parsed

    async def stream_parsed(self, parsed: ParsedRequest, options: RequestOptions) -> ChainedStream[ChatCompletionChunk]:
        """:meth:`stream` of a request :meth:`parse` read. Failures before the first chunk raise here, so
        callers can still answer with a proper HTTP status; later ones raise from the iterator."""
        ticket = self._ticket(parsed, options)
        try:
            try:
                run = await self._prepare(parsed, options, ticket)
            except Exception as exc:
                raise translate_chat(exc) from exc
            chunks = run.chunks()
            try:
                first = await chunks.__anext__()  # a stream always has its finish chunk
            except Exception as exc:
                await chunks.aclose()
                raise translate_chat(exc) from exc
        finally:
            if ticket is not None:
                ticket.done()
        return translated_stream(first, chunks, translating=translate_chat)

    async def models(self, options: RequestOptions) -> ModelList:
        """Codex's models, within the request's ``timeout`` (the first may have to start Codex)."""
        try:
            models = await within(self._models(options), options.timeout)
        except Exception as exc:
            if isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, EngineError):  # the caller's deadline
                message = f"models.list took longer than its timeout of {options.timeout:g} s"
                raise APIFailure("timeout", 408, ErrorDetail(message, "timeout")) from None
            raise translate(exc) from exc
        return ModelList(data=[Model(id=m.id, created=0, owned_by="openai") for m in models if not m.hidden])

    async def _models(self, options: RequestOptions) -> list[CodexModel]:
        key = await self.engine.resolve(options.config, options.warn)
        return await self.engine.list_models(key, options.config.api_key)

    def _ticket(self, parsed: ParsedRequest, options: RequestOptions) -> Ticket | None:
        """A named session's request takes its place in the session's line as it arrives."""
        session_id = session_of(parsed, options)
        return None if session_id is None else self.engine.named.order.ticket(session_id)

    async def _prepare(self, parsed: ParsedRequest, options: RequestOptions, ticket: Ticket | None) -> ChatRun:
        deadline = options.deadline()
        await options.before(deadline, parsed.with_images())
        key = await options.before(deadline, self.engine.resolve(options.config, options.warn))
        return ChatRun(self.engine, key, options, parsed, deadline, ticket)


__all__ = ["ChatService"]
