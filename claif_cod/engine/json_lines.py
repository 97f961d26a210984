"""Codex's stdout framing, sans-IO: one JSON-RPC message per line.

The pipe's bytes are split as they arrive, in the pipe's protocol callback (a warm turn is ~17
lines in ~8 reads): no ``StreamReader`` buffer, no reader task woken per read and no ``readline``
per line.  A line still being received is held once, so a line that arrives in many reads costs
its length, not its length times its reads.
"""

from __future__ import annotations


class LineTooLong(Exception):
    """A line passed the limit: the stream cannot be trusted any more.  ``lines``: the complete
    lines before it in the same bytes, which are still good."""

    def __init__(self, limit: int, lines: list[bytes] | None = None) -> None:
        super().__init__(f"a line exceeded {limit} bytes")
        self.lines = lines or []


class LineSplitter:
    """Feed it a pipe's bytes, get back its complete lines (without their ``\\n``).

    After :class:`LineTooLong` the stream position is lost: the splitter stays failed and every
    later :meth:`feed` raises again."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._partial = bytearray()
        self._failed = False

    def end(self) -> bytes:
        """At the end of the stream: the last line, if it had no ``\\n`` (empty if none)."""
        rest = bytes(self._partial)
        self._partial.clear()
        return rest

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed:
            raise LineTooLong(self.limit)
        lines: list[bytes] = []
        end = data.find(b"\n")
        if end < 0:
            self._hold(data, lines)
            return lines
        partial = self._partial
        if partial:
            partial += data[:end]
            self._check(len(partial), lines)
            lines.append(bytes(partial))
            partial.clear()
        else:
            self._check(end, lines)
            lines.append(data[:end])
        start = end + 1
        while (end := data.find(b"\n", start)) >= 0:
            self._check(end - start, lines)
            lines.append(data[start:end])
            start = end + 1
        if start < len(data):
            self._hold(data[start:], lines)
        return lines

    def _hold(self, data: bytes, lines: list[bytes]) -> None:
        self._partial += data
        self._check(len(self._partial), lines)

    def _check(self, length: int, lines: list[bytes]) -> None:
        if length > self.limit:
            self._failed = True
            self._partial.clear()
            raise LineTooLong(self.limit, lines)
