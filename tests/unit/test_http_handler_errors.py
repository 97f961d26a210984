"""A handler that fails unexpectedly (a bug past the endpoint's middleware) still answers as OpenAI does.

:class:`JsonErrorRunner` on its own, in-process: such a failure is a 500 ``server_error`` body and one
error record with the traceback; the next request on a new connection is served.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web

from claif_codd.http.admission import Admission
from claif_codd.http.parse_errors import JsonErrorRunner


async def broken(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a bug")


async def fine(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


async def get(port: int, path: str) -> tuple[int, str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    content_type = next(line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("content-type"))
    return int(lines[0].split()[1]), content_type, body


async def test_an_unexpected_handler_failure_is_a_500_error_body_and_one_error_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = web.Application()
    app.router.add_get("/broken", broken)
    app.router.add_get("/fine", fine)
    runner = JsonErrorRunner(app, Admission(own_uid_only=False, max_connections=8), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.DEBUG):
            status, content_type, body = await get(port, "/broken")
        assert status == 500 and content_type.startswith("application/json"), (status, content_type)
        error = json.loads(body)["error"]
        assert error["type"] == "server_error" and error["param"] is None, error
        assert "a bug" not in error["message"]  # the client learns nothing of our internals
        records = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(records) == 1 and records[0].name == "claif_codd.http", records
        assert records[0].getMessage() == "http.handler_failed"
        assert "RuntimeError: a bug" in getattr(records[0], "exception", ""), records[0].__dict__
        assert (await get(port, "/fine"))[0] == 200
    finally:
        await runner.cleanup()
