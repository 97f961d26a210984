"""The structure checks that keep an image Codex cannot read from reaching the model as text.

Which damage Codex 0.163 turns into "image content omitted because it could not be processed" was
seen with the real binary (a truncated PNG or GIF, a PNG chunk with a wrong CRC); what it reads
(a JPEG cut in its scan data, a GIF without its trailer, bytes after a PNG's IEND) must pass; a
JPEG cut before its scan it could not read either.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from image_details import JPEG, JPEG_SCAN, PNG, padded_png

from claif_cod.openai_compat.image_formats import damage, sniff

GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


@pytest.mark.parametrize(
    ("data", "mime"), [(PNG, "image/png"), (GIF, "image/gif"), (WEBP, "image/webp"), (JPEG, "image/jpeg")]
)
def test_whole_images_are_sniffed_and_pass(data: bytes, mime: str) -> None:
    assert sniff(data) == mime
    assert damage(data, mime) is None


def test_what_codex_reads_passes() -> None:
    assert damage(padded_png(50_000) + b"trailing bytes", "image/png") is None  # after IEND: ignored
    assert damage(GIF[:-1], "image/gif") is None  # no trailer after the last whole block
    assert damage(JPEG[:JPEG_SCAN], "image/jpeg") is None  # cut in its scan data: Codex reads it


def test_a_png_cut_anywhere_before_its_end_is_cut_short() -> None:
    big = padded_png(5_000)
    for cut in (9, 20, 33, 100, len(big) - 13, len(big) - 1):
        assert damage(big[:cut], "image/png") == "it is cut short", cut


def test_a_png_chunk_whose_crc_does_not_match_is_named() -> None:
    flipped = bytearray(PNG)
    flipped[45] ^= 1  # in the IDAT chunk's data
    assert damage(bytes(flipped), "image/png") == "its 'IDAT' chunk is corrupt (CRC mismatch)"


def _png(*chunks: tuple[bytes, bytes]) -> bytes:
    return PNG[:8] + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)) for kind, body in chunks
    )


def test_a_png_without_a_header_first_pixels_or_image_data_is_named() -> None:
    """Each reached the model as "image content omitted" (Codex 0.163), whole and with right CRCs."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(4))
    assert damage(_png((b"IHDR", header), (b"IDAT", pixels), (b"IEND", b"")), "image/png") is None
    no_header = _png((b"tEXt", b"a\x00b"), (b"IHDR", header), (b"IDAT", pixels), (b"IEND", b""))
    assert damage(no_header, "image/png") == "it does not begin with its header (IHDR)"
    empty = _png((b"IHDR", struct.pack(">II", 0, 1) + header[8:]), (b"IDAT", pixels), (b"IEND", b""))
    assert damage(empty, "image/png") == "its header gives it no pixels (a width or height of 0)"
    no_data = _png((b"IHDR", header), (b"IEND", b""))
    assert damage(no_data, "image/png") == "it holds no image data (IDAT)"


def test_a_gif_cut_inside_a_block_is_cut_short() -> None:
    for cut in (12, 20, len(GIF) - 5, len(GIF) - 2):
        assert damage(GIF[:cut], "image/gif") == "it is cut short", cut
    assert damage(GIF[:-1] + b"\x07", "image/gif") == "it holds an unknown block (0x07)"


def test_a_webp_shorter_than_its_riff_size_is_cut_short() -> None:
    assert damage(WEBP[:-3], "image/webp") == "it is cut short"


def test_a_gif_with_a_local_color_table_or_no_image_at_all() -> None:
    local = GIF[:10] + b"\x00" + GIF[11:13] + GIF[19:36] + b"\x80" + bytes(6) + GIF[37:]
    assert damage(local, "image/gif") is None  # no global table, a local one of 2 colors
    assert damage(GIF[:19] + b";", "image/gif") == "it holds no image"  # a header and a trailer


def test_a_webp_needs_a_vp8_image_in_its_riff() -> None:
    assert damage(b"RIFF\x04\x00\x00\x00WEBP" + bytes(8), "image/webp") == "it holds no VP8 image"
    assert damage(b"RIFF\x00\x00\x00\x00WEBP", "image/webp") == "it is cut short"


def test_a_jpeg_cut_before_its_scan_or_without_a_frame_is_refused() -> None:
    """Codex 0.163 sent the model "image content omitted because it could not be processed" for each."""
    for cut in (3, 4, 20, 100, JPEG_SCAN - 1):
        assert damage(JPEG[:cut], "image/jpeg") == "it is cut short", cut
    sof = JPEG.index(b"\xff\xc0")
    no_frame = JPEG[:sof] + JPEG[sof + 2 + 11 :]  # without its 11-byte SOF0 segment
    assert damage(no_frame, "image/jpeg") == "it holds no frame header before its scan"
    assert damage(JPEG[:20] + b"\xff\xd9", "image/jpeg") == "it holds no image"
    assert damage(JPEG[:20] + b"junk", "image/jpeg") == "it holds no marker at byte 20"
    assert damage(JPEG[:2] + b"\xff\xff" + JPEG[2:], "image/jpeg") is None  # fill bytes before a marker
