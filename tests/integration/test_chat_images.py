"""``image_url`` parts in chat messages reach the model through the real Codex binary."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from image_details import JPEG, JPEG_SCAN, PNG, PNG_URL, padded_png
from image_host import png_host

from claif_cod import CodexClient
from claif_cod.engine.images import LARGE_IMAGES
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def decoded(urls: list[str]) -> list[bytes]:
    return [base64.b64decode(url.split(",", 1)[1]) for url in urls]


def look(text: str, url: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
    }


def test_data_url_image_reaches_the_model(client: CodexClient, codex_model_server: ModelServer) -> None:
    reply = client.chat.completions.create(model="o4-mini", messages=[look("what is it", PNG_URL)])  # type: ignore[list-item]
    assert reply.choices[0].message.content == "Echo: what is it"
    [request] = codex_model_server.requests
    assert decoded(request.images()) == [PNG]


def test_a_turns_image_reaches_the_model_as_sent_with_no_text_around_it(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """Given to Codex as a file (``localImage``), an image reached the model wrapped in text naming
    the file's private path (``<image name=[Image #1] path="/tmp/...">``): what the caller never
    sent, and what a replay of the same history (a thread started anew) would not have."""
    client.chat.completions.create(model="o4-mini", messages=[look("what is it", PNG_URL)])  # type: ignore[list-item]
    [request] = codex_model_server.requests
    said = [item for item in request.body["input"] if item.get("role") == "user"][-1]  # (after Codex's context)
    assert [(part["type"], part.get("text")) for part in said["content"]] == [
        ("input_text", "what is it"),
        ("input_image", None),
    ]
    assert said["content"][1]["image_url"] == PNG_URL


def test_a_large_image_reaches_the_model(client: CodexClient, codex_model_server: ModelServer) -> None:
    """Past LARGE_IMAGES, the turn's image is encoded in a worker thread."""
    png = padded_png(LARGE_IMAGES + 4096)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    reply = client.chat.completions.create(model="o4-mini", messages=[look("and this", url)])  # type: ignore[list-item]
    assert reply.choices[0].message.content == "Echo: and this"
    [request] = codex_model_server.requests
    assert decoded(request.images()) == [png]


def test_image_in_replayed_history_is_injected(client: CodexClient, codex_model_server: ModelServer) -> None:
    client.chat.completions.create(
        model="o4-mini",
        messages=[  # type: ignore[list-item]
            look("earlier", PNG_URL),
            {"role": "assistant", "content": "a pixel"},
            {"role": "user", "content": "and now?"},
        ],
    )
    [request] = codex_model_server.requests
    assert decoded(request.images()) == [PNG]
    assert request.messages() == [("user", "earlier"), ("assistant", "a pixel"), ("user", "and now?")]


@pytest.fixture
def image_host() -> Iterator[str]:
    with png_host() as url:
        yield url


def test_remote_image_is_fetched_and_sent_inline(
    client: CodexClient, codex_model_server: ModelServer, image_host: str
) -> None:
    client.chat.completions.create(model="o4-mini", messages=[look("remote", f"{image_host}/p.png")])  # type: ignore[list-item]
    [request] = codex_model_server.requests
    assert decoded(request.images()) == [PNG]


def test_bad_image_is_a_400_naming_the_part_and_no_turn_runs(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "user", "content": "hi"}, look("x", "data:image/png;base64,####")],  # type: ignore[list-item]
        )
    assert caught.value.body["param"] == "messages[1].content[1]"  # type: ignore[index]
    assert codex_model_server.requests == []


def test_an_image_codex_could_not_read_is_a_400_not_a_turn_without_it(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """Codex would send the model "image content omitted because it could not be processed" instead."""
    cut = padded_png(100_000)[:60_000]
    url = "data:image/png;base64," + base64.b64encode(cut).decode()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="o4-mini", messages=[look("what is this?", url)])  # type: ignore[list-item]
    assert caught.value.body["param"] == "messages[0].content[1]"  # type: ignore[index]
    assert "the PNG image cannot be read: it is cut short" in caught.value.message
    assert codex_model_server.requests == []


def test_a_jpeg_cut_before_its_scan_is_a_400_and_one_cut_in_it_reaches_the_model(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """Codex reads a JPEG cut in its scan data, not one cut in its header (a download that stopped in
    its Exif data): it would send the model "image content omitted because it could not be processed"."""
    url = "data:image/jpeg;base64," + base64.b64encode(JPEG[: JPEG_SCAN - 1]).decode()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="o4-mini", messages=[look("what is this?", url)])  # type: ignore[list-item]
    assert caught.value.body["param"] == "messages[0].content[1]"  # type: ignore[index]
    assert "the JPEG image cannot be read: it is cut short" in caught.value.message
    assert codex_model_server.requests == []
    url = "data:image/jpeg;base64," + base64.b64encode(JPEG[:JPEG_SCAN]).decode()
    reply = client.chat.completions.create(model="o4-mini", messages=[look("and this?", url)])  # type: ignore[list-item]
    assert reply.choices[0].message.content == "Echo: and this?"
    [request] = codex_model_server.requests
    assert len(request.images()) == 1
