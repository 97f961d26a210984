"""Engine failures, described in Codex's terms; OpenAI translation happens elsewhere.

EngineError
├── CodexNotFound        no binary at any place searched
├── CodexStartFailed     the binary would not start or finish its handshake
│                        (also: the crash-loop breaker is open for its process key)
├── CodexProcessDied     the app-server exited while work was pending
│   ├── CodexProcessHung the app-server stopped answering; it was killed
│   └── ThreadUnloaded   an ephemeral thread went idle before its turn (seeded again)
├── CodexRpcError        a JSON-RPC error answer to one of our requests
├── RolloutCutShort      a persisted thread's rollout lost part of what Codex recorded of it
│                        (not resumed: its caller seeds a new thread from the history it kept)
├── TurnFailed           the turn ended ``failed`` (carries Codex's error info)
├── TurnTimedOut         our own deadline hit; the turn was interrupted
│   └── CodexRequestTimedOut  one request got no answer in time (the process still answers others)
├── InvalidRequest       the caller asked for something Codex cannot do
├── CallerToolsNotResumable  a thread with caller tools cannot be resumed or forked
│                        (the caller re-seeds a new thread from the history instead)
├── SessionStoreFailed   a named session's record cannot be written (the turn did not run)
├── TurnNotStarted       the request was interrupted while its turn waited for its thread
│                        (not a failure: its caller answers ``interrupted``, with no turn)
└── CallerGone           the request's caller hung up before its turn's end was taken
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Sequence

import msgspec

from claif_cod.unreadable import UNREADABLE, unreadable_reason


class EngineError(Exception):
    """Base class of everything the engine raises on purpose."""


class CodexNotFound(EngineError):
    def __init__(self, searched: Sequence[str]) -> None:
        self.searched = list(searched)
        places = "; ".join(self.searched) or "nowhere"
        super().__init__(f"Codex CLI binary not found. Searched: {places}")


class CodexStartFailed(EngineError):
    def __init__(self, message: str, *, stderr_tail: str = "") -> None:
        self.stderr_tail = stderr_tail
        super().__init__(message)


def describe_exit(returncode: int | None) -> str:
    """``exited (code 1)``, or ``was killed by SIGKILL (code -9)`` for a signal."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (code {returncode})"
    return f"exited (code {returncode})"


STOPPED_ON_PURPOSE = "stopped by claif_cod: its client was closed, or the process was let go"
"""What a request still running on a process claif_cod stopped is told (a client's ``close()``
while its stream is read, most often): not a crash."""


class CodexProcessDied(EngineError):
    def __init__(self, returncode: int | None, stderr_tail: str = "", *, pid: int | None = None) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.pid = pid
        who = "codex app-server" if pid is None else f"codex app-server (pid {pid})"
        detail = f": {stderr_tail.strip()[-500:]}" if stderr_tail.strip() else ""
        super().__init__(f"{who} {describe_exit(returncode)}{detail}")


class ThreadUnloaded(CodexProcessDied):
    """An anonymous conversation's thread (ephemeral: it has no rollout) unloaded for idleness, or
    its process recycled, after it was handed to a request and before its turn started: nothing of
    the request ran, so the request seeds a new thread from the history it holds."""

    def __init__(self, pid: int) -> None:
        self.returncode = None
        self.stderr_tail = ""
        self.pid = pid
        EngineError.__init__(self, "the conversation's thread was unloaded and has no rollout to resume")


class CodexProcessHung(CodexProcessDied):
    """The child is (or was, until we killed it) alive but answered nothing within its deadlines."""

    def __init__(self, pid: int, reason: str) -> None:
        self.returncode = None
        self.stderr_tail = ""
        self.pid = pid
        self.reason = reason
        EngineError.__init__(
            self,
            f"codex app-server (pid {pid}) stopped responding ({reason}); "
            "it was killed and will be replaced on the next request",
        )


class CodexRpcError(EngineError):
    def __init__(self, method: str, code: int, message: str) -> None:
        self.method = method
        self.code = code
        self.message = message
        super().__init__(f"{method}: {message} (code {code})")


class RolloutCutShort(EngineError):
    """A persisted thread's rollout is shorter than Codex recorded (cut short by a full disk, a
    crash or an edit): resumed, the thread would go on with part of its history, silently.  It is
    left unloaded; a named session or a stored response seeds a new thread from what claif_cod kept."""

    def __init__(self, thread_id: str, codex_says: str) -> None:
        self.thread_id = thread_id
        self.message = (
            f"the rollout of Codex thread {thread_id} is shorter than Codex recorded (cut short by a full "
            f"disk, a crash or an edit): resumed, it would go on with part of its history ({codex_says})"
        )
        super().__init__(self.message)


class TurnFailed(EngineError):
    def __init__(self, message: str, info: object, partial_text: str = "", *, acted: bool = False) -> None:
        self.message = message
        self.info = info
        self.partial_text = partial_text
        self.acted = acted
        """Codex ran a command, changed files or called a tool before the turn failed."""
        super().__init__(message)


