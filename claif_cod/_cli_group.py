"""How ``claif-cod`` and ``claif-codd`` end when their user or their terminal stops them.

Click's own ends are a traceback's exit code: Ctrl-C is "Aborted!" and 1, a reader that left (``| head``)
is 1, and output that cannot be written (``> /dev/full``) is a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import Any

import click

from claif_cod._entry import EXIT_INTERRUPTED

EXIT_OUTPUT = 6
"""Its output could not be written (a full disk, an I/O error): ``ls`` and ``cat`` fail the same way."""
EXIT_BROKEN_PIPE = 141
"""The reader of stdout left (``| head``), as shells report a program that SIGPIPE ended (128 + 13)."""

_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
"""What a write to stdout meets on a full or failing device (a missing or refused file is a bug)."""


class QuietGroup(click.Group):
    """Ctrl-C outside a turn exits 130 with one line, a reader of stdout that left exits 141 quietly,
    and output that could not be written is one line and exit 6. Name it as the program: its
    messages say that name."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo(f"\n{self.name}: interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            _quiet_stdout()  # quiet, as the reader asked (a turn ended with it)
            raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _closed_streams(self.name)
        try:
            return super().main(*args, **kwargs)
        except OSError as exc:  # outside invoke too: --help and --version write while parsing
            if exc.errno not in _WRITE_ERRORS and not isinstance(sys.stdout, ClosedStdout):
                raise
            _quiet_stdout()
            with contextlib.suppress(OSError):  # stderr may be the full device too
                click.echo(f"{self.name}: error: cannot write its output: {exc.strerror}", err=True)
            sys.exit(EXIT_OUTPUT)


class ClosedStdout(io.TextIOBase):
    """stdout closed as the program starts (``>&-``): the first write fails as a full disk's does.

    A command that writes nothing when it succeeds (``sessions close``) does its work; one whose
    output is its answer fails on its first line (``query`` checks before it starts a turn).
    It exited 6 at once, before anything: ``claif-cod sessions close NAME >&-`` closed nothing.
    """

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def isatty(self) -> bool:
        return False


def stdout_closed() -> bool:
    """Whether stdout was closed as the program started (see :class:`ClosedStdout`)."""
    return isinstance(sys.stdout, ClosedStdout)


def _closed_streams(name: str | None) -> None:
    """A standard stream closed as the program starts (``2>&-``, ``<&-``, ``>&-``) is None in
    Python: closed stdin reads as empty, closed stderr takes the notes nowhere, and a closed stdout
    is output that cannot be written (rather than an answer lost in silence, with exit status 0).

    The closed descriptors are filled with ``/dev/null`` first: else the next file or socket opened
    takes the lowest free number, 1 say, and what is written to "stdout" goes into that socket (the
    event loop, uvloop, aborts the program when it closes such a descriptor)."""
    for fd in (0, 1, 2):  # in order: each open takes the lowest free number, the one it fills
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    if sys.stdin is None:
        sys.stdin = open(os.devnull)  # noqa: SIM115  # for the life of the program, as the one it replaces
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = ClosedStdout()


def _quiet_stdout() -> None:
    """Nothing left for Python to flush into stdout at exit (it would print "Exception ignored")."""
    if stdout_closed():
        return
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
