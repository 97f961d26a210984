"""Images a turn shows the model, always as bytes: Codex refuses remote image URLs.

Codex 0.163 answers a remote URL in ``turn/start`` or ``thread/inject_items`` with "remote image
URLs are not supported; use an inline data URL instead", so callers hand the engine bytes, and
they travel as ``data:`` URLs: a turn's as ``image`` inputs (Codex may downscale them), injected
history's as ``input_image`` parts.  Not as ``localImage`` files: Codex tells the model about
those in text around each image (``<image name=[Image #1] path="/tmp/...">``), which would show
the model provider a private path and make a turn look other than the same history replayed.
Past :data:`LARGE_IMAGES` (see :func:`large`), the ``data:`` URLs are encoded in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from claif_cod.engine import wire

LARGE_IMAGES = 1 << 20
"""Bytes of images past which their ``data:`` URLs are made (~3.5 ms a MB here) off the event loop."""
ENCODE_CHUNK = 3 << 16
"""Bytes base64-encoded per call: a multiple of 3, so the chunks' text is one call's. binascii holds
the GIL for a whole call; between chunks the event loop's thread gets it back."""


@dataclass(frozen=True)
class Image:
    """One image: its bytes and MIME type; ``source`` is where the caller's request had it from."""

    source: str
    data: bytes = field(repr=False, compare=False)
    mime: str
    detail: str | None = None
    """OpenAI's ``detail`` (``auto``, ``high``, ``original``), passed on to Codex as given."""

    @property
    def data_url(self) -> str:
        data = memoryview(self.data)
        encoded = b"".join(base64.b64encode(data[i : i + ENCODE_CHUNK]) for i in range(0, len(data), ENCODE_CHUNK))
        return f"data:{self.mime};base64,{encoded.decode('ascii')}"


def large(images: Iterable[Image]) -> bool:
    """Whether these images' ``data:`` URLs are to be made in a worker thread, not on the event loop."""
    return sum(len(image.data) for image in images) > LARGE_IMAGES


def image_inputs(images: Sequence[Image]) -> list[wire.UserInput]:
    """A turn's images as Codex's ``image`` inputs."""
    return [wire.ImageInput(url=image.data_url, detail=image.detail or msgspec.UNSET) for image in images]


async def turn_images(images: Sequence[Image]) -> list[wire.UserInput]:
    """:func:`image_inputs`, large ones encoded in a worker thread (see :data:`ENCODE_CHUNK`), so
    that the event loop serves other turns meanwhile."""
    if not large(images):
        return image_inputs(images)
    return await asyncio.to_thread(image_inputs, images)
