"""Engine failures, described in Codex's terms; OpenAI translation happens elsewhere.

EngineError
├── CodexNotFound        no binary at any place searched
├── CodexStartFailed     the binary would not start or finish its handshake
├── CodexProcessDied     the app-server exited while work was pending
├── CodexRpcError        a JSON-RPC error answer to one of our requests
├── TurnFailed           the turn ended ``failed`` (carries Codex's error info)
├── TurnTimedOut         our own deadline hit; the turn was interrupted
└── InvalidRequest       the caller asked for something Codex cannot do
"""

from __future__ import annotations

from collections.abc import Sequence


class EngineError(Exception):
    """Base class of everything the engine raises on purpose."""


class CodexNotFound(EngineError):
    def __init__(self, searched: Sequence[str]) -> None:
        self.searched = list(searched)
        places = "; ".join(self.searched) or "nowhere"
        super().__init__(f"Codex CLI binary not found. Searched: {places}")


class CodexStartFailed(EngineError):
    pass


class CodexProcessDied(EngineError):
    def __init__(self, returncode: int | None, stderr_tail: str = "") -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        detail = f": {stderr_tail.strip()[-500:]}" if stderr_tail.strip() else ""
        super().__init__(f"codex app-server exited (code {returncode}){detail}")


class CodexRpcError(EngineError):
    def __init__(self, method: str, code: int, message: str) -> None:
        self.method = method
        self.code = code
        self.message = message
        super().__init__(f"{method}: {message} (code {code})")


class TurnFailed(EngineError):
    def __init__(self, message: str, info: object, partial_text: str = "") -> None:
        self.message = message
        self.info = info
        self.partial_text = partial_text
        super().__init__(message)


class TurnTimedOut(EngineError):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"turn exceeded its {seconds:g} s deadline and was interrupted")


class InvalidRequest(EngineError):
    def __init__(self, message: str, param: str | None = None) -> None:
        self.message = message
        self.param = param
        super().__init__(message)
