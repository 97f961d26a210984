"""Which image format some bytes hold, and whether they hold all of it.

Codex decodes each image before the model sees it, and one it cannot decode reaches the model as the
text "image content omitted because it could not be processed": the turn runs on without it and
the caller never learns. So the structure Codex's decoders need is checked here, without decoding
pixels: a PNG's chunks (each whole, each CRC right, up to ``IEND``), a GIF's blocks (each whole), a
WebP's RIFF container (as long as it says), a JPEG's header segments (each whole, a frame header
among them, up to the first scan's header). A JPEG's scan data is not looked at: Codex reads even
half of one (seen with 0.163), so refusing one cut there would refuse what works; one cut before its
scan (a download that stopped inside a camera's kilobytes of Exif data) Codex cannot read.
"""

from __future__ import annotations

import struct
import zlib

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(data: bytes) -> str | None:
    """The media type ``data`` starts as, if it is a PNG, JPEG, GIF or WebP."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def damage(data: bytes, mime: str) -> str | None:
    """What is wrong with ``data``, an image of type ``mime`` (see :func:`sniff`), if anything."""
    if mime == "image/png":
        return _png_damage(data)
    if mime == "image/gif":
        return _gif_damage(data)
    if mime == "image/jpeg":
        return _jpeg_damage(data)
    if mime == "image/webp":
        (size,) = struct.unpack_from("<I", data, 4)
        if len(data) < 8 + size or len(data) < 20:
            return "it is cut short"
        return None if data[12:16] in (b"VP8 ", b"VP8L", b"VP8X") else "it holds no VP8 image"
    return None


def _png_damage(data: bytes) -> str | None:
    """Every chunk whole up to IEND, the first an IHDR of a picture with pixels, an IDAT among them
    (PNG's own rules, which Codex's decoder holds it to)."""
    at = 8
    pixels = False
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 12 + length
        if end > len(data):
            return "it is cut short"
        if zlib.crc32(data[at + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"its {kind.decode('latin-1')!r} chunk is corrupt (CRC mismatch)"
        if at == 8 and (kind != b"IHDR" or length != 13):
            return "it does not begin with its header (IHDR)"
        if at == 8 and 0 in struct.unpack_from(">II", data, at + 8):
            return "its header gives it no pixels (a width or height of 0)"
        pixels = pixels or kind == b"IDAT"
        if kind == b"IEND":
            return None if pixels else "it holds no image data (IDAT)"
        at = end
    return "it is cut short"


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""The start-of-frame markers (baseline, progressive, lossless...): not DHT, JPG or DAC."""
_JPEG_UNSIZED = frozenset((0x01, *range(0xD0, 0xD8)))
"""Markers without a length: TEM and the restart markers."""


def _jpeg_damage(data: bytes) -> str | None:
    """A JPEG's segments after its SOI, up to and with the first SOS (start of scan), each whole, a frame
    header before it; what follows is scan data, which Codex reads even cut short."""
    at = 2
    framed = False
    while at < len(data):
        if data[at] != 0xFF:
            return f"it holds no marker at byte {at}"
        while at < len(data) and data[at] == 0xFF:  # a marker may be preceded by fill bytes
            at += 1
        if at == len(data):
            break
        marker = data[at]
        at += 1
        if marker in _JPEG_UNSIZED:
            continue
        if marker == 0xD9:  # EOI before any scan
            return "it holds no image"
        if at + 2 > len(data):
            break
        (length,) = struct.unpack_from(">H", data, at)
        if length < 2:
            return f"its segment at byte {at - 2} is corrupt"
        at += length
        if at > len(data):
            break
        framed = framed or marker in _JPEG_FRAMES
        if marker == 0xDA:
            return None if framed else "it holds no frame header before its scan"
    return "it is cut short"


def _gif_damage(data: bytes) -> str | None:
    """A GIF ending after a whole block without its trailer is read by Codex: so is it here."""
    if len(data) < 13:
        return "it is cut short"
    at = 13 + _color_table(data[10])
    images = 0
    while at < len(data):
        block = data[at]
        if block == 0x3B:  # the trailer
            break
        if block == 0x21:  # an extension: its label, then sub-blocks
            at = _after_sub_blocks(data, at + 2)
        elif block == 0x2C:  # an image: its descriptor, a local color table, the LZW code size, sub-blocks
            if at + 10 > len(data):
                return "it is cut short"
            at = _after_sub_blocks(data, at + 11 + _color_table(data[at + 9]))
            images += 1
        else:
            return f"it holds an unknown block (0x{block:02x})"
        if at > len(data):
            return "it is cut short"
    return None if images else "it holds no image"


def _color_table(flags: int) -> int:
    return 3 * (2 << (flags & 7)) if flags & 0x80 else 0


def _after_sub_blocks(data: bytes, at: int) -> int:
    """Where the sub-blocks starting at ``at`` end (past ``len(data)`` when they are cut short)."""
    while at < len(data):
        size = data[at]
        at += 1 + size
        if size == 0:
            return at
    return len(data) + 1
