"""The behaviour markers of the offline model (``[[reply:hi]]``, ``[[slow:50]]``...), read from the
last real user message so a test can script the model from outside the process that runs Codex.

``docs/testing.md`` lists every marker; tool calls have their own markers in :mod:`.calls`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from claif_cod.testing import calls

_MARKER = re.compile(
    r"\[\[(reply|preamble|long|slow|status|stall-mid|stall|flaky|sse-error|incomplete|failed-after-tool|failed|reasoning|tool|barrier)"
    r"(?::(.*?))?\]\]",
    re.DOTALL,
)


class BadMarker(ValueError):
    """A marker argument that cannot be parsed; answered with HTTP 400 so the test author sees it."""


@dataclass(frozen=True)
class Script:
    """What the last real user message asked the model to do."""

    text: str
    markers: dict[str, str]

    @classmethod
    def parse(cls, message: str) -> Script:
        markers = {m.group(1): m.group(2) or "" for m in _MARKER.finditer(message)}
        return cls(calls.CALL_MARKER.sub("", _MARKER.sub("", message)).strip(), markers)

    def number(self, name: str) -> int:
        try:
            return int(self.markers[name])
        except ValueError:
            raise BadMarker(f"[[{name}:...]] needs an integer, got {self.markers[name]!r}") from None

    def status(self) -> tuple[int, str | None]:
        code, _, error_code = self.markers["status"].partition(":")
        try:
            status = int(code)
        except ValueError:
            raise BadMarker(f"[[status:...]] needs an HTTP status, got {code!r}") from None
        return status, error_code or None
