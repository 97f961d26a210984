"""A local HTTP server that answers every GET with one PNG: a remote image the tests' clients fetch."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from image_details import PNG


class _Png(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def png_host() -> Iterator[str]:
    """The server's base URL, ``http://127.0.0.1:PORT``; stopped on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Png)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
