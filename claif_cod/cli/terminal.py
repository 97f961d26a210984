"""Terminal output while a turn streams, and approval questions asked on the terminal.

The engine calls approval handlers on its own event loop thread; :class:`TerminalApprover`
hands each request to the command's loop (the main thread, which also prints the stream), so
the question appears on a line of its own between streamed chunks, and Ctrl-C during the
question cancels the turn instead of leaving a reader thread behind on stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any, TextIO

from claif_cod._visible import LINES, without_controls
from claif_cod._visible import visible as shown
from claif_cod.engine.approvals import ApprovalRequest, Decision, FileChange

ANSWERS: dict[str, Decision] = {
    "y": "accept",
    "yes": "accept",
    "a": "acceptForSession",
    "always": "acceptForSession",
    "n": "decline",
    "no": "decline",
    "c": "cancel",
    "cancel": "cancel",
}
SAID: dict[Decision, str] = {
    "accept": "allowed once",
    "acceptForSession": "allowed for the rest of this Codex session",
    "decline": "declined",
    "cancel": "declined; cancelling the turn",
}


def is_interactive(asked_on: TextIO | None = None) -> bool:
    """Whether approvals can be asked: stdin is a terminal, and so is where the question is written
    (stdout; stderr for ``query --json``, whose stdout may well be a pipe)."""
    stdin, shown = sys.stdin, asked_on or sys.stdout
    return stdin is not None and shown is not None and stdin.isatty() and shown.isatty()


class Console:
    """Streamed text on stdout, notes on stderr, and never a note glued to the end of a half line."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.at_line_start = True
        self._status = False
        self._terminal: bool | None = None
        """Whether ``out`` is a terminal (asked at the first write)."""
        self._held_return = ""
        """A carriage return that ended the last write, until what follows says whether it ends a line."""

    def status(self, message: str) -> None:
        """A passing note on a terminal (Codex starting, say), erased by what comes next; nothing when piped."""
        if self.err.isatty():
            self.end_line()
            self.err.write(f"claif-cod: {message}\r")
            self.err.flush()
            self._status = True

    def clear_status(self) -> None:
        if self._status:
            self._status = False
            self.err.write("\r\x1b[K")
            self.err.flush()

    def write(self, text: str) -> None:
        """``text`` as it is into a pipe or a file; on a terminal, the model's control characters written
        out (:meth:`_on_terminal`)."""
        if text:
            self.clear_status()
            self.out.write(self._on_terminal(text) if self._is_terminal() else text)
            self.out.flush()
            self.at_line_start = text.endswith("\n")

    def _is_terminal(self) -> bool:
        if self._terminal is None:
            try:
                self._terminal = self.out.isatty()
            except (AttributeError, ValueError):  # (no stdout, or a closed one: the write says so)
                self._terminal = False
        return self._terminal

    def _on_terminal(self, text: str) -> str:
        """The model's text, streamed to a terminal, must not act on it: an escape sequence could set it
        to conceal what follows (the approval question, written out with care, included), move the
        cursor to redraw lines, write the clipboard (OSC 52); a carriage return redraws the line.  So
        its control characters are written out (``\\x1b``); tabs and newlines stay, and a carriage
        return before a newline (a CRLF line end, maybe split between two writes) is dropped."""
        text, self._held_return = self._held_return + text, ""
        if text.endswith("\r"):
            text, self._held_return = text[:-1], "\r"
        return without_controls(text.replace("\r\n", "\n"))

    def end_line(self) -> None:
        """Finish a half-written line of streamed text."""
        self._held_return = ""  # (it ends a line that now ends anyway)
        self.clear_status()
        if not self.at_line_start:
            self.write("\n")

    def note(self, message: str) -> None:
        """A line on stderr for the user (errors, declined approvals, interruptions)."""
        self.end_line()
        self.err.write(f"claif-cod: {message}\n")
        self.err.flush()


def visible(text: str) -> str:
    """What a question shows comes from the model (a command, paths, a diff, its reason): its lines
    and tabs kept, every other hidden character written out (:mod:`claif_cod._visible`)."""
    return shown(text, LINES)


def describe_request(request: ApprovalRequest) -> str:
    if request.kind == "command":
        return f"command `{visible(request.command or '?')}`"
    paths = ", ".join(visible(change.path) for change in request.changes)
    return f"file change ({paths})" if paths else "file change"


DIFF_LINES_SHOWN = 40
"""How much of a file change's diffs a question shows (the rest is counted)."""


def change_lines(changes: tuple[FileChange, ...]) -> list[str]:
    """A file change as the question shows it: each file, then its diff (at most ``DIFF_LINES_SHOWN`` lines in all)."""
    lines: list[str] = []
    left = DIFF_LINES_SHOWN
    for change in changes:
        moved = f" -> {visible(change.move_path)}" if change.move_path else ""
        lines.append(f"  {visible(change.kind)}: {visible(change.path)}{moved}")
        diff = visible(change.diff).splitlines()
        lines.extend(f"    {line}" for line in diff[:left])
        if len(diff) > left:
            lines.append(f"    ... {len(diff) - left} more lines")
        left = max(0, left - len(diff))
    return lines


