"""Every message of the claif-codd protocol as a ``msgspec.Struct``: JSON-RPC 2.0 envelopes whose
``method`` is the tag of a tagged union, so each method is its own type with typed ``params``
(:mod:`.params`; what a turn reports is in :mod:`.turn_events`, the shared struct configuration
and its compatibility rules in :mod:`.payload`).

``METHODS`` maps each method name to its message, params and result types; the codec validates
against it and the daemon can dispatch on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeAlias, TypeVar

import msgspec

from .errors import ErrorObject, ProtocolError, RequestId
from .params import (
    ApprovalRequestedParams,
    ApprovalRespondParams,
    CancelParams,
    ChatCompletionsChunkParams,
    ChatCompletionsCreateParams,
    ClosedResult,
    ConversationBodyParams,
    ConversationCreateParams,
    ConversationItemParams,
    ConversationItemsListParams,
    ConversationParams,
    DaemonShutdownParams,
    DaemonStatus,
    DaemonStatusParams,
    HelloParams,
    HelloResult,
    IgnoredParams,
    InterruptedResult,
    ModelList,
    ModelsListParams,
    OkResult,
    ResponsesCreateParams,
    ResponsesEventParams,
    ResponsesInputItemsParams,
    ResponsesRetrieveParams,
    SessionCloseParams,
    SessionEventParams,
    SessionSendParams,
    SessionsListParams,
    SessionsListResult,
    SessionTurnResult,
    TurnInterruptParams,
    WarningParams,
)

PROTOCOL_VERSION: Final = 1
"""Bumped on any change an older peer can't decode; ``hello`` refuses a mismatch."""

HELLO_TIMEOUT_S: Final = 5.0
"""A connection that hasn't sent ``hello`` this long after connecting is closed with HELLO_TIMEOUT."""

ResultT = TypeVar("ResultT")


# --- envelopes -------------------------------------------------------------------------------------
# Not omit_defaults: "jsonrpc" must always be on the wire. Its default only spares constructors; the
# codec rejects a message that lacks it.


