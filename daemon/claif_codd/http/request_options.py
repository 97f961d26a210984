"""What an HTTP request of ``serve --http`` asks of its turn besides its body, taken from its headers
(see :mod:`claif_codd.http.app` for the list), and how its turn learns that its client hung up."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from functools import partial

from aiohttp import web

from claif_cod._utf8 import is_utf8
from claif_cod.engine.config import CodexConfig
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.options import RequestOptions
from claif_codd.http.settings import HttpSettings

WORKING_DIR_HEADER = "X-Claif-Cod-Working-Dir"
SANDBOX_HEADER = "X-Claif-Cod-Sandbox"
APPROVAL_HEADER = "X-Claif-Cod-Approval-Policy"
TIMEOUT_HEADERS = ("X-Stainless-Read-Timeout", "X-Stainless-Timeout")
"""The openai SDKs' timeouts, in seconds: Python's read timeout, else Node's whole timeout (cut to
whole seconds, so the client gives up within a second after it)."""
ANSWER_EARLY_S = 0.5
"""The turn ends this much (at most a tenth of it) before the SDK's read timeout: its caller then
gets the 504 from a turn already stopped, instead of giving up itself while the turn still runs
(the SDK retries either, unless the turn acted: ``x-should-retry: false``)."""


def request_options(request: web.Request, settings: HttpSettings, warn: Callable[[str], None]) -> RequestOptions:
    """The options ``request`` runs with; ``warn`` takes what OpenAI's HTTP API has no place for."""
    working_dir = request.headers.get(WORKING_DIR_HEADER, settings.working_dir)
    if not os.path.isabs(working_dir):
        raise APIFailure.bad_request(f"{WORKING_DIR_HEADER} must be an absolute path")
    if not is_utf8(working_dir):  # (header bytes that are not UTF-8 come as surrogates)
        raise APIFailure.bad_request(f"{WORKING_DIR_HEADER} must be UTF-8")
    config = CodexConfig(
        working_dir=working_dir,
        sandbox_mode=request.headers.get(SANDBOX_HEADER),
        approval_policy=request.headers.get(APPROVAL_HEADER),
    )
    options = RequestOptions(config=config, strict=settings.strict, warn=warn, caller_gone=partial(hung_up, request))
    for header in TIMEOUT_HEADERS:
        client_timeout = _positive(request.headers.get(header))
        if client_timeout is not None:
            early = min(ANSWER_EARLY_S, client_timeout * 0.1)
            source = f"{header}: {client_timeout:g} s, less {early:.2g} s to answer before the client does"
            return dataclasses.replace(options, timeout=client_timeout - early, timeout_source=source)
    return options


def hung_up(request: web.Request) -> bool:
    """The client's connection is closing: it hung up (its request's cancellation follows a loop step
    later), or was dropped; nothing written from now on reaches it."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _positive(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None
