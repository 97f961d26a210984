"""The daemon's settings: below the server and every part of it, so all can read them without cycles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from claif_cod.engine.idle import DEFAULT_THREAD_IDLE_TIMEOUT_S
from claif_cod.engine.suspensions import DEFAULT_MAX_SUSPENDED
from claif_cod.protocol import DEFAULT_MAX_FRAME
from claif_cod.transport.socket_path import default_socket_path
from claif_codd.http.settings import HttpSettings

CONTROL_CLIENT = "claif-codd-cli"
"""The ``client_name`` of the daemon's own commands (``status``, ``stop``, ``sessions``), whose
connections are let in beyond its limits (see :mod:`claif_codd.refusal`)."""


@dataclass
class DaemonConfig:
    socket_path: Path = field(default_factory=default_socket_path)
    state_dir: Path | None = None
    idle_timeout: float | None = None
    max_frame_size: int = DEFAULT_MAX_FRAME
    max_connections: int = 256
    max_inflight_per_connection: int = 128
    max_turns_in_flight: int = 512
    """Turn-starting requests (chat, session.send) in flight in the whole daemon, queued ones included."""
    max_outbound_bytes: int = 64 * 1024 * 1024
    """Backlog one client may leave unread before it is disconnected as a slow reader."""
    max_processes: int = 8
    max_suspended_turns: int = DEFAULT_MAX_SUSPENDED
    """Turns waiting for their caller's tool results kept at once; past it the oldest is given up."""
    thread_idle_timeout: float | None = DEFAULT_THREAD_IDLE_TIMEOUT_S
    """Codex threads unused this long are unloaded (None: never); see claif_cod/engine/idle.py."""
    approval_timeout: float = 120.0
    drain_timeout: float = 60.0
    http: HttpSettings | None = None
    """The optional OpenAI-compatible HTTP endpoint; off when None."""
