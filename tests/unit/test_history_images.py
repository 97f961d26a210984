"""Images in a history injected into a new thread: their ``data:`` URLs, and where they are made."""

from __future__ import annotations

import asyncio
import base64
import threading
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from claif_cod.engine import images, wire
from claif_cod.engine.conversations import Message
from claif_cod.engine.images import Image
from claif_cod.engine.threads import Threads


@pytest.mark.parametrize("chunk", [3, 6, images.ENCODE_CHUNK])  # the last: the one shipped
@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 6, 7, "two chunks and a byte"])
def test_a_data_url_encoded_in_chunks_is_one_calls(
    chunk: int, size: int | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """binascii holds the GIL for a whole call: a large image is encoded a chunk at a time, and the
    chunks (a multiple of 3 bytes each) must give exactly the text one call gives."""
    monkeypatch.setattr(images, "ENCODE_CHUNK", chunk)
    length = 2 * chunk + 1 if isinstance(size, str) else size
    data = (bytes(range(251)) * (length // 251 + 1))[:length]
    expected = "data:image/png;base64," + base64.b64encode(data).decode()
    assert Image("s", data, "image/png").data_url == expected


def test_a_large_historys_data_urls_are_made_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """~3.5 ms a MB of encoding would hold up every other session's turn on the engine loop (a
    conversation re-seeded after an unload or a restart); small images are encoded where they are."""
    made: dict[str, int] = {}
    data_url = Image.data_url

    def recording(image: Image) -> str:
        made[image.source] = threading.get_ident()
        return data_url.fget(image)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(Image, "data_url", property(recording))
    sent: list[list[Any]] = []

    async def request(method: str, params: wire.InjectItemsParams, result_type: type[Any]) -> msgspec.Raw:
        sent.append(params.items)
        return msgspec.Raw(b"{}")

    handle = SimpleNamespace(thread_id="t", server=SimpleNamespace(request=request))
    small = [Message("user", "look", (Image("small", b"\x89PNG", "image/png"),)), "be brief"]
    large = [Message("user", "look", (Image("large", bytes(images.LARGE_IMAGES + 1), "image/png"),))]

    async def loaded(_handle: object) -> None:
        pass

    threads = SimpleNamespace(ensure_loaded=loaded)  # (the thread is loaded)

    async def inject() -> int:
        for history in (small, large):
            await Threads.inject(threads, handle, history)  # type: ignore[arg-type]
        return threading.get_ident()

    loop_thread = asyncio.run(inject())
    assert made["small"] == loop_thread != made["large"]
    assert [len(items) for items in sent] == [2, 1]
    assert sent[1][0].content[-1].image_url == "data:image/png;base64," + base64.b64encode(
        bytes(images.LARGE_IMAGES + 1)
    ).decode("ascii")
