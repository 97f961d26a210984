"""One blocking connection to claif-codd, used from a caller's own thread (see
:mod:`claif_cod.transport.direct_daemon`).

The same checks as the engine loop's connection (``DaemonConnection.open``): the socket's directory
and owner before connecting, the listening process's uid right after, then ``hello``; nothing is
sent to a daemon that is not the user's own.  It carries one request at a time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import select
import socket
import threading
from collections import deque
from pathlib import Path

from claif_cod._forked import call_after_fork, fd_name, let_go_after_fork
from claif_cod.engine.approvals import Decision
from claif_cod.protocol import (
    ApprovalRequestedNotification,
    ApprovalRespondParams,
    ApprovalRespondRequest,
    CancelNotification,
    CancelParams,
    ErrorResponse,
    FrameDecoder,
    HelloResult,
    Message,
    Notification,
    ProtocolError,
    Request,
    Response,
    decode_as_client,
    decode_result,
)
from claif_cod.transport.daemon_client import CONNECT_TIMEOUT_S, handshake_unanswered, hello_request
from claif_cod.transport.daemon_unusable import DaemonUnavailable, UntrustedDaemon, connection_not_taken, other_protocol
from claif_cod.transport.socket_path import UnsafeSocketDirectory, check_peer, check_socket
from claif_cod.transport.wire_errors import request_frame

READ_SIZE = 256 * 1024


class ConnectionLost(Exception):
    """The daemon closed the connection, or what it sent cannot be read."""


class DaemonSilent(ConnectionLost):
    """The daemon said nothing for as long as the request may wait (:meth:`BlockingConnection.listen`)."""


class ConnectionForked(ConnectionLost):
    """The connection was opened before the process forked: it, and its request, are the parent's."""


