"""A peer the daemon cannot serve (at ``--max-connections``, short of file descriptors, draining):
told why, by the id of what it sends, then closed.

Every request (normally just the ``hello``) arriving within :data:`REFUSE_GRACE_S` is answered with
the error by its ``id``, so a client's handshake fails with the OVERLOADED error itself; a peer that
has sent no request after :data:`REFUSE_HELLO_WAIT_S` gets it with ``id`` null, so nobody waits on a
silent socket. Reading what the peer sent before closing also makes the close an orderly EOF rather
than a reset.

The daemon's own commands are let in all the same: a peer whose ``hello`` names it
:data:`~claif_codd.config.CONTROL_CLIENT` (``claif-codd status``, ``stop``, ``sessions``) is served, for
those commands only, while the daemon lets it (``admit``): else a daemon at its limit (the clients of a
runaway script) could be neither looked at nor stopped but with ``kill``, and its refusal told the
user to start one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from claif_cod.protocol import FrameDecoder, HelloRequest, Overloaded, ProtocolError, RequestId, decode
from claif_codd.config import CONTROL_CLIENT
from claif_codd.connection import REQUEST_TYPES, Admitted, error_frame

REFUSE_GRACE_S = 1.0
"""How long a refused connection is read (its requests answered by id) before it is closed."""
REFUSE_HELLO_WAIT_S = 0.2
"""How long a refused connection may take to send its hello before it is told with ``id`` null."""


async def refuse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    error: Overloaded,
    *,
    max_frame: int,
    refused: Callable[[], None],
    admit: Callable[[], bool] | None = None,
    linger: bool = True,
) -> Admitted | None:
    """Tell the peer ``error`` and close it (``refused`` is called as it is first told), or, when its
    ``hello`` is the daemon's own commands' and ``admit()`` says there is room, stop there and
    return what it sent, to be served. Without ``linger`` the peer is closed once it has its answer:
    refused for want of file descriptors, each peer kept waiting holds one of the few left, and a
    burst of them would use them all up."""
    answered = False

    def reply(request_id: RequestId | None) -> None:
        nonlocal answered
        if not answered:
            refused()
        answered = True
        writer.write(error_frame(request_id, error, max_frame)[0])

    loop = asyncio.get_running_loop()
    deadline = loop.time() + (REFUSE_GRACE_S if linger else REFUSE_HELLO_WAIT_S)
    decoder = FrameDecoder(max_frame)
    reading: asyncio.Future[bytes] | None = None
    admitted: Admitted | None = None
    try:
        while (remaining := deadline - loop.time()) > 0:
            reading = reading or asyncio.ensure_future(reader.read(64 * 1024))
            wait = remaining if answered else min(remaining, REFUSE_HELLO_WAIT_S)
            done, _ = await asyncio.wait({reading}, timeout=wait)
            if not done:
                if not answered:
                    reply(None)
                continue
            data, reading = reading.result(), None
            if not data:
                break
            frames = decoder.feed(data)
            for i, body in enumerate(frames):
                with contextlib.suppress(ProtocolError):
                    message = decode(body)
                    if not answered and _control_hello(message) and admit is not None and admit():
                        admitted = Admitted(decoder, frames[i:])
                        return admitted
                    if isinstance(message, REQUEST_TYPES):
                        reply(message.id)
            await asyncio.wait_for(writer.drain(), max(0.0, deadline - loop.time()))
            if answered and not linger:
                break
        if not answered:
            reply(None)
    except (asyncio.TimeoutError, ConnectionError, ProtocolError, RuntimeError):
        pass
    finally:
        if reading is not None:
            reading.cancel()
        if admitted is None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), REFUSE_GRACE_S)
    return None


def _control_hello(message: object) -> bool:
    return isinstance(message, HelloRequest) and message.params.client_name == CONTROL_CLIENT