class TurnTimedOut(EngineError):
    def __init__(
        self, seconds: float, source: str | None = None, *, between_events: bool = False, acted: bool = False
    ) -> None:
        self.seconds = seconds
        self.between_events = between_events
        """A stream's timeout: no event came for ``seconds``."""
        self.acted = acted
        """Codex ran a command, changed files or called a tool before the deadline passed."""
        origin = f" (from {source})" if source else ""
        shown = f"{round(seconds, 1):g} s" if seconds >= 1 else f"{seconds:.2g} s"  # (0.05 s, not 0 s)
        if between_events:
            super().__init__(f"turn sent no event for {shown}, its timeout{origin}, and was interrupted")
        else:
            super().__init__(f"turn exceeded its {shown} deadline{origin} and was interrupted")


class CodexRequestTimedOut(TurnTimedOut, asyncio.TimeoutError):
    """A request got no answer within its deadline while the process still answered a probe."""

    def __init__(self, method: str, seconds: float) -> None:
        self.method = method
        self.seconds = seconds
        self.between_events = False
        self.acted = False  # a request, not a turn's wait
        EngineError.__init__(self, f"codex app-server did not answer {method} within {seconds:g} s")


class TurnNotStarted(EngineError):
    """``turn.interrupt`` named the request while its turn waited for its thread (a busy session):
    no turn was started, so nothing reached the thread, and the request answers ``interrupted``."""

    def __init__(self) -> None:
        super().__init__("the request was interrupted before its turn started")


class CallerGone(EngineError):
    """The request's caller could no longer receive its answer when its turn ended (its HTTP client
    hung up, and the request is being cancelled): the turn is not an answer, so a named session
    drops it, as it drops the turn of any request cancelled before its end."""

    def __init__(self) -> None:
        super().__init__("the caller hung up before the turn ended")


class InvalidRequest(EngineError):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        self.message = message
        self.param = param
        self.code = code
        super().__init__(message)

    @classmethod
    def from_validation(cls, error: msgspec.ValidationError) -> InvalidRequest:
        """A body of the wrong shape, with the ``param`` and ``code`` OpenAI would name: msgspec's
        ``Object missing required field `role` - at `$.messages[0]``` is OpenAI's ``Missing required
        parameter: 'messages[0].role'.``, ``missing_required_parameter``."""
        text = str(error)
        at = _AT.search(text)
        # msgspec marks a mapping's value as ``[...]`` (its key unnamed): the mapping is the parameter.
        path = at.group(1).removeprefix("$").removeprefix(".").replace("[...]", "") if at else ""
        absent = _MISSING.match(text)
        if absent:
            return missing(f"{path}.{absent.group(1)}" if path else absent.group(1))
        param = path or None
        code = "invalid_type" if text.startswith("Expected `") else "invalid_value" if param else None
        return cls(f"invalid request body: {text}", param, code)


def missing(param: str) -> InvalidRequest:
    """OpenAI's refusal of a request without ``param``."""
    return InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


class ReadingBody:
    """``with ReadingBody(body):`` around a request body's decoding: a body of the wrong shape, not JSON
    at all or nested too deeply raises the :class:`InvalidRequest` OpenAI would answer (one rule for
    every endpoint), saying why in words that name the cause (:func:`unreadable_reason`: a lone
    surrogate escape was "Input data was truncated")."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if isinstance(error, msgspec.ValidationError):
            raise InvalidRequest.from_validation(error) from None
        if isinstance(error, RecursionError):
            raise InvalidRequest("request body is not valid JSON: it is nested too deeply to be read") from None
        if isinstance(error, UNREADABLE):
            raise InvalidRequest(f"request body is not valid JSON: {unreadable_reason(error, self.body)}") from None


_AT = re.compile(r" - at `(\$[^`]*)`$")
_MISSING = re.compile(r"Object missing required field `([^`]+)`")


class CallerToolsNotResumable(EngineError):
    """A thread with caller tools left its process (idle unload, crash, restart) or was to be forked.

    Codex sends raw response events only to threads started with them, and neither ``thread/resume``
    nor ``thread/fork`` can ask for them again; without them claif_cod cannot see the model's calls
    to caller tools, so such a turn would wait forever.  Not the caller's fault: whoever holds the
    conversation's history starts a new thread seeded with it instead (chat and Responses do).
    """

    def __init__(self, thread_id: str, action: str) -> None:
        self.thread_id = thread_id
        self.action = action
        super().__init__(
            f"thread {thread_id} has caller tools and cannot be {action}: Codex would not report the model's "
            "calls to them (no raw response events after thread/resume or thread/fork); "
            "a new thread seeded with the history is needed"
        )


class ToolSetChanged(EngineError):
    """A thread was to be continued with other caller tools (or none, or tools-only mode switched).

    Codex fixes a thread's dynamic tools when it starts it, so the model on that thread would still
    be offered the old set.  Not the caller's fault: a new thread seeded with the history is needed.
    """

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(
            f"thread {thread_id} was started with other tools: Codex fixes a thread's tools when it starts it, "
            "so a new thread seeded with the history is needed"
        )


class SessionStoreFailed(EngineError):
    """The session store refused a write; raised before a turn, so nothing ran."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"the session registry {path} cannot be written ({reason}); the turn was not run. "
            "Make the file and its directory writable (or free disk space) and retry"
        )
