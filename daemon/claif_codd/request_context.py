"""What a socket request's ``options`` come to, and what its client is told about it besides its reply:
the engine's :class:`RequestOptions`, its :class:`TurnControl` (for ``turn.interrupt``), its warnings
and the parameters that had no effect."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from claif_cod.engine.config import CodexConfig
from claif_cod.engine.control import TurnControl
from claif_cod.engine.errors import InvalidRequest
from claif_cod.openai_compat.errors import translate
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.protocol import CodexOptions, IgnoredNotification, IgnoredParams, WarningNotification, WarningParams

if TYPE_CHECKING:
    from claif_codd.connection import Connection


def request_options(
    conn: Connection, request_id: Any, options: CodexOptions, control: TurnControl | None = None
) -> RequestOptions:
    """A turn's options: its working directory required, absolute (the daemon's own cwd is no one's)."""
    if options.working_dir is None or not os.path.isabs(options.working_dir):
        raise translate(InvalidRequest("options.working_dir must be an absolute path", param="working_dir"))
    return RequestOptions(
        config=codex_config(options, options.working_dir),
        default_model=options.model,
        strict=options.strict,
        timeout=timeout_of(options),
        timeout_source="options.timeout_s",
        session_id=options.session_id,
        approvals=conn.approval_handler(request_id),
        control=control,
        warn=warner(conn, request_id),
    )


@contextlib.contextmanager
def turn_control(conn: Connection, request_id: Any) -> Iterator[TurnControl]:
    """The request's :class:`TurnControl`, findable by ``turn.interrupt`` while the request runs."""
    control = conn.turn_controls[request_id] = TurnControl()
    try:
        yield control
    finally:
        conn.turn_controls.pop(request_id, None)


def warner(conn: Connection, request_id: Any) -> Callable[[str], None]:
    """A request's warnings go to its client (before its reply) and into the log."""

    def warn(message: str) -> None:
        conn.log.info("request.warning", request=request_id, warning=message)
        conn.send(WarningNotification(params=WarningParams(request_id=request_id, message=message)))

    return warn


def say_ignored(conn: Connection, request_id: Any, ignored: tuple[str, ...]) -> None:
    """What the HTTP endpoint's header says, for a socket client that reads no header."""
    if ignored:
        conn.send(IgnoredNotification(params=IgnoredParams(request_id=request_id, params=list(ignored))))


def timeout_of(options: CodexOptions) -> float | None:
    """``options.timeout_s``: a deadline that has passed before the request began is a client's bug, a 400."""
    seconds = options.timeout_s
    if seconds is not None and seconds <= 0:
        raise translate(InvalidRequest("options.timeout_s must be a number of seconds above 0", param="timeout_s"))
    return seconds


def codex_config(options: CodexOptions, working_dir: str) -> CodexConfig:
    """The Codex settings of a request's options (``working_dir`` checked, or chosen, by the caller)."""
    return CodexConfig(
        working_dir=working_dir,
        codex_path=options.codex_path,
        codex_home=options.codex_home,
        api_key=options.api_key,
        sandbox_mode=options.sandbox_mode,
        approval_policy=options.approval_policy,
    )
