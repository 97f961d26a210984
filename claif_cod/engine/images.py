"""Images a turn shows the model, always as bytes: Codex refuses remote image URLs.

Codex 0.163 answers a remote URL in ``turn/start`` or ``thread/inject_items`` with "remote image
URLs are not supported; use an inline data URL instead", so callers hand the engine bytes. A
turn's images are written to 0600 files in a fresh 0700 directory that Codex reads (and may
downscale) as ``localImage`` inputs; the directory is removed when the turn ends (or, should this
process be killed first, by the next one to write images: :mod:`image_folders`). Images in
injected history travel as ``data:`` URLs. Past :data:`LARGE_IMAGES` (see :func:`large`), a turn's
files are written, and history's ``data:`` URLs encoded, in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from claif_cod.engine import image_folders, wire

LARGE_IMAGES = 1 << 20
"""Bytes of images past which their ``data:`` URLs are made (~3.5 ms a MB here), and their files
written (~0.4 ms a MB), off the event loop."""
ENCODE_CHUNK = 3 << 16
"""Bytes base64-encoded per call: a multiple of 3, so the chunks' text is one call's. binascii holds
the GIL for a whole call; between chunks the event loop's thread gets it back."""

_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}


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
    """Whether these images' ``data:`` URLs or files are to be made in a worker thread, not on the event loop."""
    return sum(len(image.data) for image in images) > LARGE_IMAGES


class TurnImages:
    """``localImage`` inputs for a turn's images, and the private files behind them."""

    def __init__(self, images: Sequence[Image]) -> None:
        self.inputs: list[wire.UserInput] = []
        self._dir: str | None = None
        try:
            for index, image in enumerate(images):
                path = self._write(index, image)
                self.inputs.append(wire.LocalImageInput(path=path, detail=image.detail or msgspec.UNSET))
        except BaseException:
            self.remove()
            raise

    def _write(self, index: int, image: Image) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix=image_folders.folder_prefix())  # mode 0700
        path = os.path.join(self._dir, f"image-{index}{_SUFFIXES.get(image.mime, '')}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(image.data)
        return path

    @property
    def directory(self) -> str | None:
        return self._dir

    def remove(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


async def turn_images(images: Sequence[Image]) -> TurnImages:
    """A turn's image files; large ones written in a worker thread (a file write lets go of the GIL),
    so that the event loop serves other turns meanwhile. A caller cancelled while they are written
    leaves nothing behind: the files are removed once written. The first turn with images in a
    process removes the folders of processes killed before they could (see :mod:`image_folders`)."""
    if images:
        await image_folders.sweep_once()
    if not large(images):
        return TurnImages(images)
    writing = asyncio.ensure_future(asyncio.to_thread(TurnImages, images))
    try:
        return await asyncio.shield(writing)
    except asyncio.CancelledError:
        writing.add_done_callback(_remove_unclaimed)
        raise


def _remove_unclaimed(writing: asyncio.Future[TurnImages]) -> None:
    if not writing.cancelled() and writing.exception() is None:
        writing.result().remove()
