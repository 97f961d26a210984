"""Image parts of OpenAI requests (chat ``image_url``, Responses ``input_image``) as engine images.

Codex only takes image bytes (see :mod:`claif_cod.engine.images`), so a ``data:`` URL is decoded
here and an http(s) URL is downloaded here, once per request, within a size cap and a deadline.
Anything that is not a readable PNG, JPEG, GIF or WebP image within ``MAX_IMAGE_BYTES`` is a 400
that names the offending part, before any turn starts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING

from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.images import Image
from claif_cod.openai_compat.image_formats import damage, sniff

if TYPE_CHECKING:
    import ssl

    import httpx2

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""OpenAI's own per-image limit."""
FETCH_TIMEOUT_S = 30.0
LARGE_DATA_URL = 1 << 20
"""A ``data:`` URL longer than this (~0.75 MB of image) is decoded in a worker thread: decoding takes
~7 ms a MB, which on the engine loop would hold up every other session's turn."""
DECODE_CHUNK = 1 << 18
"""Base64 characters decoded at a time (a multiple of 4): binascii holds the GIL for a whole call, so
a large image decoded in one call would stall the engine loop even from a worker thread."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)", re.DOTALL)


DETAILS = ("auto", "low", "high", "original")
"""OpenAI's image ``detail`` values. Codex takes ``auto`` and ``high``, but replaces an image sent with
``low`` by the text "image content omitted because detail 'low' is not supported" (seen with 0.163):
such an image goes without ``detail`` (Codex's default, ``high``) and ``detail`` is reported.
``original`` is passed on and reported too: Codex sends the model ``high`` instead where the model
lacks it (o4-mini, the test model's, on 0.163 and 0.171)."""
REPORTED_DETAILS = ("low", "original")


class ImageRef:
    """An image part as the caller sent it, before its bytes are in hand."""

    def __init__(self, url: str, where: str, detail: object = None, *, detail_at: str | None = None) -> None:
        """``detail_at``: where ``detail`` is in the request (chat's is inside ``image_url``)."""
        scheme = _SCHEME.match(url)
        if scheme and not url[: scheme.end()].islower():  # schemes ignore case (a URL is copied only then)
            url = url[: scheme.end()].lower() + url[scheme.end() :]
        self.url = url
        self.where = where
        if detail is not None and detail not in DETAILS:
            message = f"{where}: detail must be one of {', '.join(DETAILS)}"
            raise InvalidRequest(message, param=detail_at or f"{where}.detail")
        self.detail_reported = detail in REPORTED_DETAILS
        self.detail = detail if isinstance(detail, str) and detail != "low" else None


def _too_large(ref: ImageRef) -> InvalidRequest:
    return InvalidRequest(f"{ref.where}: the image is larger than {MAX_IMAGE_BYTES} bytes", param=ref.where)


def _checked(data: bytes, ref: ImageRef) -> Image:
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(ref)
    mime = sniff(data)
    if mime is None:
        raise InvalidRequest(f"{ref.where}: not a PNG, JPEG, GIF or WebP image", param=ref.where)
    why = damage(data, mime)
    if why is not None:
        kind = mime.removeprefix("image/").upper().replace("WEBP", "WebP")
        raise InvalidRequest(f"{ref.where}: the {kind} image cannot be read: {why}", param=ref.where)
    # A data: URL is identified by its bytes (it may be megabytes long), a remote one by its URL.
    source = "sha256:" + hashlib.sha256(data).hexdigest() if ref.url.startswith("data:") else ref.url
    return Image(source=source, data=data, mime=mime, detail=ref.detail)


def decode_data_url(ref: ImageRef) -> Image:
    match = _DATA_URL.fullmatch(ref.url)
    if match is None:
        raise InvalidRequest(f"{ref.where}: a data: URL must be data:<type>;base64,<data>", param=ref.where)
    if not match["mime"].lower().startswith("image/"):  # OpenAI refuses one so labelled whatever it holds
        message = (
            f"Invalid '{ref.where}'. Expected a base64-encoded data URL with an image MIME type (e.g. "
            f"'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got unsupported MIME type '{match['mime'][:100]}'."
        )
        raise InvalidRequest(message, param=ref.where, code="invalid_image_format")
    if len(match["data"]) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise _too_large(ref)
    try:
        data = _b64decode(match["data"])
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{ref.where}: the data: URL is not valid base64", param=ref.where) from None
    return _checked(data, ref)


def _b64decode(text: str) -> bytes:
    """``base64.b64decode(text, validate=True)``, :data:`DECODE_CHUNK` characters at a time."""
    parts = []
    for start in range(0, len(text), DECODE_CHUNK):
        chunk = text[start : start + DECODE_CHUNK]
        if start + DECODE_CHUNK < len(text) and "=" in chunk:  # as one call would: padding only at the end
            raise binascii.Error("Excess data after padding")
        parts.append(base64.b64decode(chunk, validate=True))
    return b"".join(parts)


async def _download(client: httpx2.AsyncClient, ref: ImageRef) -> Image:
    import httpx2  # imported by then (see load_images)

    try:
        async with client.stream("GET", ref.url) as response:
            if response.status_code != 200:
                status = response.status_code
                raise InvalidRequest(f"{ref.where}: fetching the image answered HTTP {status}", param=ref.where)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_IMAGE_BYTES:
                raise _too_large(ref)
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise _too_large(ref)
    except httpx2.HTTPError as exc:
        raise InvalidRequest(f"{ref.where}: the image could not be fetched: {_reason(exc)}", param=ref.where) from None
    large = len(data) > LARGE_DATA_URL  # its check (a PNG's CRCs) would hold up the engine loop
    return await asyncio.to_thread(_checked, bytes(data), ref) if large else _checked(bytes(data), ref)


def _reason(exc: Exception) -> str:
    return str(exc)[:200] or type(exc).__name__


async def _fetched(client: httpx2.AsyncClient, ref: ImageRef) -> Image:
    """One download within :data:`FETCH_TIMEOUT_S` in all (redirects and a slow body included)."""
    try:
        return await asyncio.wait_for(_download(client, ref), FETCH_TIMEOUT_S)
    except asyncio.TimeoutError:
        reason = f"no whole answer within {FETCH_TIMEOUT_S:g} s"
        raise InvalidRequest(f"{ref.where}: the image could not be fetched: {reason}", param=ref.where) from None


class _Decoded:
    """``data:`` URLs decoded lately, by the URL, the least recently used dropped past ``capacity``
    bytes (each URL and its image counted). Shared by every client of the process, each on its own
    engine loop's thread: a lock keeps a lookup and an eviction apart."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._images: OrderedDict[str, Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, url: str) -> Image | None:
        with self._lock:
            image = self._images.get(url)
            if image is not None:
                self._images.move_to_end(url)
            return image

    def put(self, url: str, image: Image) -> None:
        size = len(url) + len(image.data)
        with self._lock:
            if size > self.capacity or url in self._images:
                return
            self._images[url] = image
            self._bytes += size
            while self._bytes > self.capacity:
                old_url, old = self._images.popitem(last=False)
                self._bytes -= len(old_url) + len(old.data)


DECODED = _Decoded(64 << 20)
"""An agent re-sends its whole transcript with every turn, the screenshots its tools returned
included: decoding and checking each one again took ~5 ms a MB on every turn, a lookup takes
hashing the URL (~0.4 ms a MB). In memory only, in the process that decodes (the daemon, or the
caller's when in-process)."""


async def load_images(refs: list[ImageRef]) -> dict[str, Image]:
    """Every referenced image, keyed by ``where``; remote ones fetched concurrently."""
    images: dict[str, Image] = {}
    remote: list[ImageRef] = []
    for ref in refs:
        if ref.url.startswith("data:"):
            image = DECODED.get(ref.url)
            if image is None:
                large = len(ref.url) > LARGE_DATA_URL
                image = await asyncio.to_thread(decode_data_url, ref) if large else decode_data_url(ref)
                DECODED.put(ref.url, image)
            images[ref.where] = image if image.detail == ref.detail else dataclasses.replace(image, detail=ref.detail)
        elif ref.url.startswith(("https://", "http://")):
            remote.append(ref)
        else:
            raise InvalidRequest(f"{ref.where}: image_url must be an http(s) or data: URL", param=ref.where)
    if remote:
        import httpx2  # only when an image is fetched: `claif-cod --version` imports none of openai's

        # httpx2 is openai's own HTTP client: fetching needs no package of its own, and reaches the
        # network as openai's does, through the environment's proxies (HTTP(S)_PROXY, ALL_PROXY,
        # NO_PROXY) and CA store (SSL_CERT_FILE, SSL_CERT_DIR).  httpx2 reads no .netrc: a fetch
        # carries no credentials to the image's host.
        timeout = httpx2.Timeout(FETCH_TIMEOUT_S)
        tls = await _tls_context(remote[0])
        client = httpx2.AsyncClient(verify=tls, timeout=timeout, follow_redirects=True, max_redirects=5)
        async with client:
            fetched = await _all(_fetched(client, ref) for ref in remote)
        images.update((ref.where, image) for ref, image in zip(remote, fetched, strict=True))
    return images


_TLS_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


async def _tls_context(ref: ImageRef) -> ssl.SSLContext:
    """The TLS context httpx2 would make (the CA store named by ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``,
    else the system's), made once per store by :func:`_first_fetch_setup` in a worker thread; a store
    that cannot be read fails the download of ``ref``, as a failed TLS handshake would."""
    store = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _TLS_CONTEXTS.get(store)
    if context is None:
        try:
            context = _TLS_CONTEXTS[store] = await asyncio.to_thread(_first_fetch_setup)
        except OSError as exc:  # ssl.SSLError too
            file, directory = store  # SSL_CERT_FILE wins, as in httpx2
            named = f"SSL_CERT_FILE={file}" if file else f"SSL_CERT_DIR={directory}" if directory else "the system's"
            reason = f"the CA store ({named}) could not be loaded: {_reason(exc)}"
            raise InvalidRequest(f"{ref.where}: the image could not be fetched: {reason}", param=ref.where) from None
    return context


def _first_fetch_setup() -> ssl.SSLContext:
    """What a first fetch would otherwise do on the engine loop, stalling every other session's turn:
    load the CA store (50-100 ms) and import anyio's asyncio backend, which httpx2's async I/O loads
    on first use (~25 ms)."""
    import anyio
    import httpx2

    anyio.run(anyio.sleep, 0, backend="asyncio")
    return httpx2.create_ssl_context()


async def _all(fetches: Iterable[Coroutine[object, object, Image]]) -> list[Image]:
    """Every fetch's image; the first failure stops the others (the request fails with it)."""
    tasks = [asyncio.ensure_future(fetch) for fetch in fetches]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise
