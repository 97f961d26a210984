"""Image ``detail`` reaches the model through Codex (``auto``, ``high``); ``low``, which Codex would answer by
dropping the image, is reported instead, and ``original``, which Codex turns into ``high`` for the test model,
is passed on and reported (in-process engine, real Codex, offline model)."""

from __future__ import annotations

import openai
import pytest
from image_details import PNG_URL, chat_messages, image_details, responses_input

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_responses_forward_detail_on_the_turn_and_in_history(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    raw = client.responses.with_raw_response.create(model="o4-mini", input=responses_input("auto", "auto"))
    assert raw.parse().output_text == "[turn 2] Echo: see"
    assert "x-claif-cod-ignored-params" not in raw.headers
    [request] = codex_model_server.requests
    assert image_details(request) == ["auto", "auto"]  # Codex's own default is "high": this came from us


def test_chat_forwards_detail(client: CodexClient, codex_model_server: ModelServer) -> None:
    client.chat.completions.create(model="o4-mini", messages=chat_messages("auto", None))  # type: ignore[arg-type]
    [request] = codex_model_server.requests
    assert image_details(request) == ["auto", "high"]  # no detail: Codex's default


def test_original_detail_is_passed_on_and_reported(client: CodexClient, codex_model_server: ModelServer) -> None:
    raw = client.responses.with_raw_response.create(model="o4-mini", input=responses_input("original", "original"))
    assert raw.headers["x-claif-cod-ignored-params"] == "input_image.detail"
    chat = client.chat.completions.with_raw_response.create(
        model="o4-mini",
        messages=chat_messages("original", "original"),  # type: ignore[arg-type]
    )
    assert chat.headers["x-claif-cod-ignored-params"] == "image_url.detail"
    first, second = codex_model_server.requests
    # Sent to Codex as "original" (tests/unit/test_images.py), and the model got "high":
    # o4-mini has no original resolution (0.163, 0.171). Another model may get it: so passed on, and reported.
    assert image_details(first) == image_details(second) == ["high", "high"]


def test_low_detail_is_reported_and_the_image_still_reaches_the_model(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    raw = client.responses.with_raw_response.create(model="o4-mini", input=responses_input("low", "low"))
    assert raw.headers["x-claif-cod-ignored-params"] == "input_image.detail"
    chat = client.chat.completions.with_raw_response.create(
        model="o4-mini",
        messages=chat_messages(None, "low"),  # type: ignore[arg-type]
    )
    assert chat.headers["x-claif-cod-ignored-params"] == "image_url.detail"
    first, second = codex_model_server.requests
    # Sent without detail: injected history has none (the model's default), the turn's image Codex's "high".
    assert image_details(first) == image_details(second) == [None, "high"]

    with pytest.raises(openai.BadRequestError, match=r"input_image\.detail"):
        client.responses.create(model="o4-mini", input=responses_input(None, "low"), extra_body={"strict": True})
    with pytest.raises(openai.BadRequestError, match=r"image_url\.detail"):
        client.chat.completions.create(
            model="o4-mini",
            messages=chat_messages("low", None),  # type: ignore[arg-type]
            extra_body={"strict": True},
        )
    assert len(codex_model_server.requests) == 2


def test_unknown_detail_is_a_bad_request_naming_the_part(client: CodexClient) -> None:
    bad = [{"role": "user", "content": [{"type": "input_image", "image_url": PNG_URL, "detail": "medium"}]}]
    with pytest.raises(openai.BadRequestError, match=r"input\[0\]\.content\[0\]: detail must be one of") as caught:
        client.responses.create(model="o4-mini", input=bad)  # type: ignore[arg-type]
    assert caught.value.param == "input[0].content[0].detail"  # type: ignore[attr-defined]
    chat_bad = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL, "detail": "medium"}}]}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="o4-mini", messages=chat_bad)  # type: ignore[arg-type]
    assert caught.value.param == "messages[0].content[0].image_url.detail"  # type: ignore[attr-defined]
