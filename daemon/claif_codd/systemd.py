"""systemd integration without libsystemd: sd_notify(3), the watchdog and sd_listen_fds(3).

Everything here is a no-op when systemd did not start us, so the daemon runs the same way
under ``claif-codd start``, a terminal or a test.  The daemon reads systemd's variables once
at start-up (:func:`from_environment`) and removes them from ``os.environ`` so that the
Codex children it spawns never see them: a child that inherits ``NOTIFY_SOCKET`` could
otherwise send ``READY=1`` or watchdog pings on our behalf, and one that inherits
``LISTEN_FDS`` could try to take over the listening socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "SD_LISTEN_FDS_START",
    "SystemdNotifier",
    "from_environment",
    "listen_fds",
    "notify",
    "scrub_environment",
    "watchdog_interval",
    "watchdog_loop",
]

log = logging.getLogger("claif_codd.systemd")

SD_LISTEN_FDS_START = 3
NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_SEND_TIMEOUT_S = 1.0  # systemd drains its notify socket promptly; never stall the loop for long


@dataclass(frozen=True)
class SystemdNotifier:
    """What sd_notify needs, captured from the environment so it outlives :func:`scrub_environment`.

    ``address`` is ``None`` when systemd does not listen for notifications (then :meth:`notify`
    does nothing); ``watchdog_interval`` is the ping period in seconds (half of ``WatchdogSec=``),
    or ``None`` when no watchdog is armed for this process.
    """

    address: str | None = None
    watchdog_interval: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        return cls(address=env.get("NOTIFY_SOCKET") or None, watchdog_interval=watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (e.g. ``"READY=1"``, ``"STATUS=..."``) as one datagram; True if it was sent."""
        if self.address is None or not lines:
            return False
        address = _socket_address(self.address)
        if address is None:
            log.debug("sd_notify: unsupported NOTIFY_SOCKET address %r", self.address)
            return False
        payload = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:  # close-on-exec by default
                sock.settimeout(_SEND_TIMEOUT_S)
                sock.sendto(payload, address)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True


def _socket_address(raw: str) -> str | bytes | None:
    """``NOTIFY_SOCKET`` as a ``sendto`` address: a path, or ``@name`` for the abstract namespace."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # e.g. systemd's vsock: addresses, meant for VMs; not ours to handle


def notify(*lines: str) -> bool:
    """sd_notify with whatever ``NOTIFY_SOCKET`` is set now; False (and nothing sent) when unset.

    After :func:`scrub_environment` this always returns False; keep the :class:`SystemdNotifier`
    from :func:`from_environment` and call its :meth:`~SystemdNotifier.notify` instead.
    """
    return SystemdNotifier.from_env().notify(*lines)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None if no watchdog is ours."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None  # armed for another process (e.g. the parent that exec'd us via a wrapper)
        except ValueError:
            return None
    return usec / 2 / 1_000_000


async def watchdog_loop(notifier: SystemdNotifier, interval: float) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds until cancelled.

    The pings come from the event loop itself, so a loop that blocks stops them and systemd
    kills and restarts the daemon after ``WatchdogSec=``.
    """
    while True:
        notifier.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def scrub_environment() -> None:
    """Remove ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` from ``os.environ``."""
    for name in NOTIFY_VARIABLES:
        os.environ.pop(name, None)


def from_environment() -> SystemdNotifier:
    """Capture the notify socket and watchdog for this process, then scrub them from the environment."""
    notifier = SystemdNotifier.from_env()
    scrub_environment()
    return notifier


def listen_fds() -> list[socket.socket]:
    """Sockets systemd passed us (fds 3..3+N-1), per sd_listen_fds(3) with ``unset_environment=1``.

    Returns ``[]`` unless ``LISTEN_PID`` is our pid.  The returned sockets are close-on-exec;
    ``LISTEN_PID``, ``LISTEN_FDS`` and ``LISTEN_FDNAMES`` are removed from ``os.environ``
    in every case so that children never inherit them.
    """
    try:
        pid = os.environ.get("LISTEN_PID", "")
        count = os.environ.get("LISTEN_FDS", "")
        try:
            if not pid or int(pid) != os.getpid():
                return []
            n = int(count)
        except ValueError:
            log.debug("sd_listen_fds: invalid LISTEN_PID=%r LISTEN_FDS=%r", pid, count)
            return []
        sockets: list[socket.socket] = []
        for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(n, 0)):
            try:
                os.set_inheritable(fd, False)
                sockets.append(socket.socket(fileno=fd))
            except OSError as exc:  # not open, or not a socket: nothing we can serve on
                log.warning("systemd passed fd %d that is not a usable socket: %s", fd, exc)
        return sockets
    finally:
        for name in LISTEN_VARIABLES:
            os.environ.pop(name, None)
