"""The capabilities a daemon names in its ``hello`` result, and what each request needs of them.

``protocol_version`` changes only when an older peer could no longer understand a newer one, so a
daemon started before claif_cod was upgraded speaks the protocol of the client, and lacks what was
added since: a method (it would answer "unknown method"), or a member of a request's params or body
(it would ignore it, as every peer ignores members it does not know, and answer as if it had not
been sent). A client therefore sends a request only to a daemon that names every capability the
request needs, and refuses it otherwise, saying that the daemon is to be restarted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, get_args

import msgspec

from claif_cod.protocol.messages import (
    ChatCompletionsCreateRequest,
    ConversationRequest,
    ModelsListRequest,
    Request,
    ResponsesCancelRequest,
    ResponsesCompactRequest,
    ResponsesCreateRequest,
    ResponsesDeleteRequest,
    ResponsesInputItemsRequest,
    ResponsesRetrieveRequest,
    SessionCloseRequest,
    SessionSendRequest,
    SessionsListRequest,
    TurnInterruptRequest,
)
from claif_cod.unreadable import UNREADABLE

CHAT: Final = "chat"
"""``chat.completions.create`` and ``models.list``."""
RESPONSES: Final = "responses"
"""``responses.*`` but ``responses.compact``."""
RESPONSES_COMPACT: Final = "responses.compact"
CONVERSATIONS: Final = "conversations"
"""``conversations.*``, and a ``responses.create`` body's ``conversation``."""
SESSIONS: Final = "sessions"
APPROVALS: Final = "approvals"
CANCEL: Final = "cancel"
INPUT_ITEMS_BEFORE: Final = "responses.input_items.before"
"""``responses.input_items.list`` takes ``before`` (a daemon without it lists the first page)."""

DAEMON_CAPABILITIES: Final = (
    CHAT,
    RESPONSES,
    RESPONSES_COMPACT,
    CONVERSATIONS,
    SESSIONS,
    APPROVALS,
    CANCEL,
    INPUT_ITEMS_BEFORE,
)
"""What this release's daemon serves, in its ``hello`` result."""

CONVERSATION_REQUESTS: Final = get_args(ConversationRequest)


class _NamesConversation(msgspec.Struct):
    conversation: Any = None


_conversation_decoder = msgspec.json.Decoder(_NamesConversation)


def _names_conversation(body: bytes) -> bool:
    """Whether a ``responses.create`` body names a conversation (a body that cannot be read does not:
    the daemon reports the problem). Bodies without the word, almost all, are not decoded."""
    if b'"conversation"' not in body:
        return False
    try:
        return _conversation_decoder.decode(body).conversation is not None
    except UNREADABLE:
        return False


def needs(request: Request) -> tuple[str, ...]:
    """The capabilities a daemon must name for ``request`` to be served as sent."""
    if isinstance(request, ChatCompletionsCreateRequest):
        return (CHAT, SESSIONS) if request.params.options.session_id is not None else (CHAT,)
    if isinstance(request, ModelsListRequest):
        return (CHAT,)
    if isinstance(request, ResponsesCompactRequest):
        return (RESPONSES_COMPACT,)
    if isinstance(request, ResponsesCreateRequest):
        named = _names_conversation(bytes(request.params.body))
        return (RESPONSES, CONVERSATIONS) if named else (RESPONSES,)
    if isinstance(request, ResponsesInputItemsRequest):
        return (RESPONSES, INPUT_ITEMS_BEFORE) if request.params.before is not None else (RESPONSES,)
    if isinstance(request, (ResponsesRetrieveRequest, ResponsesDeleteRequest, ResponsesCancelRequest)):
        return (RESPONSES,)
    if isinstance(request, CONVERSATION_REQUESTS):
        return (CONVERSATIONS,)
    if isinstance(request, (SessionSendRequest, SessionsListRequest, SessionCloseRequest, TurnInterruptRequest)):
        return (SESSIONS,)
    return ()


def lacking(request: Request, capabilities: Sequence[str]) -> list[str]:
    """What ``request`` needs that a daemon naming ``capabilities`` lacks."""
    return [name for name in needs(request) if name not in capabilities]
