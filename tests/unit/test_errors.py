"""translate(): engine errors and Codex's failure shapes as OpenAI HTTP statuses and error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec
import pytest

from claif_cod.engine.errors import (
    CodexNotFound,
    CodexProcessDied,
    CodexRpcError,
    CodexStartFailed,
    EngineError,
    InvalidRequest,
    TurnFailed,
    TurnTimedOut,
)
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail, response_error, translate

CONTEXT_MESSAGE = "Your input exceeds the context window of this model. Please adjust your input and try again."
CONTEXT_BODY = json.dumps(
    {
        "error": {
            "message": CONTEXT_MESSAGE,
            "type": "invalid_request_error",
            "param": None,
            "code": "context_length_exceeded",
        }
    }
)
UNAUTHORIZED = (
    "unexpected status 401 Unauthorized: "
    '{"error":{"message":"Incorrect API key provided: sk-***","type":"invalid_request_error","code":"invalid_api_key"}}'
)
TOO_MANY = "exceeded retry limit, last status: 429 Too Many Requests"
QUOTA = "Quota exceeded. Check your plan and billing details."
SERVER = "We're currently experiencing high demand, which may cause temporary errors."
MISSING_KEY = "Missing environment variable: `CLAIF_TEST_KEY`. Create an API key and export it."
STREAM = "stream disconnected before completion: scripted failure"


@dataclass(frozen=True)
class Case:
    error: BaseException
    kind: str
    status: int
    type: str
    code: str | None
    message: str
    """Expected message, or a part of it when ``exact`` is false."""
    exact: bool = True
    param: str | None = None


CASES: dict[str, Case] = {
    # Codex 0.163 turn failures, as `turn/completed` reports them
    "context window (upstream 400 body)": Case(
        TurnFailed(CONTEXT_BODY, "other"),
        "status",
        400,
        "invalid_request_error",
        "context_length_exceeded",
        CONTEXT_MESSAGE,
    ),
    "context window (pretty-printed body)": Case(
        TurnFailed(json.dumps(json.loads(CONTEXT_BODY), indent=2), "other"),
        "status",
        400,
        "invalid_request_error",
        "context_length_exceeded",
        CONTEXT_MESSAGE,
    ),
    "context window (named)": Case(
        TurnFailed("context window exceeded", "contextWindowExceeded"),
        "status",
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "context window exceeded",
    ),
    "401": Case(
        TurnFailed(UNAUTHORIZED, {"httpConnectionFailed": {"httpStatusCode": 401}}),
        "status",
        401,
        "invalid_request_error",
        "invalid_api_key",
        UNAUTHORIZED,
    ),
    "429 after retries": Case(
        TurnFailed(TOO_MANY, {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}),
        "status",
        429,
        "requests",
        "rate_limit_exceeded",
        TOO_MANY,
    ),
    "insufficient quota": Case(
        TurnFailed(QUOTA, "usageLimitExceeded"),
        "status",
        429,
        "insufficient_quota",
        "insufficient_quota",
        QUOTA,
    ),
    "500": Case(TurnFailed(SERVER, "internalServerError"), "status", 500, "server_error", None, SERVER),
    "overloaded": Case(TurnFailed(SERVER, "serverOverloaded"), "status", 503, "server_error", None, SERVER),
    "missing key variable": Case(
        TurnFailed(MISSING_KEY, "other"),
        "status",
        401,
        "invalid_request_error",
        "invalid_api_key",
        MISSING_KEY,
    ),
    "missing key variable, no info": Case(
        TurnFailed(MISSING_KEY, None),
        "status",
        401,
        "invalid_request_error",
        "invalid_api_key",
        MISSING_KEY,
    ),
    "stream failure": Case(TurnFailed(STREAM, "other"), "status", 500, "server_error", None, STREAM),
    "stream disconnected (named, no status)": Case(
        TurnFailed(STREAM, {"responseStreamDisconnected": {"httpStatusCode": None}}),
        "connection",
        0,
        "connection_error",
        None,
        STREAM,
    ),
    "model unreachable (refused or unknown host, retries spent)": Case(
        TurnFailed("Connection failed: error sending request", {"httpConnectionFailed": {"httpStatusCode": None}}),
        "connection",
        0,
        "connection_error",
        None,
        "Connection failed: error sending request",
    ),
    "model stream dropped before its end (retries spent)": Case(
        TurnFailed("stream disconnected before completion: stream closed before response.completed", "other"),
        "connection",
        0,
        "connection_error",
        None,
        "stream disconnected before completion: stream closed before response.completed",
    ),
    "idle timeout": Case(
        TurnFailed("stream disconnected before completion: idle timeout waiting for SSE", "other"),
        "timeout",
        408,
        "timeout",
        None,
        "idle timeout waiting for SSE",
        exact=False,
    ),
    "bad request": Case(TurnFailed("bad", "badRequest"), "status", 400, "invalid_request_error", None, "bad"),
    "other http status": Case(
        TurnFailed("not here", {"httpConnectionFailed": {"httpStatusCode": 404}}),
        "status",
        404,
        "invalid_request_error",
        None,
        "not here",
    ),
    "other client-side http status": Case(
        TurnFailed("not for you", {"httpConnectionFailed": {"httpStatusCode": 403}}),
        "status",
        403,
        "invalid_request_error",
        None,
        "not for you",
    ),
    "unknown turn failure": Case(
        TurnFailed("scripted failure", "other"), "status", 500, "server_error", None, "scripted failure"
    ),
    "turn failure without info": Case(TurnFailed("boom", None), "status", 500, "server_error", None, "boom"),
    # engine errors
    "invalid request": Case(
        InvalidRequest("n must be between 1 and 16", param="n"),
        "status",
        400,
        "invalid_request_error",
        None,
        "n must be between 1 and 16",
        param="n",
    ),
    "turn timed out": Case(TurnTimedOut(1.5), "timeout", 408, "timeout", None, "1.5 s deadline", exact=False),
    "codex not found": Case(
        CodexNotFound(["codex_path=/x/codex (not executable)", "`codex` on PATH (not found)"]),
        "connection",
        0,
        "connection_error",
        None,
        "codex_path=/x/codex (not executable); `codex` on PATH (not found)",
        exact=False,
    ),
    "codex start failed": Case(
        CodexStartFailed("could not start /x/codex app-server"),
        "connection",
        0,
        "connection_error",
        None,
        "could not start /x/codex app-server",
    ),
    "codex process died": Case(
        CodexProcessDied(137, "thread 'main' panicked"),
        "connection",
        0,
        "connection_error",
        None,
        "codex app-server exited (code 137): thread 'main' panicked",
    ),
    "rpc overloaded": Case(
        CodexRpcError("turn/start", -32001, "Server overloaded; retry later."),
        "status",
        503,
        "server_error",
        "server_overloaded",
        "Server overloaded; retry later.",
    ),
    "rpc rejected": Case(
        CodexRpcError("thread/start", -32600, "invalid sandbox"),
        "status",
        400,
        "invalid_request_error",
        None,
        "Codex rejected thread/start: invalid sandbox",
    ),
    "other engine error": Case(EngineError("weird"), "status", 500, "server_error", None, "weird"),
    "unknown exception": Case(
        ValueError("boom"),
        "status",
        500,
        "server_error",
        None,
        "internal error in claif_cod: ValueError: boom",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_translate(case: Case) -> None:
    failure = translate(case.error)
    assert (failure.kind, failure.status, failure.detail.type, failure.detail.code) == (
        case.kind,
        case.status,
        case.type,
        case.code,
    )
    if case.exact:
        assert failure.detail.message == case.message
    else:
        assert case.message in failure.detail.message
    assert str(failure) == failure.detail.message
    assert failure.detail.param == case.param


@pytest.mark.parametrize(
    ("code", "type_", "status"),
    [
        ("insufficient_quota", "insufficient_quota", 429),
        ("rate_limit_exceeded", "requests", 429),
        ("invalid_api_key", "authentication_error", 401),
        (None, "server_error", 500),
        ("whatever", "unheard_of_type", 400),
    ],
)
def test_upstream_bodies_keep_their_code_and_get_a_status_from_it(code: str | None, type_: str, status: int) -> None:
    raw = json.dumps({"error": {"message": "upstream says no", "type": type_, "param": "input", "code": code}})
    failure = translate(TurnFailed(raw, "other"))
    assert (failure.kind, failure.status) == ("status", status)
    assert failure.detail == ErrorDetail("upstream says no", type_, code, "input")


@pytest.mark.parametrize("message", ["{not json", '{"detail": "no error member"}', '{"error": "just a string"}'])
def test_brace_messages_that_are_not_openai_bodies_are_kept_verbatim(message: str) -> None:
    failure = translate(TurnFailed(message, "other"))
    assert failure.status == 500
    assert failure.detail.message == message


def test_context_length_from_an_http_400_message() -> None:
    message = "unexpected status 400 Bad Request: maximum context length exceeded"
    failure = translate(TurnFailed(message, {"httpConnectionFailed": {"httpStatusCode": 400}}))
    assert (failure.status, failure.detail.code, failure.detail.message) == (400, "context_length_exceeded", message)


def test_nonsense_http_status_is_a_500() -> None:
    failure = translate(TurnFailed("odd", {"httpConnectionFailed": {"httpStatusCode": 302}}))
    assert failure.status == 500


def test_api_failure_passes_through_unchanged() -> None:
    original = APIFailure.bad_request("nope", param="stop", code="c")
    assert translate(original) is original


def test_body_is_the_openai_error_envelope() -> None:
    failure = translate(TurnFailed(CONTEXT_BODY, "other"))
    encoded = json.loads(msgspec.json.encode(failure.body))
    assert encoded == {
        "error": {
            "message": CONTEXT_MESSAGE,
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
            "param": None,
        }
    }


@pytest.mark.parametrize(
    ("message", "info", "code", "text"),
    [
        (CONTEXT_BODY, None, "server_error", CONTEXT_MESSAGE),
        (QUOTA, "usageLimitExceeded", "rate_limit_exceeded", QUOTA),
        (TOO_MANY, {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}, "rate_limit_exceeded", TOO_MANY),
        (STREAM, {"responseStreamDisconnected": {"httpStatusCode": None}}, "server_error", STREAM),
    ],
)
def test_a_failed_response_has_one_of_openais_codes_and_the_providers_message(
    message: str, info: object, code: str, text: str
) -> None:
    """A stream's ``response.failed`` said ``server_error`` with Codex's raw message (an upstream
    error's JSON body) whatever the failure."""
    assert response_error(message, info) == (code, text)
