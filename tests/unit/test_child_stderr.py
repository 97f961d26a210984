"""What a Codex child wrote to stderr reaches error messages as text: without terminal escapes.

Codex colours its log lines even into a pipe (``\\x1b[2m...\\x1b[0m \\x1b[31mERROR\\x1b[0m``);
quoted raw in "codex app-server exited (code 1): ..." they were garbage, or recoloured a terminal.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from claif_cod.engine.ansi import strip_ansi
from claif_cod.engine.child_process import ChildProcess
from claif_cod.engine.errors import CodexProcessDied

COLOURED = (
    "\x1b[2m2025-06-01T10:00:00.000Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[2mcodex_core\x1b[0m: "
    "\x1b]8;;https://example.com/help\x1b\\login required\x1b]8;;\x07 \x1b[1;38;5;196mfatal\x1b[m\n"
)
PLAIN = "2025-06-01T10:00:00.000Z ERROR codex_core: login required fatal\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (COLOURED, PLAIN),
        ("no escapes at all\n", "no escapes at all\n"),
        ("\x1b]0;window title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]0;title\x1b\\after", "after"),  # OSC ended by ST
        ("\x1b(Bcharset \x1b=keypad", "charset keypad"),  # other ESC sequences
        ("\x1b[?25lcursor\x1b[2K\x1b[1G", "cursor"),  # private CSI, erase, move
        ("cut off at the end \x1b[38;5", "cut off at the end "),  # a tail ending mid-sequence
        ("cut off OSC \x1b]8;;https://exa", "cut off OSC "),
        ("\x9b31mC1 CSI", "C1 CSI"),
    ],
)
def test_strip_ansi(text: str, expected: str) -> None:
    assert strip_ansi(text) == expected


@pytest.mark.skipif(sys.platform == "win32", reason="a shell-script fake")
async def test_a_crashed_childs_stderr_reaches_its_error_without_escapes(tmp_path: Path) -> None:
    fake = tmp_path / "codex"
    (tmp_path / "stderr.txt").write_text(COLOURED)
    fake.write_text(f'#!/bin/sh\ncat "{tmp_path}/stderr.txt" >&2\nexit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    child = await ChildProcess.spawn(str(fake), cwd=str(tmp_path), env=dict(os.environ))
    try:
        returncode = await child.exit
        await child.stderr_reader
        assert child.stderr_tail() == PLAIN
        message = str(CodexProcessDied(returncode, child.stderr_tail(), pid=child.pid))
        assert message == f"codex app-server (pid {child.pid}) exited (code 1): {PLAIN.strip()}"
    finally:
        await child.kill(0.1)
