"""Length-prefixed framing: a 4-byte big-endian unsigned length, then that many bytes of JSON.

Sans-IO: the caller reads and writes the socket; this module only turns bytes into frame bodies
and back. Unlike a bare ``readexactly(length)`` loop, the announced length is checked against a cap
as soon as the header is known, so a peer can't make us buffer (or allocate) a 4 GiB frame.
"""

from __future__ import annotations

from .errors import EmptyFrame, FrameTooLarge, FramingError

__all__ = ["DEFAULT_MAX_FRAME", "HEADER_SIZE", "FrameDecoder", "encode_frame"]

HEADER_SIZE = 4
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_HEADER_LIMIT = 2**32 - 1  # the largest length a 4-byte header can announce


def _validate_cap(max_frame_size: int) -> None:
    if not 0 < max_frame_size <= _HEADER_LIMIT:
        raise ValueError(f"max_frame_size must be in 1..{_HEADER_LIMIT}, got {max_frame_size}")


def _length_error(length: int, max_frame_size: int) -> FramingError | None:
    if length == 0:
        return EmptyFrame("empty frame: every frame must carry one JSON message")
    if length > max_frame_size:
        return FrameTooLarge(f"frame of {length} bytes exceeds the {max_frame_size}-byte limit")
    return None


def encode_frame(body: bytes, max_frame_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """Prefix ``body`` with its length, refusing what the receiving decoder would reject."""
    _validate_cap(max_frame_size)
    error = _length_error(len(body), max_frame_size)
    if error is not None:
        raise error
    return len(body).to_bytes(HEADER_SIZE, "big") + body


class FrameDecoder:
    """Incremental frame splitter: feed it whatever the socket returned, get back complete bodies.

    After a ``FramingError`` the stream position is lost, so the decoder stays failed and every
    later ``feed`` raises the same error.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        _validate_cap(max_frame_size)
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()  # a partial header, or a partial body once _body_length is known
        self._body_length: int | None = None
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame; non-zero at EOF means the peer hung up mid-frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume ``data`` and return every frame body it completed, oldest first."""
        if self._error is not None:
            raise self._error
        frames: list[bytes] = []
        view = memoryview(data).cast("B")
        while view:
            if self._body_length is None:
                view = self._read_header(view)
                if self._body_length is None:
                    break
                error = _length_error(self._body_length, self.max_frame_size)
                if error is not None:
                    self._error = error
                    raised = type(error)(error.message)
                    raised.frames = tuple(frames)
                    raise raised
            else:
                needed = self._body_length - len(self._buffer)
                if len(view) < needed:
                    self._buffer += view
                    break
                if self._buffer:
                    self._buffer += view[:needed]
                    frames.append(bytes(self._buffer))
                    self._buffer.clear()
                else:  # the whole body is in this chunk: skip the intermediate buffer
                    frames.append(bytes(view[:needed]))
                view = view[needed:]
                self._body_length = None
        return frames

    def _read_header(self, view: memoryview) -> memoryview:
        """Move header bytes from ``view`` into the buffer; set ``_body_length`` once all 4 are in."""
        take = HEADER_SIZE - len(self._buffer)
        self._buffer += view[:take]
        if len(self._buffer) == HEADER_SIZE:
            self._body_length = int.from_bytes(self._buffer, "big")
            self._buffer.clear()
        return view[take:]