class _RequestBase(msgspec.Struct, tag_field="method", kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId


class _NotificationBase(msgspec.Struct, tag_field="method", kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"


class HelloRequest(_RequestBase, tag="hello", kw_only=True):
    """Must be the first message on a connection; the daemon refuses a different protocol version."""

    params: HelloParams


class ChatCompletionsCreateRequest(_RequestBase, tag="chat.completions.create", kw_only=True):
    params: ChatCompletionsCreateParams


class ResponsesCreateRequest(_RequestBase, tag="responses.create", kw_only=True):
    params: ResponsesCreateParams


class ResponsesCompactRequest(_RequestBase, tag="responses.compact", kw_only=True):
    params: ResponsesCreateParams


class ResponsesRetrieveRequest(_RequestBase, tag="responses.retrieve", kw_only=True):
    params: ResponsesRetrieveParams


class ResponsesDeleteRequest(_RequestBase, tag="responses.delete", kw_only=True):
    params: ResponsesRetrieveParams


class ResponsesCancelRequest(_RequestBase, tag="responses.cancel", kw_only=True):
    params: ResponsesRetrieveParams


class ResponsesInputItemsRequest(_RequestBase, tag="responses.input_items.list", kw_only=True):
    params: ResponsesInputItemsParams


class ConversationsCreateRequest(_RequestBase, tag="conversations.create", kw_only=True):
    params: ConversationCreateParams


class ConversationsRetrieveRequest(_RequestBase, tag="conversations.retrieve", kw_only=True):
    params: ConversationParams


class ConversationsUpdateRequest(_RequestBase, tag="conversations.update", kw_only=True):
    params: ConversationBodyParams


class ConversationsDeleteRequest(_RequestBase, tag="conversations.delete", kw_only=True):
    params: ConversationParams


class ConversationItemsCreateRequest(_RequestBase, tag="conversations.items.create", kw_only=True):
    params: ConversationBodyParams


class ConversationItemsListRequest(_RequestBase, tag="conversations.items.list", kw_only=True):
    params: ConversationItemsListParams


class ConversationItemsRetrieveRequest(_RequestBase, tag="conversations.items.retrieve", kw_only=True):
    params: ConversationItemParams


class ConversationItemsDeleteRequest(_RequestBase, tag="conversations.items.delete", kw_only=True):
    params: ConversationItemParams


ConversationRequest: TypeAlias = (
    ConversationsCreateRequest
    | ConversationsRetrieveRequest
    | ConversationsUpdateRequest
    | ConversationsDeleteRequest
    | ConversationItemsCreateRequest
    | ConversationItemsListRequest
    | ConversationItemsRetrieveRequest
    | ConversationItemsDeleteRequest
)
"""OpenAI's Conversations API: each answers with OpenAI's object as JSON."""


class ModelsListRequest(_RequestBase, tag="models.list", kw_only=True):
    params: ModelsListParams = msgspec.field(default_factory=ModelsListParams)


class SessionSendRequest(_RequestBase, tag="session.send", kw_only=True):
    params: SessionSendParams


class SessionsListRequest(_RequestBase, tag="sessions.list", kw_only=True):
    params: SessionsListParams = msgspec.field(default_factory=SessionsListParams)


class SessionCloseRequest(_RequestBase, tag="session.close", kw_only=True):
    params: SessionCloseParams


class TurnInterruptRequest(_RequestBase, tag="turn.interrupt", kw_only=True):
    params: TurnInterruptParams = msgspec.field(default_factory=TurnInterruptParams)


class ApprovalRespondRequest(_RequestBase, tag="approval.respond", kw_only=True):
    params: ApprovalRespondParams


class DaemonStatusRequest(_RequestBase, tag="daemon.status", kw_only=True):
    params: DaemonStatusParams = msgspec.field(default_factory=DaemonStatusParams)


class DaemonShutdownRequest(_RequestBase, tag="daemon.shutdown", kw_only=True):
    params: DaemonShutdownParams = msgspec.field(default_factory=DaemonShutdownParams)


class ChatCompletionsChunkNotification(_NotificationBase, tag="chat.completions.chunk", kw_only=True):
    params: ChatCompletionsChunkParams


class ResponsesEventNotification(_NotificationBase, tag="responses.event", kw_only=True):
    params: ResponsesEventParams


class SessionEventNotification(_NotificationBase, tag="session.event", kw_only=True):
    params: SessionEventParams


class ApprovalRequestedNotification(_NotificationBase, tag="approval.requested", kw_only=True):
    params: ApprovalRequestedParams


class WarningNotification(_NotificationBase, tag="warning", kw_only=True):
    """Something the caller should know about its request, sent before the request's reply."""

    params: WarningParams


class IgnoredNotification(_NotificationBase, tag="request.ignored", kw_only=True):
    """The request's parameters that had no effect, sent before its reply (or its first chunk)."""

    params: IgnoredParams


class CancelNotification(_NotificationBase, tag="$/cancel", kw_only=True):
    """Cancel a request; if it started a turn, the turn is interrupted."""

    params: CancelParams


# Generic so the daemon can put a result struct in directly; decoded, ``result`` is msgspec.Raw because
# only the requester knows which method it answers (see codec.decode_result).
class Response(msgspec.Struct, Generic[ResultT], kw_only=True):
    """A successful reply to the request with the same ``id``."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId
    result: ResultT


class ErrorResponse(msgspec.Struct, kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId | None
    """Null when the failing message's id could not be recovered."""
    error: ErrorObject

    @classmethod
    def from_exception(cls, exc: ProtocolError) -> ErrorResponse:
        return cls(id=exc.request_id, error=exc.to_error())


Request: TypeAlias = (
    HelloRequest
    | ChatCompletionsCreateRequest
    | ResponsesCreateRequest
    | ResponsesCompactRequest
    | ResponsesRetrieveRequest
    | ResponsesDeleteRequest
    | ResponsesCancelRequest
    | ResponsesInputItemsRequest
    | ConversationRequest
    | ModelsListRequest
    | SessionSendRequest
    | SessionsListRequest
    | SessionCloseRequest
    | TurnInterruptRequest
    | ApprovalRespondRequest
    | DaemonStatusRequest
    | DaemonShutdownRequest
)
Notification: TypeAlias = (
    ChatCompletionsChunkNotification
    | ResponsesEventNotification
    | SessionEventNotification
    | ApprovalRequestedNotification
    | WarningNotification
    | IgnoredNotification
    | CancelNotification
)
Message: TypeAlias = Request | Notification | Response[msgspec.Raw] | ErrorResponse
"""Anything ``codec.decode`` can return."""


@dataclass(frozen=True)
class MethodSpec:
    """The types behind one method name."""

    message_type: type[Request] | type[Notification]
    params_type: type[msgspec.Struct]
    result_type: type[msgspec.Struct] | type[msgspec.Raw] | None
    """``None`` for notifications, which get no reply."""

    @property
    def name(self) -> str:
        return str(self.message_type.__struct_config__.tag)

    @property
    def is_notification(self) -> bool:
        return self.result_type is None


def _index(*specs: MethodSpec) -> Mapping[str, MethodSpec]:
    return {spec.name: spec for spec in specs}


METHODS: Final[Mapping[str, MethodSpec]] = _index(
    MethodSpec(HelloRequest, HelloParams, HelloResult),
    # Raw: the chat.completion object, or StreamDone when the request body has "stream": true.
    MethodSpec(ChatCompletionsCreateRequest, ChatCompletionsCreateParams, msgspec.Raw),
    # Raw: the Response object, or StreamDone (its ``chunks`` counts events) when the body streams.
    MethodSpec(ResponsesCreateRequest, ResponsesCreateParams, msgspec.Raw),
    # Raw: OpenAI's CompactedResponse (the body is responses.compact's; it runs one turn).
    MethodSpec(ResponsesCompactRequest, ResponsesCreateParams, msgspec.Raw),
    MethodSpec(ResponsesRetrieveRequest, ResponsesRetrieveParams, msgspec.Raw),
    MethodSpec(ResponsesDeleteRequest, ResponsesRetrieveParams, msgspec.Raw),
    MethodSpec(ResponsesCancelRequest, ResponsesRetrieveParams, msgspec.Raw),
    MethodSpec(ResponsesInputItemsRequest, ResponsesInputItemsParams, msgspec.Raw),
    # Raw: OpenAI's Conversation, ConversationItemList, ConversationItem or ConversationDeletedResource.
    MethodSpec(ConversationsCreateRequest, ConversationCreateParams, msgspec.Raw),
    MethodSpec(ConversationsRetrieveRequest, ConversationParams, msgspec.Raw),
    MethodSpec(ConversationsUpdateRequest, ConversationBodyParams, msgspec.Raw),
    MethodSpec(ConversationsDeleteRequest, ConversationParams, msgspec.Raw),
    MethodSpec(ConversationItemsCreateRequest, ConversationBodyParams, msgspec.Raw),
    MethodSpec(ConversationItemsListRequest, ConversationItemsListParams, msgspec.Raw),
    MethodSpec(ConversationItemsRetrieveRequest, ConversationItemParams, msgspec.Raw),
    MethodSpec(ConversationItemsDeleteRequest, ConversationItemParams, msgspec.Raw),
    MethodSpec(ModelsListRequest, ModelsListParams, ModelList),
    MethodSpec(SessionSendRequest, SessionSendParams, SessionTurnResult),
    MethodSpec(SessionsListRequest, SessionsListParams, SessionsListResult),
    MethodSpec(SessionCloseRequest, SessionCloseParams, ClosedResult),
    MethodSpec(TurnInterruptRequest, TurnInterruptParams, InterruptedResult),
    MethodSpec(ApprovalRespondRequest, ApprovalRespondParams, OkResult),
    MethodSpec(DaemonStatusRequest, DaemonStatusParams, DaemonStatus),
    MethodSpec(DaemonShutdownRequest, DaemonShutdownParams, OkResult),
    MethodSpec(ChatCompletionsChunkNotification, ChatCompletionsChunkParams, None),
    MethodSpec(ResponsesEventNotification, ResponsesEventParams, None),
    MethodSpec(SessionEventNotification, SessionEventParams, None),
    MethodSpec(ApprovalRequestedNotification, ApprovalRequestedParams, None),
    MethodSpec(WarningNotification, WarningParams, None),
    MethodSpec(IgnoredNotification, IgnoredParams, None),
    MethodSpec(CancelNotification, CancelParams, None),
)
