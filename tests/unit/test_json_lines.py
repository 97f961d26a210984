"""LineSplitter: Codex's stdout cut into lines, whatever the reads cut it into."""

from __future__ import annotations

import pytest

from claif_cod.engine.json_lines import LineSplitter, LineTooLong

MESSAGES = [b'{"id":1,"result":null}', b"", b'{"method":"x","params":{"a":"b\\nc"}}', b"x" * 300]
STREAM = b"".join(m + b"\n" for m in MESSAGES)


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(STREAM)])
def test_lines_come_whole_whatever_the_reads(size: int) -> None:
    splitter = LineSplitter(1000)
    lines = []
    for start in range(0, len(STREAM), size):
        lines += splitter.feed(STREAM[start : start + size])
    assert lines == MESSAGES
    assert splitter.end() == b""


def test_a_line_not_ended_yet_is_held() -> None:
    splitter = LineSplitter(1000)
    assert splitter.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}") == []
    assert splitter.feed(b"\n") == [b'{"b":2}']
    assert splitter.feed(b'{"c":3}') == []
    assert splitter.end() == b'{"c":3}'  # the last line, without its newline
    assert splitter.end() == b""


def test_a_line_of_exactly_the_limit_passes() -> None:
    splitter = LineSplitter(10)
    assert splitter.feed(b"0123456789\n" + b"01234") == [b"0123456789"]
    assert splitter.feed(b"56789\n") == [b"0123456789"]


@pytest.mark.parametrize(
    ("reads", "good"),
    [
        ([b"ok\n" + b"y" * 11 + b"\nlater\n"], [b"ok"]),  # whole in one read
        ([b"ok\n" + b"y" * 6, b"y" * 5], [b"ok"]),  # held, then grown past the limit
        ([b"ok\nyyyyyy", b"yyyyy\nlater\n"], [b"ok"]),  # completed past the limit
        ([b"y" * 11], []),  # never ended
    ],
)
def test_a_line_beyond_the_limit_fails_the_stream_and_keeps_the_lines_before_it(
    reads: list[bytes], good: list[bytes]
) -> None:
    splitter = LineSplitter(10)
    seen: list[bytes] = []
    for data in reads[:-1]:
        seen += splitter.feed(data)
    with pytest.raises(LineTooLong, match="exceeded 10 bytes") as info:
        splitter.feed(reads[-1])
    assert [*seen, *info.value.lines] == good
    assert splitter.end() == b""
    with pytest.raises(LineTooLong):  # the position in the stream is lost for good
        splitter.feed(b"fine\n")
