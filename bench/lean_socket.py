"""What a careful hand-written client of claif-codd's socket gets: ``floor_bench.py``'s ``daemon,
lean socket`` row.

One blocking connection, ``hello`` once; per turn the request frame encoded once, ``recv`` in the
caller's own thread until its reply, the reply decoded with msgspec (no openai objects, as the
``daemon HTTP`` row's lean client).  Against it, the ``daemon socket`` row (``CodexClient``) adds
only what the client library does: its thread hops, its per-request work and openai's objects.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import msgspec
from bench_common import elapsed_ms
from offline_chat import MODEL

from claif_cod import __version__
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    ChatCompletionsChunkNotification,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    Request,
    Response,
    decode,
    encode,
    encode_frame,
)


class LeanSocket:
    def __init__(self, path: Path, options: CodexOptions) -> None:
        """``options``: the ``daemon socket`` row's client's, so that both use the same Codex process."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.decoder = FrameDecoder()
        self.ids = 0
        self.options = options
        hello = HelloParams(protocol_version=PROTOCOL_VERSION, package_version=__version__, client_name="lean")
        self._call(HelloRequest(id=self._id(), params=hello))

    def _id(self) -> int:
        self.ids += 1
        return self.ids

    def _call(self, request: Request, on_chunk: Any = None) -> msgspec.Raw:
        """Send ``request``; its result, every chunk of it handed to ``on_chunk`` on the way."""
        self.sock.sendall(encode_frame(encode(request)))
        while True:
            data = self.sock.recv(256 * 1024)
            if not data:
                raise RuntimeError("claif-codd closed the connection")
            for body in self.decoder.feed(data):
                message = decode(body)
                if isinstance(message, ChatCompletionsChunkNotification) and on_chunk is not None:
                    on_chunk(message.params.chunk)
                elif isinstance(message, Response) and message.id == request.id:
                    return message.result
                elif isinstance(message, ErrorResponse) and message.id == request.id:
                    raise RuntimeError(f"claif-codd: {message.error.message}")

    def _request(self, body: dict[str, Any]) -> ChatCompletionsCreateRequest:
        params = ChatCompletionsCreateParams(body=msgspec.Raw(msgspec.json.encode(body)), options=self.options)
        return ChatCompletionsCreateRequest(id=self._id(), params=params)

    def turn(self, chat: Any) -> float:
        chat.ask()
        start = time.perf_counter()
        raw = self._call(self._request({"model": MODEL, "messages": chat.messages}))
        reply = msgspec.json.decode(raw)["choices"][0]["message"]["content"]
        took = elapsed_ms(start)
        chat.answer(reply)
        return took

    def first_token(self, chat: Any) -> float:
        chat.ask()
        first: list[float] = []
        parts: list[str] = []

        def on_chunk(chunk: msgspec.Raw) -> None:
            choices = msgspec.json.decode(chunk)["choices"]
            content = choices[0]["delta"].get("content") if choices else None
            if content:
                if not first:
                    first.append(elapsed_ms(start))
                parts.append(content)

        start = time.perf_counter()
        self._call(self._request({"model": MODEL, "messages": chat.messages, "stream": True}), on_chunk)
        chat.answer("".join(parts))
        return first[0]

    def close(self) -> None:
        self.sock.close()
