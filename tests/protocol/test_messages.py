"""Messages and codec: round-trips, exact wire shape, compatibility rules, and every error path."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest

from claif_cod.protocol import (
    METHODS,
    PROTOCOL_VERSION,
    AgentMessageItem,
    ApprovalRequestedNotification,
    ApprovalRequestedParams,
    ApprovalRespondParams,
    ApprovalRespondRequest,
    CancelNotification,
    CancelParams,
    ChatCompletionsChunkNotification,
    ChatCompletionsChunkParams,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    ClosedResult,
    CodexOptions,
    CommandExecutionItem,
    ConversationBodyParams,
    ConversationCreateParams,
    ConversationItemParams,
    ConversationItemsCreateRequest,
    ConversationItemsDeleteRequest,
    ConversationItemsListParams,
    ConversationItemsListRequest,
    ConversationItemsRetrieveRequest,
    ConversationParams,
    ConversationsCreateRequest,
    ConversationsDeleteRequest,
    ConversationsRetrieveRequest,
    ConversationsUpdateRequest,
    DaemonShutdownRequest,
    DaemonStatus,
    DaemonStatusRequest,
    ErrorCode,
    ErrorData,
    ErrorObject,
    ErrorResponse,
    FileChange,
    FileChangeItem,
    HelloParams,
    HelloRequest,
    HelloResult,
    IgnoredNotification,
    IgnoredParams,
    InternalError,
    InterruptedResult,
    InvalidParams,
    InvalidRequest,
    InvalidResult,
    ItemCompleted,
    ItemStarted,
    Message,
    MethodNotFound,
    ModelList,
    ModelsListRequest,
    Notification,
    OkResult,
    OpenAIErrorBody,
    OpenAIErrorDetail,
    OpenAIStatusError,
    OtherItem,
    Overloaded,
    ParseError,
    ProcessInfo,
    ProtocolError,
    ReasoningItem,
    Request,
    Response,
    ResponsesCancelRequest,
    ResponsesCompactRequest,
    ResponsesCreateParams,
    ResponsesCreateRequest,
    ResponsesDeleteRequest,
    ResponsesEventNotification,
    ResponsesEventParams,
    ResponsesInputItemsParams,
    ResponsesInputItemsRequest,
    ResponsesRetrieveParams,
    ResponsesRetrieveRequest,
    SessionCloseParams,
    SessionCloseRequest,
    SessionEvent,
    SessionEventNotification,
    SessionEventParams,
    SessionInfo,
    SessionSendParams,
    SessionSendRequest,
    SessionsListRequest,
    SessionsListResult,
    SessionTurnResult,
    StreamDone,
    TextDelta,
    TextReset,
    TurnInterruptParams,
    TurnInterruptRequest,
    TurnStarted,
    Usage,
    UsageEvent,
    VersionMismatch,
    WarningNotification,
    WarningParams,
    decode,
    decode_result,
    encode,
)

OPTIONS = CodexOptions(working_dir="/repo", model="gpt-5-codex", sandbox_mode="workspace-write", timeout_s=30.0)
USAGE = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_tokens=2)
CHAT_BODY = msgspec.Raw(b'{"model":"gpt-5-codex","messages":[{"role":"user","content":"hi"}],"stream":true}')
CHUNK = msgspec.Raw(b'{"id":"c1","object":"chat.completion.chunk","choices":[]}')
RESPONSES_BODY = msgspec.Raw(b'{"model":"gpt-5-codex","input":"hi","stream":true}')
RESPONSE_EVENT = msgspec.Raw(b'{"type":"response.output_text.delta","sequence_number":3,"delta":"hi"}')

REQUESTS: list[Request] = [
    HelloRequest(id=1, params=HelloParams(protocol_version=1, package_version="0.2.0", client_name="vim")),
    ChatCompletionsCreateRequest(id="a", params=ChatCompletionsCreateParams(body=CHAT_BODY, options=OPTIONS)),
    ResponsesCreateRequest(id="r", params=ResponsesCreateParams(body=RESPONSES_BODY, options=OPTIONS)),
    ResponsesCompactRequest(id="rc", params=ResponsesCreateParams(body=RESPONSES_BODY, options=OPTIONS)),
    ResponsesRetrieveRequest(id="q", params=ResponsesRetrieveParams(response_id="resp_1")),
    ResponsesDeleteRequest(id="d", params=ResponsesRetrieveParams(response_id="resp_1")),
    ResponsesCancelRequest(id="c", params=ResponsesRetrieveParams(response_id="resp_1")),
    ResponsesInputItemsRequest(
        id="i", params=ResponsesInputItemsParams(response_id="resp_1", after="msg_1", limit=5, order="asc")
    ),
    ConversationsCreateRequest(id="cc", params=ConversationCreateParams(body=msgspec.Raw(b'{"metadata":{"a":"b"}}'))),
    ConversationsRetrieveRequest(id="cr", params=ConversationParams(conversation_id="conv_1")),
    ConversationsUpdateRequest(
        id="cu", params=ConversationBodyParams(conversation_id="conv_1", body=msgspec.Raw(b'{"metadata":{}}'))
    ),
    ConversationsDeleteRequest(id="cd", params=ConversationParams(conversation_id="conv_1")),
    ConversationItemsCreateRequest(
        id="ic", params=ConversationBodyParams(conversation_id="conv_1", body=msgspec.Raw(b'{"items":[]}'))
    ),
    ConversationItemsListRequest(
        id="il", params=ConversationItemsListParams(conversation_id="conv_1", after="msg_1", limit=5, order="asc")
    ),
    ConversationItemsRetrieveRequest(id="ir", params=ConversationItemParams(conversation_id="conv_1", item_id="msg_1")),
    ConversationItemsDeleteRequest(id="id", params=ConversationItemParams(conversation_id="conv_1", item_id="msg_1")),
    ModelsListRequest(id=3),
    SessionSendRequest(
        id=4, params=SessionSendParams(session_id="s1", text="fix it", options=OPTIONS, system="be terse")
    ),
    SessionsListRequest(id=5),
    SessionCloseRequest(id=6, params=SessionCloseParams(session_id="s1")),
    TurnInterruptRequest(id=7, params=TurnInterruptParams(request_id="a")),
    ApprovalRespondRequest(id=8, params=ApprovalRespondParams(approval_id="ap1", decision="acceptForSession")),
    DaemonStatusRequest(id=9),
    DaemonShutdownRequest(id=10),
]
EVENTS: list[SessionEvent] = [
    TextDelta(item_id="m1", delta="Hel"),
    TextReset(item_id="m1"),
    ItemStarted(item=CommandExecutionItem(id="c1", command="ls", cwd="/repo", status="in_progress")),
    ItemCompleted(item=CommandExecutionItem(id="c1", command="ls", cwd="/", status="completed", exit_code=0)),
    ItemCompleted(item=AgentMessageItem(id="m1", text="Hello")),
    ItemCompleted(item=FileChangeItem(id="f1", status="completed", changes=[FileChange(path="a.py", kind="add")])),
    ItemCompleted(item=ReasoningItem(id="r1", summary="thinking")),
    ItemCompleted(item=OtherItem(id="o1", item_type="web_search")),
    UsageEvent(usage=USAGE),
    TurnStarted(turn_id="t1"),
]
NOTIFICATIONS: list[Notification] = [
    ChatCompletionsChunkNotification(params=ChatCompletionsChunkParams(request_id="a", chunk=CHUNK)),
    ResponsesEventNotification(params=ResponsesEventParams(request_id="r", event=RESPONSE_EVENT)),
    *(
        SessionEventNotification(params=SessionEventParams(request_id=4, session_id="s1", event=event))
        for event in EVENTS
    ),
    ApprovalRequestedNotification(
        params=ApprovalRequestedParams(
            approval_id="ap1",
            request_id=4,
            kind="file_change",
            thread_id="th1",
            turn_id="t1",
            deadline_s=60.0,
            changes=[FileChange(path="a.py", kind="update")],
            available_decisions=["accept", "decline"],
        )
    ),
    WarningNotification(params=WarningParams(request_id=4, message="approval_policy='on-failure' is not accepted")),
    IgnoredNotification(params=IgnoredParams(request_id=4, params=["logit_bias", "temperature"])),
    CancelNotification(params=CancelParams(id="a")),
]
RESULTS: dict[str, Any] = {
    "hello": HelloResult(
        protocol_version=1, package_version="0.2.0", daemon_pid=42, capabilities=["sessions"], max_frame_size=16
    ),
    "chat.completions.create": msgspec.Raw(b'{"id":"x","object":"chat.completion","choices":[]}'),
    "responses.create": msgspec.Raw(b'{"id":"resp_1","object":"response","output":[]}'),
    "responses.compact": msgspec.Raw(b'{"id":"resp_2","object":"response.compaction","output":[]}'),
    "responses.retrieve": msgspec.Raw(b'{"id":"resp_1","object":"response","status":"completed"}'),
    "responses.delete": msgspec.Raw(b'{"id":"resp_1","object":"response.deleted","deleted":true}'),
    "responses.cancel": msgspec.Raw(b'{"id":"resp_1","object":"response","status":"cancelled"}'),
    "responses.input_items.list": msgspec.Raw(b'{"object":"list","data":[],"has_more":false}'),
    "conversations.create": msgspec.Raw(b'{"id":"conv_1","object":"conversation","created_at":1,"metadata":{}}'),
    "conversations.retrieve": msgspec.Raw(b'{"id":"conv_1","object":"conversation","created_at":1,"metadata":{}}'),
    "conversations.update": msgspec.Raw(b'{"id":"conv_1","object":"conversation","created_at":1,"metadata":{}}'),
    "conversations.delete": msgspec.Raw(b'{"id":"conv_1","object":"conversation.deleted","deleted":true}'),
    "conversations.items.create": msgspec.Raw(b'{"object":"list","data":[],"has_more":false}'),
    "conversations.items.list": msgspec.Raw(b'{"object":"list","data":[],"has_more":false}'),
    "conversations.items.retrieve": msgspec.Raw(b'{"id":"msg_1","type":"message","role":"user","content":[]}'),
    "conversations.items.delete": msgspec.Raw(b'{"id":"conv_1","object":"conversation","created_at":1,"metadata":{}}'),
    "models.list": ModelList(data=[msgspec.Raw(b'{"id":"gpt-5-codex","object":"model"}')]),
    "session.send": SessionTurnResult(
        session_id="s1", thread_id="th1", turn_id="t1", text="done", status="completed", usage=USAGE
    ),
    "sessions.list": SessionsListResult(
        sessions=[
            SessionInfo(session_id="s1", thread_id="th1", working_dir="/repo", turns=2, busy=False, last_used=1.5)
        ]
    ),
    "session.close": ClosedResult(closed=True),
    "turn.interrupt": InterruptedResult(interrupted=False),
    "approval.respond": OkResult(ok=True),
    "daemon.status": DaemonStatus(
        pid=42,
        package_version="0.2.0",
        protocol_version=1,
        uptime_s=3.5,
        socket="/run/user/1000/claif-cod/codd.sock",
        processes=[
            ProcessInfo(
                pid=43, working_dir="/repo", codex_path="codex", codex_version="0.160.0", threads=1, turns_in_flight=0
            )
        ],
        sessions=1,
        connections=2,
        turns_in_flight=0,
    ),
    "daemon.shutdown": OkResult(ok=True),
}


def body(**fields: Any) -> bytes:
    return msgspec.json.encode({"jsonrpc": "2.0", **fields})


def decode_error(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as exc:
        decode(data)
    return exc.value


# --- registry --------------------------------------------------------------------------------------


def test_registry_covers_every_message_type_once() -> None:
    registered = [spec.message_type for spec in METHODS.values()]
    assert sorted(registered, key=repr) == sorted([*typing.get_args(Request), *typing.get_args(Notification)], key=repr)
    assert {type(m) for m in REQUESTS} | {type(n) for n in NOTIFICATIONS} == set(registered)
    assert set(RESULTS) == {name for name, spec in METHODS.items() if not spec.is_notification}


def test_registry_params_types_match_the_messages() -> None:
    for spec in METHODS.values():
        (params,) = [f for f in msgspec.structs.fields(spec.message_type) if f.name == "params"]
        assert params.type is spec.params_type, spec.name
        assert spec.is_notification == issubclass(spec.message_type, typing.get_args(Notification))


def test_protocol_version() -> None:
    assert PROTOCOL_VERSION == 1


# --- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [*REQUESTS, *NOTIFICATIONS], ids=lambda m: type(m).__name__)
def test_message_round_trip(message: Message) -> None:
    assert decode(encode(message)) == message


@pytest.mark.parametrize("method", sorted(RESULTS))
def test_result_round_trip(method: str) -> None:
    response = decode(encode(Response(id=1, result=RESULTS[method])))
    assert isinstance(response, Response)
    assert response.id == 1
    result_type = METHODS[method].result_type
    assert result_type is not None
    assert decode_result(response.result, result_type) == RESULTS[method]


def test_stream_done_result() -> None:
    wire = encode(Response(id="a", result=StreamDone(chunks=3)))
    assert wire == b'{"jsonrpc":"2.0","id":"a","result":{"done":true,"chunks":3,"interrupted":false}}'
    response = decode(wire)
    assert isinstance(response, Response)
    assert decode_result(response.result, StreamDone) == StreamDone(chunks=3)
    interrupted = decode(encode(Response(id="b", result=StreamDone(chunks=1, interrupted=True))))
    assert isinstance(interrupted, Response)
    assert decode_result(interrupted.result, StreamDone).interrupted is True
    older = decode(b'{"jsonrpc":"2.0","id":"c","result":{"done":true,"chunks":2}}')  # a daemon before 0.3
    assert isinstance(older, Response)
    assert decode_result(older.result, StreamDone) == StreamDone(chunks=2, interrupted=False)


def test_error_response_round_trip() -> None:
    message = ErrorResponse(id=None, error=ErrorObject(code=-32700, message="bad"))
    assert encode(message) == b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}'
    assert decode(encode(message)) == message


# --- wire shape ------------------------------------------------------------------------------------


def test_hello_wire_bytes() -> None:
    assert encode(REQUESTS[0]) == (
        b'{"method":"hello","jsonrpc":"2.0","id":1,'
        b'"params":{"protocol_version":1,"package_version":"0.2.0","client_name":"vim"}}'
    )


def test_defaults_are_omitted_but_jsonrpc_and_params_are_not() -> None:
    assert encode(SessionsListRequest(id=5)) == b'{"method":"sessions.list","jsonrpc":"2.0","id":5,"params":{}}'
    params = SessionSendParams(session_id="s", text="t")
    assert msgspec.json.encode(params) == b'{"session_id":"s","text":"t"}'
    assert msgspec.json.encode(ModelList()) == b'{"object":"list","data":[]}'


def test_notifications_have_no_id() -> None:
    assert encode(CancelNotification(params=CancelParams(id=3))) == (
        b'{"method":"$/cancel","jsonrpc":"2.0","params":{"id":3}}'
    )


def test_events_and_items_are_tagged_by_type() -> None:
    event = ItemStarted(item=AgentMessageItem(id="m1", text=""))
    assert msgspec.json.encode(event) == b'{"type":"item_started","item":{"type":"agent_message","id":"m1","text":""}}'


def test_codex_options_repr_masks_api_key() -> None:
    options = CodexOptions(api_key="sk-secret-123", model="m")
    for text in (repr(options), repr(SessionSendParams(session_id="s", text="t", options=options))):
        assert "sk-secret-123" not in text
        assert "api_key='***'" in text
    assert ("api_key", "***") in options.__rich_repr__()
    assert "api_key=None" in repr(CodexOptions())
    assert b"sk-secret-123" in msgspec.json.encode(options)  # the daemon still receives it


# --- compatibility ---------------------------------------------------------------------------------


def test_unknown_fields_are_ignored_everywhere() -> None:
    data = body(
        id=4,
        method="session.send",
        future_envelope_field=[1, 2],
        params={"session_id": "s", "text": "t", "new": True, "options": {"model": "m", "turbo": 1}},
    )
    assert decode(data) == SessionSendRequest(
        id=4, params=SessionSendParams(session_id="s", text="t", options=CodexOptions(model="m"))
    )
    event = {"type": "text_delta", "item_id": "i", "delta": "d", "extra": {}}
    notification = decode(body(method="session.event", params={"request_id": 1, "session_id": "s", "event": event}))
    assert isinstance(notification, SessionEventNotification)
    assert notification.params.event == TextDelta(item_id="i", delta="d")


def test_missing_optional_fields_are_defaulted() -> None:
    assert decode(body(id=1, method="sessions.list")) == SessionsListRequest(id=1)
    assert decode(body(id=1, method="turn.interrupt", params={})) == TurnInterruptRequest(id=1)
    hello = decode(
        body(id=1, method="hello", params={"protocol_version": 1, "package_version": "x", "client_name": "c"})
    )
    assert isinstance(hello, HelloRequest)
    assert hello.params.capabilities == []
    send = decode(body(id=1, method="session.send", params={"session_id": "s", "text": "t"}))
    assert isinstance(send, SessionSendRequest)
    assert send.params.options == CodexOptions()
    assert send.params.system is None
    assert not send.params.options.strict


# --- error paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [7, "req-7"])
def test_unknown_method_keeps_the_id(request_id: int | str) -> None:
    error = decode_error(body(id=request_id, method="files.delete", params={}))
    assert isinstance(error, MethodNotFound)
    assert error.code == ErrorCode.METHOD_NOT_FOUND
    assert error.request_id == request_id
    assert not error.notification
    assert "files.delete" in error.message


def test_unknown_notification_must_not_be_answered() -> None:
    error = decode_error(body(method="$/progress", params={}))
    assert isinstance(error, MethodNotFound)
    assert error.request_id is None
    assert error.notification


def test_wrong_param_type_reports_msgspec_path_and_id() -> None:
    error = decode_error(body(id="x", method="session.send", params={"session_id": 5, "text": "t"}))
    assert isinstance(error, InvalidParams)
    assert error.code == -32602
    assert error.request_id == "x"
    assert error.message == "Expected `str`, got `int` - at `$.params.session_id`"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("nope", "Expected `object`, got `str` - at `$.params`"),
        ({"session_id": "s"}, "Object missing required field `text` - at `$.params`"),
        (
            {"approval_id": "a", "decision": "maybe"},
            "Invalid enum value 'maybe' - at `$.params.decision`",
        ),
    ],
)
def test_invalid_params_messages(params: Any, message: str) -> None:
    method = "approval.respond" if isinstance(params, dict) and "approval_id" in params else "session.send"
    error = decode_error(body(id=1, method=method, params=params))
    assert isinstance(error, InvalidParams)
    assert error.message == message


def test_invalid_params_in_a_notification_is_flagged() -> None:
    error = decode_error(body(method="$/cancel", params={"id": 1.5}))
    assert isinstance(error, InvalidParams)
    assert error.notification
    assert error.request_id is None


def test_invalid_nested_event() -> None:
    params = {"request_id": 1, "session_id": "s", "event": {"type": "telepathy"}}
    error = decode_error(body(method="session.event", params=params))
    assert isinstance(error, InvalidParams)
    assert error.message == "Invalid value 'telepathy' - at `$.params.event.type`"


@pytest.mark.parametrize("data", [b"[]", b'[{"jsonrpc":"2.0","id":1,"method":"hello"}]', b'"hello"', b"42", b"null"])
def test_not_an_object_is_an_invalid_request(data: bytes) -> None:
    error = decode_error(data)
    assert isinstance(error, InvalidRequest)
    assert error.code == -32600
    assert error.message.startswith("Expected `object`")
    assert error.request_id is None


def test_missing_or_wrong_jsonrpc_keeps_the_id() -> None:
    for data in (
        msgspec.json.encode({"id": 3, "method": "sessions.list"}),
        msgspec.json.encode({"jsonrpc": "1.0", "id": 3, "method": "sessions.list"}),
    ):
        error = decode_error(data)
        assert isinstance(error, InvalidRequest)
        assert error.request_id == 3
        assert error.message == '"jsonrpc" must be "2.0"'
    error = decode_error(msgspec.json.encode({"jsonrpc": 2.0, "id": 3, "method": "sessions.list"}))
    assert isinstance(error, InvalidRequest)
    assert error.request_id == 3
    assert error.message == "Expected `str`, got `float` - at `$.jsonrpc`"


@pytest.mark.parametrize(
    ("fields", "message", "request_id"),
    [
        ({"method": "hello", "params": {}}, "'hello' is a request and needs an integer or string \"id\"", None),
        ({"id": None, "method": "sessions.list"}, "'sessions.list' is a request and needs an integer or string", None),
        ({"id": 2, "method": "$/cancel", "params": {"id": 1}}, "'$/cancel' is a notification and must not", 2),
        ({"id": 1.5, "method": "sessions.list"}, "Expected `int | str | null`, got `float` - at `$.id`", None),
        ({"id": 9, "method": 5}, "Expected `str`, got `int` - at `$.method`", 9),
        ({"id": 1}, 'a message needs "method", "result" or "error"', 1),
        ({"id": 1, "result": {}, "error": {"code": 1, "message": "m"}}, "either", 1),
        ({"result": {}}, 'a successful response needs a non-null "id"', None),
        ({"id": None, "result": {}}, 'a successful response needs a non-null "id"', None),
        ({"error": {"code": 1, "message": "m"}}, 'an error response needs an "id"', None),
        ({"id": 4, "error": {"code": "x"}}, "Expected `int`, got `str` - at `$.error.code`", 4),
        ({"id": 4, "error": None}, "Expected `object`, got `null` - at `$.error`", 4),
    ],
)
def test_invalid_envelopes(fields: dict[str, Any], message: str, request_id: int | None) -> None:
    error = decode_error(body(**fields))
    assert isinstance(error, InvalidRequest)
    assert message in error.message
    assert error.request_id == request_id


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"jsonrpc":"2.0",}',
        b'{"jsonrpc":"2.0"} trailing',
        b"\xff\xfe{}",
        b'{"jsonrpc":"2.0","id":1,"method":"session.close","params":{"session_id":"\xff"}}',
        b'{"jsonrpc":"2.0","id":1,"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"jsonrpc":"2.0","id":1,"method":"session.send","params":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_malformed_json_is_a_parse_error(data: bytes) -> None:
    error = decode_error(data)
    assert isinstance(error, ParseError)
    assert error.code == -32700


def test_parse_error_in_params_keeps_the_id() -> None:
    error = decode_error(b'{"jsonrpc":"2.0","id":1,"method":"session.close","params":{"session_id":"\xff"}}')
    assert error.request_id == 1


def test_decode_result_rejects_a_mismatched_result() -> None:
    with pytest.raises(InvalidResult) as exc:
        decode_result(msgspec.Raw(b'{"closed":"yes"}'), ClosedResult)
    assert isinstance(exc.value, InternalError)
    assert exc.value.code == ErrorCode.INTERNAL_ERROR
    assert "ClosedResult" in exc.value.message
    with pytest.raises(InvalidResult):
        decode_result(msgspec.Raw(b"{"), ClosedResult)


# --- errors ----------------------------------------------------------------------------------------


def test_error_codes() -> None:
    assert {code.name: int(code) for code in ErrorCode} == {
        "PARSE_ERROR": -32700,
        "INVALID_REQUEST": -32600,
        "METHOD_NOT_FOUND": -32601,
        "INVALID_PARAMS": -32602,
        "INTERNAL_ERROR": -32603,
        "OPENAI_ERROR": -32000,
        "OVERLOADED": -32001,
        "HELLO_REQUIRED": -32002,
        "VERSION_MISMATCH": -32003,
        "FRAME_TOO_LARGE": -32004,
        "SESSION_BUSY": -32005,
        "UNKNOWN_SESSION": -32006,
        "HELLO_TIMEOUT": -32007,
        "DUPLICATE_ID": -32008,
        "REQUEST_CANCELLED": -32800,
    }


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.name)
def test_every_code_survives_the_wire_as_its_exception(code: ErrorCode) -> None:
    exc_type = type(ProtocolError.from_error(ErrorObject(code=code, message="m")))
    assert exc_type.default_code == code
    sent = exc_type("went wrong", request_id=12)
    received = decode(encode(ErrorResponse.from_exception(sent)))
    assert isinstance(received, ErrorResponse)
    assert received.id == 12
    rebuilt = ProtocolError.from_error(received.error, request_id=received.id)
    assert type(rebuilt) is exc_type
    assert (rebuilt.code, rebuilt.message, rebuilt.request_id) == (code, "went wrong", 12)


def test_unknown_code_stays_a_plain_protocol_error() -> None:
    rebuilt = ProtocolError.from_error(ErrorObject(code=-31999, message="new"))
    assert type(rebuilt) is ProtocolError
    assert rebuilt.code == -31999


def test_openai_error_carries_status_and_body() -> None:
    openai_body = OpenAIErrorBody(
        error=OpenAIErrorDetail(message="Rate limit", type="rate_limit_error", code="rate_limit_exceeded")
    )
    sent = OpenAIStatusError.from_openai(429, openai_body, request_id="a")
    wire = encode(ErrorResponse.from_exception(sent))
    assert wire == (
        b'{"jsonrpc":"2.0","id":"a","error":{"code":-32000,"message":"Rate limit","data":{"status_code":429,'
        b'"body":{"error":{"message":"Rate limit","type":"rate_limit_error","param":null,'
        b'"code":"rate_limit_exceeded"}}}}}'
    )
    received = decode(wire)
    assert isinstance(received, ErrorResponse)
    rebuilt = ProtocolError.from_error(received.error)
    assert isinstance(rebuilt, OpenAIStatusError)
    assert rebuilt.status_code == 429
    assert rebuilt.body == openai_body
    assert OpenAIStatusError("no data").status_code is None


def test_overloaded_carries_retry_after() -> None:
    sent = Overloaded.retry_after(2.5, request_id=1)
    assert sent.to_error() == ErrorObject(code=-32001, message="daemon overloaded", data=ErrorData(retry_after_s=2.5))
    received = decode(encode(ErrorResponse.from_exception(sent)))
    assert isinstance(received, ErrorResponse)
    rebuilt = ProtocolError.from_error(received.error)
    assert isinstance(rebuilt, Overloaded)
    assert rebuilt.retry_after_s == 2.5


def test_version_mismatch_says_what_to_do() -> None:
    error = VersionMismatch.between(2, 1, "0.1.9", request_id=1)
    assert error.code == ErrorCode.VERSION_MISMATCH
    assert "protocol version 2" in error.message
    assert "version 1" in error.message
    assert "0.1.9" in error.message
    assert "`claif-codd stop`" in error.message
