"""claif-codd as a backend of the openai transport: each request sent over a
:class:`~claif_cod.transport.daemon_client.DaemonConnection`, its reply handed back as the engine's
own backend hands it (a JSON body, or a stream's server-sent events).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Callable

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.discovery import ENV_CODEX_PATH
from claif_cod.engine.inbox import Inbox
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.request import stream_and_ignored
from claif_cod.openai_compat.responses_compact_request import compact_ignored
from claif_cod.openai_compat.responses_request import responses_ignored
from claif_cod.protocol import (
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    ConversationRequest,
    ModelList,
    ModelsListParams,
    ModelsListRequest,
    ResponsesCompactRequest,
    ResponsesCreateParams,
    ResponsesCreateRequest,
    ResponsesRetrieveParams,
    ResponsesRetrieveRequest,
    decode_result,
)
from claif_cod.transport.backend import (
    SSE_DONE,
    JsonReply,
    Reply,
    StreamReply,
    ignored_headers,
    sse,
    sse_event,
    wants_stream,
)
from claif_cod.transport.daemon_client import Chunks, DaemonConnection
from claif_cod.transport.stored_routes import StoredResponseAction


def _env_codex_path() -> str | None:
    """``$CLAIF_COD_CODEX_PATH`` as the daemon must take it: absolute (the daemon has its own working
    directory), and only when it is a file this process could run, since in-process one that is
    missing or not executable is skipped (:func:`~claif_cod.engine.discovery.find_codex`) while an
    explicit ``codex_path`` that is fails every request (docs/cli.md)."""
    path = os.environ.get(ENV_CODEX_PATH)
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        return None
    return os.path.abspath(path)


def codex_options(options: RequestOptions) -> CodexOptions:
    """What the daemon needs to run Codex the way this process would (its env may differ from ours)."""
    config = options.config
    return CodexOptions(
        working_dir=config.working_dir,
        model=options.default_model,
        sandbox_mode=config.sandbox_mode,
        approval_policy=config.approval_policy,
        codex_path=config.codex_path or _env_codex_path(),
        codex_home=config.codex_home or os.environ.get("CODEX_HOME"),
        api_key=config.api_key or os.environ.get("CODEX_API_KEY"),
        session_id=options.session_id,
        strict=options.strict,
        # A deadline already passed (0 or less, which openai's client passes on) is the shortest the
        # protocol takes: the request times out at once there, as in-process, not a 400.
        timeout_s=None if options.timeout is None else max(options.timeout, SHORTEST_TIMEOUT_S),
    )


SHORTEST_TIMEOUT_S = 0.001


class DaemonBackend:
    """Serves the openai transport through claif-codd."""

    def __init__(self, conn: DaemonConnection) -> None:
        self.conn = conn

    async def chat(self, body: bytes, options: RequestOptions) -> Reply:
        stream, ignored = stream_and_ignored(body)
        request_id = self.conn.next_id()
        request = ChatCompletionsCreateRequest(
            id=request_id,
            params=ChatCompletionsCreateParams(body=msgspec.Raw(body), options=codex_options(options)),
        )
        if not stream:
            raw = await self.conn.call(request, approvals=options.approvals, timeout=options.timeout)
            return JsonReply(bytes(raw), ignored_headers(ignored))
        chunks: Chunks = Inbox()
        future = self.conn.start(request, chunks=chunks, approvals=options.approvals)
        first = await self.conn.first_chunk(request_id, chunks, future, options.timeout)
        return StreamReply(self._stream(first, chunks, future, request_id, options.timeout), ignored_headers(ignored))

    async def responses(self, body: bytes, options: RequestOptions) -> Reply:
        ignored = responses_ignored(body)
        request_id = self.conn.next_id()
        request = ResponsesCreateRequest(
            id=request_id, params=ResponsesCreateParams(body=msgspec.Raw(body), options=codex_options(options))
        )
        if not wants_stream(body):
            raw = await self.conn.call(request, approvals=options.approvals, timeout=options.timeout)
            return JsonReply(bytes(raw), ignored_headers(ignored))
        events: Chunks = Inbox()
        future = self.conn.start(request, chunks=events, approvals=options.approvals)
        first = await self.conn.first_chunk(request_id, events, future, options.timeout)
        return StreamReply(
            self._stream(first, events, future, request_id, options.timeout, frame=sse_event, done=b""),
            ignored_headers(ignored),
        )

    async def compact(self, body: bytes, options: RequestOptions) -> JsonReply:
        request = ResponsesCompactRequest(
            id=self.conn.next_id(), params=ResponsesCreateParams(body=msgspec.Raw(body), options=codex_options(options))
        )
        raw = await self.conn.call(request, approvals=options.approvals, timeout=options.timeout)
        return JsonReply(bytes(raw), ignored_headers(compact_ignored(body)))

    async def stored_response(self, action: StoredResponseAction) -> JsonReply:
        return JsonReply(bytes(await self.conn.call(msgspec.structs.replace(action, id=self.conn.next_id()))))

    async def conversation(self, action: ConversationRequest) -> JsonReply:
        return JsonReply(bytes(await self.conn.call(msgspec.structs.replace(action, id=self.conn.next_id()))))

    async def retrieve_response(self, response_id: str, options: RequestOptions) -> JsonReply:
        raw = await self.conn.call(
            ResponsesRetrieveRequest(id=self.conn.next_id(), params=ResponsesRetrieveParams(response_id=response_id))
        )
        return JsonReply(bytes(raw))

    def _stream(
        self,
        first: msgspec.Raw | None,
        chunks: Chunks,
        future: asyncio.Future[msgspec.Raw],
        request_id: int,
        timeout: float | None,
        *,
        frame: Callable[[bytes], bytes] = sse,
        done: bytes = SSE_DONE,
    ) -> ChainedStream[bytes]:
        """The request's frames; closed before they are all read, the daemon stops the request."""

        async def abandon() -> None:
            self.conn.abandon(request_id)

        return ChainedStream(self._events(first, chunks, future, request_id, timeout, frame, done), abandon)

    async def _events(
        self,
        first: msgspec.Raw | None,
        chunks: Chunks,
        future: asyncio.Future[msgspec.Raw],
        request_id: int,
        timeout: float | None,
        frame: Callable[[bytes], bytes],
        done: bytes,
    ) -> AsyncGenerator[bytes, None]:
        if first is not None:
            yield frame(bytes(first))
            while (chunk := await self.conn.next_chunk(request_id, chunks, future, timeout)) is not None:
                yield frame(bytes(chunk))
        if done:
            yield done

    async def models(self, options: RequestOptions) -> JsonReply:
        raw = await self.conn.call(
            ModelsListRequest(id=self.conn.next_id(), params=ModelsListParams(options=codex_options(options))),
            timeout=options.timeout,
        )
        listing = decode_result(raw, ModelList)
        return JsonReply(msgspec.json.encode(listing))

    async def aclose(self) -> None:
        await self.conn.close()
