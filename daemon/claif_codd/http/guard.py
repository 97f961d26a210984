"""Who may use the HTTP endpoint, checked before any handler runs.

Without a token the endpoint is as private as the daemon's socket: only loopback connections
whose client socket belongs to our own uid (looked up as each is accepted: :mod:`.admission`). With a token, the
``Authorization: Bearer`` header must carry it. Either way, requests sent by web pages (they
carry ``Origin``) are refused, and on loopback the ``Host`` header must name loopback too, so a
page cannot reach the endpoint through DNS rebinding. ``/healthz`` needs no credentials.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from claif_codd.http.admission import Admission
from claif_codd.http.responses import error_response
from claif_codd.http.settings import HttpSettings

OPEN_PATHS = frozenset({"/healthz"})


def make_guard(settings: HttpSettings, admission: Admission) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = _refusal(request, settings, admission)
        if refusal is not None:
            return refusal
        return await handler(request)

    return guard


def _refusal(request: web.Request, settings: HttpSettings, admission: Admission) -> web.Response | None:
    if "Origin" in request.headers:
        return error_response(403, "requests from web pages are refused", "permission_error", "origin_refused")
    if settings.loopback and not _is_loopback_name(request.url.host):
        return error_response(
            403, f"Host {request.host!r} does not name this loopback server", "permission_error", "host_refused"
        )
    if request.path in OPEN_PATHS:
        return None
    if settings.token is not None:
        return _token_refusal(request, settings.token)
    return _peer_refusal(request, admission)


def _is_loopback_name(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_refusal(request: web.Request, token: str) -> web.Response | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # (a header's bytes that are not UTF-8 come as surrogates, which encode to no token: refused)
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(errors="replace"), token.encode()):
        return None
    return error_response(
        401,
        "a valid bearer token is required",
        "invalid_request_error",
        "invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _peer_refusal(request: web.Request, admission: Admission) -> web.Response | None:
    if admission.own(request.protocol):
        return None
    response = error_response(
        403,
        "this connection is not the daemon's own user's (it is another user's, or its owner could not be "
        "traced); only the daemon's own user may connect without a token",
        "permission_error",
        "peer_refused",
    )
    response.force_close()  # the connection is not to be kept: its user may hold only a few (admission)
    return response