class BlockingConnection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        let_go_after_fork(self, [fd_name(sock.fileno())])
        self._decoder = FrameDecoder()
        self._messages: deque[Message] = deque()
        self._ids = itertools.count(1)
        self._sending = threading.Lock()
        """Approval answers are sent from the engine loop's thread, as the caller's thread sends too."""
        self.asking: set[concurrent.futures.Future[Decision]] = set()
        """Approval handlers of the request in flight still deciding (see ``direct_daemon._ask``)."""
        self.broken = False
        """Set once the connection cannot carry another request."""
        self.woken = False
        """Set by :meth:`wake`: the connection ends because its client was closed, not claif-codd."""
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._forked = False
        self.hello: HelloResult | None = None
        """The daemon's answer to ``hello``: what it serves (see daemon_unusable.refusal)."""
        call_after_fork(self, BlockingConnection._after_fork)

    def _after_fork(self) -> None:
        """In a forked child nothing is read or sent here, on any system (on Linux the child's copy of
        the socket is let go of too): what is read belongs to the parent, and a cancel sent would stop
        the parent's request."""
        self.broken = self._forked = True

    @classmethod
    def open(cls, path: Path, client_name: str) -> BlockingConnection:
        """Connected and greeted; :class:`DaemonUnavailable` (or :class:`UntrustedDaemon`) otherwise."""
        try:
            check_socket(path)
        except UnsafeSocketDirectory as exc:
            raise UntrustedDaemon(f"refusing to connect to claif-codd at {path}: {exc}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(str(path))
            check_peer(sock, path)
            conn = cls(sock)
            sock.settimeout(CONNECT_TIMEOUT_S * 2)
            conn._hello(client_name)
            sock.settimeout(None)
        except UnsafeSocketDirectory as exc:
            sock.close()
            raise UntrustedDaemon(f"refusing to talk to claif-codd at {path}: {exc}") from None
        except BlockingIOError:  # connect() on a full backlog
            sock.close()
            raise connection_not_taken(path) from None
        except (TimeoutError, DaemonSilent):  # it took the connection, then answered nothing
            sock.close()
            raise handshake_unanswered(path) from None
        except (OSError, ConnectionLost, ProtocolError) as exc:
            sock.close()
            raise DaemonUnavailable(f"no claif-codd answers at {path}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        return conn

    def _hello(self, client_name: str) -> None:
        request_id = self.next_id()
        self.send(hello_request(request_id, client_name))
        while True:
            message = self.receive()
            if isinstance(message, Response) and message.id == request_id:
                hello = decode_result(message.result, HelloResult)
                other = other_protocol(hello)
                if other is not None:
                    raise ConnectionLost(other)
                self.hello = hello
                return
            if isinstance(message, ErrorResponse):
                raise ConnectionLost(f"the handshake was refused: {message.error.message}")

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, message: Request | Notification) -> None:
        if self._forked:
            raise ConnectionForked("opened before the process forked")
        frame = request_frame(message)
        with self._sending:
            self.sock.sendall(frame)

    def stop_asking(self) -> None:
        """The request ended: approval handlers still deciding are cancelled (a prompt closes)."""
        for asking in list(self.asking):
            asking.cancel()

    def listen(self, silence: float | None) -> None:
        """From now on a read waits at most ``silence`` seconds for the daemon (None: for ever),
        then raises :class:`DaemonSilent`.  Longer than a socket can wait (~292 years; ``inf``) is for
        ever: ``settimeout`` raised OverflowError for it, so a client's ``timeout=float("inf")`` or
        ``1e12``, which in-process and async clients take, failed a sync client's requests whenever
        they went straight to the daemon (every one after the first)."""
        if silence is not None and silence >= threading.TIMEOUT_MAX:
            silence = None
        if self.sock.gettimeout() != silence:  # (setting it costs system calls: a warm turn's path)
            self.sock.settimeout(silence)

    def receive(self) -> Message:
        """The next message, waiting for it; :class:`ConnectionLost` once there can be none."""
        if self._forked:
            raise ConnectionForked("opened before the process forked")
        while not self._messages:
            try:
                data = self.sock.recv(READ_SIZE)
            except TimeoutError:
                self.broken = True  # its request's answer may still come: the connection is given up
                raise DaemonSilent(f"nothing from claif-codd for {self.sock.gettimeout():g} s") from None
            except OSError as exc:
                self.broken = True
                raise ConnectionLost(str(exc) or type(exc).__name__) from None
            self._read(data)
        return self._messages.popleft()

    def _read(self, data: bytes) -> None:
        if not data:
            self.broken = True
            raise ConnectionLost("claif-codd closed the connection")
        try:
            for body in self._decoder.feed(data):
                message = decode_as_client(body)
                if message is not None:
                    self._messages.append(message)
        except ProtocolError as exc:
            self.broken = True
            raise ConnectionLost(exc.message) from None

    def idle(self) -> bool:
        """Whether the connection is still up between requests.  What arrived since its last request
        (the replies to its approval answers) is dropped."""
        if self.broken:
            return False
        try:
            # Not recv(MSG_DONTWAIT): with a timeout (see listen) a socket waits for data before any recv.
            while self._poll.poll(0):
                self._read(self.sock.recv(READ_SIZE))
        except (OSError, ConnectionLost):
            self.broken = True
            return False
        self._messages.clear()
        return True

    def answer_approval(self, message: ApprovalRequestedNotification, decision: Decision) -> None:
        """The daemon is told ``decision`` for the approval it asked for.  Its reply is dropped."""
        params = ApprovalRespondParams(approval_id=message.params.approval_id, decision=decision)
        self.send(ApprovalRespondRequest(id=self.next_id(), params=params))

    def cancel(self, request_id: int) -> None:
        """The daemon stops the request (a turn is interrupted); a connection already gone has."""
        with contextlib.suppress(OSError, ConnectionForked):
            self.send(CancelNotification(params=CancelParams(id=request_id)))

    def close(self) -> None:
        self.broken = True
        self.sock.close()

    def wake(self) -> None:
        """From another thread: a read waiting on this connection returns (``ConnectionLost``)."""
        self.broken = self.woken = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
