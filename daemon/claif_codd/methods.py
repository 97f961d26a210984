"""What each socket method does: thin adapters from protocol messages to the shared engine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from claif_cod._version import __version__
from claif_cod.chained_stream import ChainedStream
from claif_cod.engine import wire_items
from claif_cod.engine.control import TurnControl
from claif_cod.engine.conversations import Conversation
from claif_cod.engine.engine import TurnOptions
from claif_cod.engine.errors import TurnFailed, TurnNotStarted
from claif_cod.engine.events import (
    ItemCompleted,
    ItemStarted,
    TextDelta,
    TextReset,
    TurnFinished,
    UsageUpdated,
)
from claif_cod.openai_compat.errors import translate
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_compact import compact
from claif_cod.openai_compat.text import ChoiceText
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    ApprovalRespondRequest,
    ChatCompletionsChunkNotification,
    ChatCompletionsChunkParams,
    ChatCompletionsCreateRequest,
    ClosedResult,
    ConversationRequest,
    DaemonShutdownRequest,
    DaemonStatus,
    DaemonStatusRequest,
    HelloRequest,
    HelloResult,
    InterruptedResult,
    InvalidParams,
    ModelList,
    ModelsListRequest,
    OkResult,
    ProcessInfo,
    Request,
    ResponsesCancelRequest,
    ResponsesCompactRequest,
    ResponsesCreateRequest,
    ResponsesDeleteRequest,
    ResponsesEventNotification,
    ResponsesEventParams,
    ResponsesInputItemsRequest,
    ResponsesRetrieveRequest,
    SessionCloseRequest,
    SessionEvent,
    SessionEventNotification,
    SessionEventParams,
    SessionInfo,
    SessionSendRequest,
    SessionsListRequest,
    SessionsListResult,
    SessionTurnResult,
    StreamDone,
    TurnInterruptRequest,
    TurnStarted,
    UsageEvent,
    VersionMismatch,
)
from claif_cod.protocol import ItemCompleted as ItemCompletedEvent
from claif_cod.protocol import ItemStarted as ItemStartedEvent
from claif_cod.protocol import TextDelta as TextDeltaEvent
from claif_cod.protocol import TextReset as TextResetEvent
from claif_cod.protocol.capabilities import DAEMON_CAPABILITIES
from claif_cod.transport.backend import wants_stream
from claif_cod.transport.stored_routes import conversation_reply, stored_response_reply
from claif_codd.request_context import codex_config, request_options, say_ignored, timeout_of, turn_control, warner
from claif_codd.turn_items import codex_item, usage

if TYPE_CHECKING:
    from claif_codd.connection import Connection
    from claif_codd.host import DaemonHost

_encoder = msgspec.json.Encoder()


class Methods:
    def __init__(self, daemon: DaemonHost[Connection]) -> None:
        self.daemon = daemon

    async def call(self, conn: Connection, request: Request) -> Any:
        if isinstance(request, HelloRequest):
            return self.hello(conn, request)
        if isinstance(request, ChatCompletionsCreateRequest):
            return await self.chat(conn, request)
        if isinstance(request, ResponsesCreateRequest):
            return await self.responses_create(conn, request)
        if isinstance(request, ResponsesCompactRequest):
            return await self.responses_compact(conn, request)
        if isinstance(request, ResponsesRetrieveRequest):
            return msgspec.Raw(self.daemon.responses.retrieve(request.params.response_id))
        if isinstance(request, ResponsesDeleteRequest | ResponsesCancelRequest | ResponsesInputItemsRequest):
            return msgspec.Raw(stored_response_reply(self.daemon.responses, request))
        if isinstance(request, ConversationRequest):
            return msgspec.Raw(await conversation_reply(self.daemon.conversations, request))
        if isinstance(request, ModelsListRequest):
            return await self.models(conn, request)
        if isinstance(request, SessionSendRequest):
            return await self.session_send(conn, request)
        if isinstance(request, SessionsListRequest):
            return self.sessions_list()
        if isinstance(request, SessionCloseRequest):
            return self.session_close(request)
        if isinstance(request, TurnInterruptRequest):
            return await self.turn_interrupt(conn, request)
        if isinstance(request, ApprovalRespondRequest):
            return self.approval_respond(conn, request)
        if isinstance(request, DaemonStatusRequest):
            return self.status()
        if isinstance(request, DaemonShutdownRequest):
            self.daemon.request_shutdown()
            return OkResult(ok=True)
        raise AssertionError(f"unhandled request type {type(request).__name__}")

    # --- handshake ----------------------------------------------------------------------------

    def hello(self, conn: Connection, request: HelloRequest) -> HelloResult:
        params = request.params
        if params.protocol_version != PROTOCOL_VERSION:
            raise VersionMismatch.between(params.protocol_version, PROTOCOL_VERSION, __version__)
        conn.client_name = params.client_name
        conn.log = conn.log.bind(client=params.client_name)
        return HelloResult(
            protocol_version=PROTOCOL_VERSION,
            package_version=__version__,
            daemon_pid=os.getpid(),
            capabilities=list(DAEMON_CAPABILITIES),
            max_frame_size=self.daemon.config.max_frame_size,
        )

    # --- OpenAI-shaped methods --------------------------------------------------------------------

    async def chat(self, conn: Connection, request: ChatCompletionsCreateRequest) -> Any:
        with turn_control(conn, request.id) as control:
            return await self._chat(conn, request, control)

    async def _chat(self, conn: Connection, request: ChatCompletionsCreateRequest, control: TurnControl) -> Any:
        options = request_options(conn, request.id, request.params.options, control)
        body = bytes(request.params.body)
        service = self.daemon.service
        if not wants_stream(body):
            completion, ignored = await service.complete(body, options)
            say_ignored(conn, request.id, ignored)
            conn.log.debug(
                "chat.completed",
                request=request.id,
                session=options.session_id,
                choices=len(completion.choices),
                tokens=completion.usage.total_tokens,
            )
            return msgspec.Raw(_encoder.encode(completion))
        chunks, ignored = await service.stream(body, options)
        say_ignored(conn, request.id, ignored)
        count = await _relay(
            chunks,
            lambda raw: conn.send(ChatCompletionsChunkNotification(params=ChatCompletionsChunkParams(request.id, raw))),
        )
        conn.log.debug(
            "chat.streamed",
            request=request.id,
            session=options.session_id,
            chunks=count,
            interrupted=control.interrupted,
        )
        return StreamDone(chunks=count, interrupted=control.interrupted)

    async def responses_create(self, conn: Connection, request: ResponsesCreateRequest) -> Any:
        with turn_control(conn, request.id) as control:
            return await self._responses_create(conn, request, control)

    async def _responses_create(self, conn: Connection, request: ResponsesCreateRequest, control: TurnControl) -> Any:
        options = request_options(conn, request.id, request.params.options, control)
        body = bytes(request.params.body)
        service = self.daemon.responses
        if not wants_stream(body):
            response, ignored = await service.create(body, options)
            say_ignored(conn, request.id, ignored)
            conn.log.debug(
                "responses.completed", request=request.id, status=response.status, output=len(response.output)
            )
            return msgspec.Raw(_encoder.encode(response))
        stream = await service.stream(body, options)
        say_ignored(conn, request.id, stream.ignored)
        count = await _relay(
            stream.events,
            lambda raw: conn.send(ResponsesEventNotification(params=ResponsesEventParams(request.id, raw))),
        )
        conn.log.debug("responses.streamed", request=request.id, events=count, interrupted=control.interrupted)
        return StreamDone(chunks=count, interrupted=control.interrupted)

    async def responses_compact(self, conn: Connection, request: ResponsesCompactRequest) -> msgspec.Raw:
        with turn_control(conn, request.id) as control:
            options = request_options(conn, request.id, request.params.options, control)
            compacted, ignored = await compact(self.daemon.responses, bytes(request.params.body), options)
            say_ignored(conn, request.id, ignored)
            return msgspec.Raw(compacted)

    async def models(self, conn: Connection, request: ModelsListRequest) -> ModelList:
        options = request.params.options
        config = codex_config(options, options.working_dir or str(Path.home()))  # any directory lists them
        listing = await self.daemon.service.models(
            RequestOptions(config=config, timeout=timeout_of(options), warn=warner(conn, request.id))
        )
        return ModelList(data=[msgspec.Raw(_encoder.encode(m)) for m in listing.data])

    # --- sessions ----------------------------------------------------------------------------------

    async def session_send(self, conn: Connection, request: SessionSendRequest) -> SessionTurnResult:
        with turn_control(conn, request.id) as control:
            return await self._session_send(conn, request, control)

    async def _session_send(
        self, conn: Connection, request: SessionSendRequest, control: TurnControl
    ) -> SessionTurnResult:
        params = request.params
        options = request_options(conn, request.id, params.options, control)
        engine = self.daemon.engine
        ticket = engine.named.order.ticket(params.session_id)  # before anything waits
        deadline = options.deadline()  # starting Codex and the session's thread count too
        try:
            key = await options.before(deadline, engine.resolve(options.config, options.warn))
            await options.before(deadline, ticket.turn())
            conversation = Conversation(params.system, (), params.text)
            handle, _ = await options.before(
                deadline,
                engine.named.thread(
                    params.session_id, key, options.config.api_key, conversation, model=options.default_model
                ),
            )
            turn_options = TurnOptions(
                model=options.default_model,
                deadline=deadline,
                approvals=options.approvals,
                forget_failed=True,
                interrupted=lambda: control.requested,
            )
            turn = await options.before(deadline, engine.start_turn(handle, params.text, turn_options))
            await control.attach(turn)
        except TurnNotStarted:  # interrupted while it waited for the session: nothing reached it
            return SessionTurnResult(
                session_id=params.session_id, thread_id=handle.thread_id, turn_id="", text="", status="interrupted"
            )
        except Exception as exc:
            raise translate(exc) from exc
        finally:
            ticket.done()

        def emit(event: SessionEvent) -> None:
            conn.send(
                SessionEventNotification(
                    params=SessionEventParams(request_id=request.id, session_id=params.session_id, event=event)
                )
            )

        emit(TurnStarted(turn_id=turn.turn_id))
        text = ChoiceText(streaming=False)
        finished: TurnFinished | None = None
        events = turn.events()
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    text.delta(event.item_id, event.delta)
                    emit(TextDeltaEvent(item_id=event.item_id, delta=event.delta))
                elif isinstance(event, TextReset):
                    text.reset(event.item_id)
                    emit(TextResetEvent(item_id=event.item_id))
                elif isinstance(event, ItemStarted):
                    emit(ItemStartedEvent(item=codex_item(event.item)))
                elif isinstance(event, ItemCompleted):
                    if isinstance(event.item, wire_items.AgentMessageItem):
                        text.complete(event.item.id, event.item.text)
                    emit(ItemCompletedEvent(item=codex_item(event.item)))
                elif isinstance(event, UsageUpdated):
                    emit(UsageEvent(usage=usage(event.usage)))
                elif isinstance(event, TurnFinished):
                    finished = event
                    turn.forget = event.status == "failed"  # answered as failed: the session drops it
        except Exception as exc:
            raise translate(exc) from exc
        finally:
            await events.aclose()
        assert finished is not None
        if finished.status != "failed":
            engine.named.turn_done(
                params.session_id, handle, turn.turn_id, options.default_model, params.text, text.text
            )
        conn.log.debug(
            "session.turn",
            request=request.id,
            session=params.session_id,
            thread_id=handle.thread_id,
            status=finished.status,
            tokens=finished.usage.total_tokens,
        )
        if finished.status == "failed":  # always with its reason, even after partial text
            reason = finished.error_message or "Codex turn failed without saying why"
            raise translate(TurnFailed(reason, finished.error_info, text.text, acted=finished.acted))
        return SessionTurnResult(
            session_id=params.session_id,
            thread_id=handle.thread_id,
            turn_id=turn.turn_id,
            text=text.text,
            status=finished.status,
            usage=usage(finished.usage),
        )

    def sessions_list(self) -> SessionsListResult:
        engine = self.daemon.engine
        infos = []
        for record in engine.sessions.all():
            infos.append(
                SessionInfo(
                    session_id=record.session_id,
                    thread_id=record.thread_id,
                    working_dir=record.working_dir,
                    turns=record.turns,
                    busy=engine.active_turn(record.thread_id) is not None,
                    last_used=record.last_used,
                    model=record.model,
                    codex_home=record.codex_home or None,
                )
            )
        return SessionsListResult(sessions=infos)

    def session_close(self, request: SessionCloseRequest) -> ClosedResult:
        return ClosedResult(closed=self.daemon.engine.named.close(request.params.session_id))

    async def turn_interrupt(self, conn: Connection, request: TurnInterruptRequest) -> InterruptedResult:
        params = request.params
        if (params.request_id is None) == (params.session_id is None):  # which turn, else, is meant?
            raise InvalidParams("turn.interrupt names its turn by request_id or by session_id: one of them")
        if params.request_id is not None:
            control = conn.turn_controls.get(params.request_id)
            if control is None:
                return InterruptedResult(interrupted=False)
            return InterruptedResult(interrupted=await control.interrupt())
        assert params.session_id is not None  # (one of them: checked above)
        turns = self.daemon.engine.named.turns(params.session_id)
        for turn in turns:
            await turn.interrupt()
        return InterruptedResult(interrupted=bool(turns))

    def approval_respond(self, conn: Connection, request: ApprovalRespondRequest) -> OkResult:
        future = conn.approvals.get(request.params.approval_id)
        if future is None or future.done():
            return OkResult(ok=False)
        future.set_result(request.params.decision)
        return OkResult(ok=True)

    # --- daemon ------------------------------------------------------------------------------------

    def status(self) -> DaemonStatus:
        daemon = self.daemon
        engine = daemon.engine
        processes = []
        loaded: dict[int, int] = {}
        for handle in engine.threads.loaded():
            if handle.server.alive:
                loaded[handle.server.pid] = loaded.get(handle.server.pid, 0) + 1
        for key, server, turns, _holds in engine.processes():
            binary = engine.known_binary(key.codex_path)
            processes.append(
                ProcessInfo(
                    pid=server.pid,
                    working_dir=key.working_dir,
                    codex_path=key.codex_path,
                    codex_version=server.version or (binary.version if binary else "unknown"),
                    threads=loaded.get(server.pid, 0),
                    turns_in_flight=turns,
                    rss_bytes=rss_bytes(server.pid),
                )
            )
        return DaemonStatus(
            pid=os.getpid(),
            package_version=__version__,
            protocol_version=PROTOCOL_VERSION,
            uptime_s=time.monotonic() - daemon.started_at,
            socket=str(daemon.config.socket_path),
            processes=processes,
            sessions=len(engine.sessions.all()),
            connections=len(daemon.connections),
            turns_in_flight=engine.turns_in_flight,
            http=daemon.http.url if daemon.http is not None else None,
        )


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


async def _relay(items: ChainedStream[Any], send: Callable[[msgspec.Raw], None]) -> int:
    """Send each streamed item as it comes (chat chunks, Responses events); the count goes into StreamDone."""
    count = 0
    try:
        async for item in items:
            count += 1
            send(msgspec.Raw(_encoder.encode(item)))
    finally:
        await items.aclose()
    return count
