"""The images the offline model received, with their ``detail`` (shared by the in-process and daemon tests)."""

from __future__ import annotations

import base64
import os
import struct
import zlib
from typing import Any

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
JPEG = base64.b64decode(  # a 1x1 grey baseline JPEG (Pillow's), which Codex reads
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBk"
    "eFxlZ2P/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AP//Z"
)
JPEG_SCAN = JPEG.index(b"\xff\xda") + 10
"""Where the JPEG's scan data begins, after its SOS segment."""
OMITTED = "image content omitted"


def padded_png(size: int) -> bytes:
    """:data:`PNG` grown to ``size`` bytes by a private ancillary chunk of random bytes, which image
    decoders skip: a large image that is still the 1x1 picture."""
    padding = os.urandom(size - len(PNG) - 12)
    kind = b"prVt"  # ancillary (lower-case first letter), private (lower-case second)
    chunk = struct.pack(">I", len(padding)) + kind + padding + struct.pack(">I", zlib.crc32(kind + padding))
    return PNG[:33] + chunk + PNG[33:]  # after the signature and IHDR


def image_details(request: Any) -> list[str | None]:
    """``detail`` of each ``input_image`` the model got, oldest first; fails if Codex replaced an image by text."""
    details: list[str | None] = []
    for item in request.body["input"]:
        for part in item.get("content") or []:
            if not isinstance(part, dict):
                continue
            assert OMITTED not in str(part.get("text", "")), part["text"]
            if part.get("type") == "input_image":
                details.append(part.get("detail"))
    return details


def responses_input(history_detail: str | None, prompt_detail: str | None) -> list[dict[str, Any]]:
    def image(detail: str | None) -> dict[str, Any]:
        return {"type": "input_image", "image_url": PNG_URL, **({"detail": detail} if detail else {})}

    return [
        {"role": "user", "content": [{"type": "input_text", "text": "old"}, image(history_detail)]},
        {"role": "assistant", "content": "seen"},
        {"role": "user", "content": [{"type": "input_text", "text": "see"}, image(prompt_detail)]},
    ]


def chat_messages(history_detail: str | None, prompt_detail: str | None) -> list[dict[str, Any]]:
    def image(detail: str | None) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": PNG_URL, **({"detail": detail} if detail else {})}}

    return [
        {"role": "user", "content": [{"type": "text", "text": "old"}, image(history_detail)]},
        {"role": "assistant", "content": "seen"},
        {"role": "user", "content": [{"type": "text", "text": "see"}, image(prompt_detail)]},
    ]
