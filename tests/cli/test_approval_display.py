"""What an approval question shows: the model's text, with nothing in it that redraws the terminal."""

from __future__ import annotations

import asyncio
import io
import os
import pty

from claif_cod.cli.terminal import Console, TerminalApprover
from claif_cod.engine.approvals import ApprovalRequest, FileChange

HIDING = "touch pwned.txt # \x1b[2K\r  command: ls -la"
"""On a terminal, erases its line and writes over it: the question would read ``command: ls -la``."""


def _asked(request: ApprovalRequest) -> str:
    """The question as written to the terminal, answered ``n``."""
    read, write = os.pipe()
    os.write(write, b"n\n")
    shown = io.StringIO()
    console = Console(out=io.StringIO(), err=io.StringIO())
    approver = TerminalApprover(console, interactive=True, prompt_stream=shown, stdin_fd=read)
    try:
        assert asyncio.run(approver.decide(request)) == "decline"
    finally:
        os.close(read)
        os.close(write)
    return shown.getvalue()


def test_a_command_cannot_redraw_the_question_it_is_asked_in() -> None:
    request = ApprovalRequest(
        "command", "thread", "turn", "item", command=f"/bin/bash -lc '{HIDING}'", cwd="/w\u202eork", reason="why\r"
    )
    shown = _asked(request)
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown, shown
    assert "  command: /bin/bash -lc 'touch pwned.txt # \\x1b[2K\\r  command: ls -la'\n" in shown
    assert "  cwd:     /w\\u202eork\n" in shown
    assert "  reason:  why\\r\n" in shown


def test_a_file_change_shows_its_paths_and_diff_without_control_characters() -> None:
    change = FileChange(f"/w/{HIDING}", "update", diff="-a\tb\n+\x1b]0;title\x07c\n", move_path="/w/\x1b[8mx")
    shown = _asked(ApprovalRequest("file_change", "thread", "turn", "item", changes=(change,)))
    assert "\x1b" not in shown and "\r" not in shown and "\x07" not in shown, shown
    assert "  update: /w/touch pwned.txt # \\x1b[2K\\r  command: ls -la -> /w/\\x1b[8mx\n" in shown
    assert "    -a\tb\n    +\\x1b]0;title\\x07c\n" in shown  # a diff's tab stays a tab


def test_a_declined_command_is_named_without_control_characters() -> None:
    err = io.StringIO()
    approver = TerminalApprover(Console(out=io.StringIO(), err=err), interactive=False)
    request = ApprovalRequest("command", "thread", "turn", "item", command=HIDING)
    assert asyncio.run(approver.decide(request)) == "decline"
    assert err.getvalue() == (
        "claif-cod: declined command `touch pwned.txt # \\x1b[2K\\r  command: ls -la`: no terminal to ask on\n"
    )


def test_an_answer_typed_ahead_of_the_question_asked_again_is_kept() -> None:
    """``zz`` and ``n`` typed at once on a terminal: ``zz`` asks again, and ``n`` answers. The second
    line was read while the first was still being taken, and dropped: the question waited for ever."""
    main, terminal = pty.openpty()
    os.write(main, b"zz\nn\n")
    console = Console(out=io.StringIO(), err=io.StringIO())
    approver = TerminalApprover(console, interactive=True, prompt_stream=io.StringIO(), stdin_fd=terminal)
    request = ApprovalRequest("command", "thread", "turn", "item", command="touch x")

    async def asked() -> str:
        return await asyncio.wait_for(approver.decide(request), 30)  # a guard: it hung before

    try:
        assert asyncio.run(asked()) == "decline"
    finally:
        os.close(main)
        os.close(terminal)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


CONCEALING = "I will list the files.\x1b[8m"
"""SGR 8: on most terminals, what follows (the approval question of the command the model then asks
to run) is written in the background's colour, while the model's own text said what it would run."""


def test_the_models_text_on_a_terminal_cannot_act_on_it() -> None:
    """It was written raw: an escape sequence could conceal the question that follows, move the cursor
    to redraw lines already shown, or write the clipboard (OSC 52); C1's CSI (0x9b) too."""
    out = _Terminal()
    console = Console(out=out, err=io.StringIO())
    for delta in [CONCEALING, " \x1b]52;c;cHduZWQ=\x07", "a\rb", " \x9b2J", "\ttab\u200dzwj"]:
        console.write(delta)
    assert out.getvalue() == ("I will list the files.\\x1b[8m \\x1b]52;c;cHduZWQ=\\x07a\\rb \\x9b2J\ttab\u200dzwj")


def test_a_crlf_line_end_on_a_terminal_is_a_newline_even_split_between_writes() -> None:
    out = _Terminal()
    console = Console(out=out, err=io.StringIO())
    for delta in ["one\r\ntwo\r", "\nthree\r"]:
        console.write(delta)
    console.end_line()
    assert out.getvalue() == "one\ntwo\nthree\n"


def test_the_models_text_into_a_pipe_is_exact() -> None:
    out = io.StringIO()
    console = Console(out=out, err=io.StringIO())
    for delta in [CONCEALING, "a\r\nb\r", "\x9b"]:
        console.write(delta)
    assert out.getvalue() == CONCEALING + "a\r\nb\r\x9b"
