"""``responses.create``, ``retrieve``, ``delete``, ``cancel`` and ``input_items.list`` on the same engine as chat.

A response is one Codex turn. Without ``previous_response_id`` it runs on a fresh thread whose
history is the request's earlier input items; with one, it continues that response's thread
directly when the response is still the thread's newest, and otherwise forks the thread through
that response's turn (``thread/fork`` with ``lastTurnId``), so a branch never rewrites a history
someone else continued. Codex's agent messages become ``message`` output items and its reasoning
summaries ``reasoning`` items, streamed as OpenAI's own ``ResponseStreamEvent`` sequence
(:mod:`.responses_stream`). Results for tool calls whose turn is gone are replayed with the stored
conversation (:mod:`.responses_replay`).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.engine import Engine
from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.errors import APIFailure, translate, translated_stream
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_items import page
from claif_cod.openai_compat.responses_request import parse_responses_request
from claif_cod.openai_compat.responses_run import ResponseRun
from claif_cod.openai_compat.responses_schema import (
    TERMINAL_EVENTS,
    Response,
    ResponseDeleted,
    ResponseEvent,
)
from claif_cod.openai_compat.responses_store import (
    MemoryResponseStore,
    ResponseRecord,
    ResponseStore,
    ResponseStoreFailed,
)

_encoder = msgspec.json.Encoder()
_response_decoder = msgspec.json.Decoder(Response)


class ResponsesService:
    def __init__(
        self, engine: Engine, store: ResponseStore | None = None, conversations: ConversationsService | None = None
    ) -> None:
        self.engine = engine
        self.store: ResponseStore = store or MemoryResponseStore()
        self.conversations = conversations or ConversationsService()
        """Where ``conversation=`` finds its items, and puts the response's input and output."""

    async def create(self, body: bytes, options: RequestOptions) -> tuple[Response, tuple[str, ...]]:
        """The whole response, plus the names of parameters that had no effect."""
        run = self.open(body, options, streaming=False)
        try:
            await self._start(run)
            final: Response | None = None
            async for event in run.events():
                if isinstance(event, TERMINAL_EVENTS):
                    final = event.response
        except Exception as exc:
            raise translate(exc) from exc
        assert final is not None
        return final, run.parsed.ignored

    async def stream(self, body: bytes, options: RequestOptions) -> ResponseStream:
        """Events as Codex produces them; failures before the first event raise here (an HTTP status)."""
        return await self.stream_run(self.open(body, options, streaming=True))

    def open(self, body: bytes, options: RequestOptions, *, streaming: bool) -> ResponseRun:
        """The request read and its response made, before anything waits: what it ignores is known
        from here (``claif-codd --http`` may have to send it in a header before the turn says anything)."""
        try:
            parsed = parse_responses_request(
                body,
                default_model=options.default_model,
                strict=options.strict,
                conversations=self.conversations.items_of,
                client_options=("session_id",) if options.session_id is not None else (),
            )
            return ResponseRun(self.engine, self.store, self.conversations, parsed, options, streaming)
        except Exception as exc:
            raise translate(exc) from exc

    async def stream_run(self, run: ResponseRun) -> ResponseStream:
        """:meth:`stream` of a response :meth:`open` made (``streaming=True``)."""
        try:
            await self._start(run)
        except Exception as exc:
            raise translate(exc) from exc
        events = run.events()
        try:
            first = await events.__anext__()
        except Exception as exc:
            await events.aclose()
            raise translate(exc) from exc
        return ResponseStream(translated_stream(first, events, run.handed_out), run.parsed.ignored)

    def retrieve(self, response_id: str) -> bytes:
        return self._stored(response_id).body

    def delete(self, response_id: str) -> bytes:
        """``responses.delete``: the response can no longer be fetched, listed or continued; a response
        that continued it (same thread) or branched from it is untouched."""
        record = self._stored(response_id)
        if decode_response(record.body).status == "in_progress":
            message = f"Response '{response_id}' is still in progress; it can be deleted once it has ended."
            raise APIFailure.bad_request(message)
        try:
            self.store.forget(response_id)
        except ResponseStoreFailed as exc:
            raise translate(exc) from exc
        return _encoder.encode(ResponseDeleted(id=response_id))

    def input_items(
        self, response_id: str, *, after: str | None, limit: int | None, order: str | None, before: str | None = None
    ) -> bytes:
        stored = self._stored(response_id).input
        try:
            return page(stored, after=after, limit=limit, order=order, before=before)
        except Exception as exc:
            raise translate(exc) from exc

    def cancel(self, response_id: str) -> bytes:
        """Only ``background`` responses can be cancelled, and claif_cod refuses to create those."""
        self._stored(response_id)
        raise APIFailure.bad_request("Cannot cancel a synchronous response.")

    def _stored(self, response_id: str) -> ResponseRecord:
        record = self.store.get(response_id)
        if record is None or not record.stored:
            raise APIFailure.not_found(f"Response with id '{response_id}' not found.", param="id")
        return record

    async def _start(self, run: ResponseRun) -> None:
        try:
            await run.options.before(run.deadline, run.parsed.with_images())
            await run.options.before(run.deadline, run.start())
        except BaseException:
            run.abandon()
            run.release_conversation()
            raise


@dataclass(frozen=True)
class ResponseStream:
    events: ChainedStream[ResponseEvent]
    ignored: tuple[str, ...]
    """Parameters that had no effect."""


def decode_response(body: bytes) -> Response:
    return _response_decoder.decode(body)