class TerminalApprover:
    """``approval_handler`` for :class:`~claif_cod.AsyncCodexClient`: asks on the terminal, or declines.

    It runs on the loop the command runs its turns on (an async client runs its handler on the loop
    of the request that asks); questions are asked one at a time, on ``prompt_stream``. Without a
    terminal every request is declined with a note on stderr.
    """

    def __init__(
        self,
        console: Console,
        *,
        interactive: bool,
        prompt_stream: TextIO | None = None,
        stdin_fd: int | None = None,
    ) -> None:
        self.console = console
        self.interactive = interactive
        self.prompt_stream = prompt_stream or console.out
        self.stdin_fd = sys.stdin.fileno() if stdin_fd is None and interactive else stdin_fd
        self._lock: asyncio.Lock | None = None
        self._abort: asyncio.Event | None = None
        self.generation = 0
        """Counts turns; a request that arrives for an earlier (interrupted) turn is cancelled unasked."""
        self.asked = 0
        self.cancelled = False
        """The user answered ``cancel``: the turn ended without an answer, as with Ctrl-C."""

    async def __call__(self, request: ApprovalRequest) -> Decision:
        return await self.decide(request, self.generation)

    def new_turn(self) -> None:
        self.generation += 1
        self.cancelled = False
        if self._abort is not None:
            self._abort.clear()

    def abort(self) -> None:
        """Ctrl-C: a question being asked is answered ``cancel``; later ones too, until the next turn."""
        if self._abort is None:
            self._abort = asyncio.Event()
        self._abort.set()

    async def decide(self, request: ApprovalRequest, generation: int | None = None) -> Decision:
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._abort is None:
            self._abort = asyncio.Event()
        async with self._lock:
            if self._abort.is_set() or (generation is not None and generation != self.generation):
                return "cancel"
            if not self.interactive or self.stdin_fd is None:
                self.console.note(f"declined {describe_request(request)}: no terminal to ask on")
                return "decline"
            self.asked += 1
            return await self._ask(request)

    def _show(self, text: str) -> None:
        self.console.out.flush()
        self.prompt_stream.write(text)
        self.prompt_stream.flush()

    async def _ask(self, request: ApprovalRequest) -> Decision:
        self.console.end_line()
        lines = ["", "Codex asks for approval:"]
        if request.kind == "command":
            lines.append(f"  command: {visible(request.command or '?')}")
        else:
            lines.append("  file change")
            lines.extend(change_lines(request.changes))
        if request.grant_root:
            lines.append(f"  and write access under {visible(request.grant_root)} for the rest of the session")
        if request.cwd:
            lines.append(f"  cwd:     {visible(request.cwd)}")
        if request.reason:
            lines.append(f"  reason:  {visible(request.reason)}")
        self._show("\n".join(lines) + "\n")
        while True:
            self._show("Allow? [y]es / [a]lways this session / [n]o / [c]ancel turn: ")
            answer = await self._read_line()
            if answer is None:  # Ctrl-C or end of input
                aborted = self._abort is not None and self._abort.is_set()
                decision: Decision = "cancel" if aborted else "decline"
                self._show("\n")
                break
            choice = ANSWERS.get(answer.strip().lower())
            if choice is not None:
                decision = choice
                self.cancelled |= choice == "cancel"
                break
        self._show(f"-> {SAID[decision]}\n")
        self.console.at_line_start = True
        return decision

    async def _read_line(self) -> str | None:
        """One line from the terminal without blocking the loop; None on Ctrl-C or end of input."""
        assert self.stdin_fd is not None
        assert self._abort is not None
        fd = self.stdin_fd
        loop = asyncio.get_running_loop()
        line: asyncio.Future[Any] = loop.create_future()
        buffer = bytearray()

        def readable() -> None:
            # Called again before the waiting task has run (the terminal still has typed-ahead
            # lines): what it read would be dropped, and the question asked again would wait for an
            # answer already given. A terminal hands out one line per read; the rest waits there.
            if line.done():
                return
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                line.set_result(None)
                return
            buffer.extend(data)
            if b"\n" in buffer or b"\r" in buffer:
                first = buffer.replace(b"\r", b"\n").split(b"\n", 1)[0]
                line.set_result(first.decode(errors="replace"))

        loop.add_reader(fd, readable)
        aborted: asyncio.Future[Any] = asyncio.ensure_future(self._abort.wait())
        try:
            await asyncio.wait({line, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            aborted.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await aborted
        if line.done():
            answer: str | None = line.result()
            return answer
        line.cancel()
        return None
