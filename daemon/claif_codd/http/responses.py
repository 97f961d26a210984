"""OpenAI-shaped HTTP answers: every failure is ``{"error": {...}}`` with the status ``openai`` maps to its class."""

from __future__ import annotations

import os

import msgspec
from aiohttp import web

from claif_cod.openai_compat.errors import APIFailure, ErrorBody, ErrorDetail
from claif_cod.transport.backend import sse

_encoder = msgspec.json.Encoder()

_STATUS_BY_KIND = {"connection": 502, "timeout": 504}
"""In-process these are exceptions; over HTTP, a gateway status (which ``openai`` retries)."""


def new_request_id() -> str:
    """What names an answer (``x-request-id``, as OpenAI's answers carry it) and its log line."""
    return f"req_{os.urandom(12).hex()}"


def json_response(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def failure_response(failure: APIFailure, headers: dict[str, str] | None = None) -> web.Response:
    status = failure.status if failure.kind == "status" else _STATUS_BY_KIND[failure.kind]
    return json_response(_encoder.encode(failure.body), status=status, headers={**failure.headers, **(headers or {})})


def error_response(
    status: int, message: str, error_type: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return failure_response(APIFailure("status", status, ErrorDetail(message, error_type, code)), headers)


def failure_event(failure: APIFailure) -> bytes:
    """A failure after the stream began: the event ``openai``'s ``Stream`` raises as ``APIError``."""
    return sse(_encoder.encode(ErrorBody(error=failure.detail)))
