"""Framing: exact bytes, the size cap (enforced before buffering), chunking, and poisoning."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from claif_cod.protocol import (
    DEFAULT_MAX_FRAME,
    EmptyFrame,
    ErrorCode,
    FrameDecoder,
    FrameTooLarge,
    FramingError,
    ProtocolError,
    encode_frame,
)

BODY = b'{"jsonrpc":"2.0","id":1,"result":{}}'


def test_encode_frame_exact_bytes() -> None:
    assert encode_frame(b"{}") == b"\x00\x00\x00\x02{}"
    assert encode_frame(BODY) == len(BODY).to_bytes(4, "big") + BODY
    assert encode_frame(b"x" * 0x010203) == b"\x00\x01\x02\x03" + b"x" * 0x010203


def test_default_cap_is_16_mib() -> None:
    assert DEFAULT_MAX_FRAME == 16 * 1024 * 1024
    assert FrameDecoder().max_frame_size == DEFAULT_MAX_FRAME


def test_encode_frame_refuses_empty_and_oversize() -> None:
    with pytest.raises(EmptyFrame) as empty:
        encode_frame(b"")
    assert empty.value.code == ErrorCode.PARSE_ERROR
    assert encode_frame(b"12345", max_frame_size=5) == b"\x00\x00\x00\x0512345"
    with pytest.raises(FrameTooLarge) as too_large:
        encode_frame(b"123456", max_frame_size=5)
    assert too_large.value.code == ErrorCode.FRAME_TOO_LARGE
    assert "6 bytes" in too_large.value.message
    assert "5-byte limit" in too_large.value.message


@pytest.mark.parametrize("cap", [0, -1, 2**32])
def test_cap_must_fit_the_header(cap: int) -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(max_frame_size=cap)
    with pytest.raises(ValueError, match="max_frame_size"):
        encode_frame(b"{}", max_frame_size=cap)


def test_decoder_splits_frames_in_one_feed() -> None:
    decoder = FrameDecoder()
    stream = encode_frame(b"[1]") + encode_frame(BODY) + encode_frame(b'"x"')
    assert decoder.feed(stream) == [b"[1]", BODY, b'"x"']
    assert decoder.buffered == 0


def test_decoder_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    stream = encode_frame(BODY) + encode_frame(b"{}")
    frames: list[bytes] = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i : i + 1])
    assert frames == [BODY, b"{}"]


def test_decoder_split_header_and_body() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(BODY)
    assert decoder.feed(frame[:2]) == []
    assert decoder.buffered == 2
    assert decoder.feed(frame[2:7]) == []
    assert decoder.buffered == 3  # header consumed, 3 body bytes held
    assert decoder.feed(frame[7:] + frame[:4]) == [BODY]
    assert decoder.feed(frame[4:]) == [BODY]
    assert decoder.buffered == 0


def test_decoder_accepts_bytearray_and_memoryview() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(BODY)
    assert decoder.feed(bytearray(frame)) == [BODY]
    assert decoder.feed(memoryview(frame)) == [BODY]
    assert decoder.feed(b"") == []


def test_frame_at_cap_is_accepted_and_one_over_is_not() -> None:
    assert FrameDecoder(max_frame_size=8).feed(encode_frame(b"12345678", max_frame_size=8)) == [b"12345678"]
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_frame_size=8).feed(b"\x00\x00\x00\x09")


def test_announcing_4_gib_fails_on_the_header_without_allocating() -> None:
    decoder = FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge) as exc:
            decoder.feed(b"\xff\xff\xff\xff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert exc.value.code == ErrorCode.FRAME_TOO_LARGE
    assert "4294967295 bytes" in exc.value.message
    assert decoder.buffered == 0


def test_cap_checked_before_any_body_byte_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x00\x00\x04\x01" + b"x" * 1000)
    assert decoder.buffered == 0


def test_large_announced_frame_is_not_preallocated() -> None:
    # Even with the largest possible cap, only bytes actually received are held.
    decoder = FrameDecoder(max_frame_size=2**32 - 1)
    tracemalloc.start()
    try:
        assert decoder.feed(b"\xff\xff\xff\xfe" + b"x" * 10) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == 10
    assert peak < 64 * 1024


def test_empty_frame_is_rejected() -> None:
    with pytest.raises(EmptyFrame):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


def test_decoder_is_poisoned_after_an_error() -> None:
    decoder = FrameDecoder(max_frame_size=16)
    with pytest.raises(FrameTooLarge) as first:
        decoder.feed(b"\x00\x00\x01\x00")
    for more in (b"", encode_frame(b"{}")):
        with pytest.raises(FrameTooLarge) as again:
            decoder.feed(more)
        assert again.value.message == first.value.message
        assert again.value.frames == ()


def test_frames_before_a_bad_header_ride_on_the_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FramingError) as exc:
        decoder.feed(encode_frame(b"[1]") + encode_frame(b"[2]") + b"\x00\x00\x00\x00")
    assert isinstance(exc.value, EmptyFrame)
    assert isinstance(exc.value, ProtocolError)
    assert exc.value.frames == (b"[1]", b"[2]")


def test_many_small_feeds_stay_linear() -> None:
    # A quadratic buffer (re-copying everything held on each feed) needs ~8 GB of copying here.
    body = b"x" * (1024 * 1024)
    stream = encode_frame(body)
    decoder = FrameDecoder()
    frames: list[bytes] = []
    start = time.perf_counter()
    for i in range(0, len(stream), 64):
        frames += decoder.feed(stream[i : i + 64])
    assert time.perf_counter() - start < 1.0
    assert frames == [body]
