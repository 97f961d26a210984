"""Image parts of chat and Responses requests: collected at parse time, loaded (decoded or fetched) before the turn."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from claif_cod.engine import images as engine_images
from claif_cod.engine import wire
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.images import LARGE_IMAGES, Image, image_inputs, turn_images
from claif_cod.engine.tools import ToolResult
from claif_cod.openai_compat import images
from claif_cod.openai_compat.images import ImageRef, decode_data_url, load_images
from claif_cod.openai_compat.request import parse_chat_request
from claif_cod.openai_compat.responses_request import parse_responses_request

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.fixture(autouse=True)
def _nothing_decoded_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test decodes its images itself: none comes from another test's (see images.DECODED)."""
    monkeypatch.setattr(images, "DECODED", images._Decoded(images.DECODED.capacity))


def chat(*messages: dict[str, Any]) -> bytes:
    return json.dumps({"messages": list(messages)}).encode()


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def test_chat_image_parts_load_into_the_prompt_and_history() -> None:
    parsed = parse_chat_request(
        chat(
            {"role": "user", "content": [{"type": "text", "text": "a"}, image_part(PNG_URL)]},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": [image_part(PNG_URL), {"type": "text", "text": "c"}]},
        ),
        default_model=None,
        strict=False,
    )
    assert [r.where for r in parsed.image_refs] == ["messages[0].content[1]", "messages[2].content[0]"]
    asyncio.run(parsed.with_images())
    conversation = parsed.conversation
    assert conversation.prompt == "c"
    assert [i.data for i in conversation.prompt_images] == [PNG]
    assert [i.mime for i in conversation.history[0].images] == ["image/png"]


def test_a_url_scheme_is_read_whatever_its_case() -> None:
    data_url = "DATA" + PNG_URL[4:]
    assert ImageRef(data_url, "x").url == PNG_URL
    assert asyncio.run(load_images([ImageRef(data_url, "x")]))["x"].data == PNG
    assert ImageRef("HTTPS://Example.com/A.png", "x").url == "https://Example.com/A.png"
    assert ImageRef("Https://Example.com/A.png", "x").url == "https://Example.com/A.png"


def test_images_outside_user_messages_are_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(
            chat({"role": "system", "content": [image_part(PNG_URL)]}, {"role": "user", "content": "x"}),
            default_model=None,
            strict=False,
        )
    assert caught.value.param == "messages[0].content[0]"


def test_responses_input_images_attach_to_their_message() -> None:
    body = {
        "input": [
            {"role": "user", "content": [{"type": "input_image", "image_url": PNG_URL}]},
            {"role": "assistant", "content": "seen"},
            {"role": "user", "content": [{"type": "input_text", "text": "and now"}]},
        ]
    }
    parsed = parse_responses_request(json.dumps(body).encode(), default_model=None, strict=False)
    asyncio.run(parsed.with_images())
    assert [len(m.images) for m in parsed.history] == [1, 0]
    assert parsed.prompt_images == ()


def test_responses_tool_output_images_attach_to_their_result() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "chart", "arguments": "{}"}
    output = [{"type": "input_text", "text": "a chart"}, {"type": "input_image", "image_url": PNG_URL}]
    body = {
        "input": [
            {"role": "user", "content": "q"},
            call,
            {"type": "function_call_output", "call_id": "c1", "output": output},
        ]
    }
    parsed = parse_responses_request(json.dumps(body).encode(), default_model=None, strict=False)
    asyncio.run(parsed.with_images())
    *_, result = parsed.history
    assert isinstance(result, ToolResult) and result.output == "a chart"
    assert [image.data for image in result.images] == [PNG]
    assert parsed.pending_results() == (result,)


def test_chat_tool_message_images_attach_to_their_result() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "chart", "arguments": "{}"}}
    parsed = parse_chat_request(
        chat(
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [{"type": "text", "text": "a chart"}, image_part(PNG_URL)],
            },
        ),
        default_model=None,
        strict=False,
    )
    asyncio.run(parsed.with_images())
    *_, result = parsed.conversation.history
    assert isinstance(result, ToolResult) and result.output == "a chart"
    assert [image.data for image in result.images] == [PNG]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:image/png;base64,!!!", "not valid base64"),
        ("data:image/png," + "AAAA", "data:<type>;base64"),
        ("data:image/png;base64," + base64.b64encode(b"plain text").decode(), "not a PNG"),
        ("ftp://example.com/a.png", r"http\(s\) or data: URL"),
        ("file:///etc/passwd", r"http\(s\) or data: URL"),
    ],
)
def test_unreadable_images_are_rejected_naming_the_part(url: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason) as caught:
        asyncio.run(load_images([ImageRef(url, "messages[3].content[1]")]))
    assert caught.value.param == "messages[3].content[1]"
    assert caught.value.message.startswith("messages[3].content[1]: ")


@pytest.mark.parametrize("mime", ["text/plain", "application/octet-stream"])
def test_a_data_url_labelled_other_than_an_image_is_refused_as_openai_does(mime: str) -> None:
    """Even when its bytes are an image: OpenAI refuses it so, and a program should fail here first."""
    url = f"data:{mime};base64," + base64.b64encode(PNG).decode()
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(load_images([ImageRef(url, "input[0].content[1].image_url")]))
    assert caught.value.message == (
        "Invalid 'input[0].content[1].image_url'. Expected a base64-encoded data URL with an image MIME type "
        f"(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got unsupported MIME type '{mime}'."
    )
    assert (caught.value.param, caught.value.code) == ("input[0].content[1].image_url", "invalid_image_format")


def test_a_data_urls_image_label_need_not_name_its_format() -> None:
    """A PNG labelled JPEG is read as the PNG it is (Codex is sent the right type)."""
    url = "data:IMAGE/JPEG;base64," + base64.b64encode(PNG).decode()
    image = asyncio.run(load_images([ImageRef(url, "messages[0].content[0]")]))["messages[0].content[0]"]
    assert (image.mime, image.data) == ("image/png", PNG)


def test_a_large_data_url_is_decoded_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """~7 ms a MB of decoding would hold up every other session's turn on the engine loop; a small
    image is decoded where it is, without a hand-over to a worker thread."""
    decoded: dict[str, int] = {}
    decode = images.decode_data_url

    def recording(ref: ImageRef) -> Image:
        decoded[ref.where] = threading.get_ident()
        return decode(ref)

    monkeypatch.setattr(images, "decode_data_url", recording)
    large = PNG + bytes(images.LARGE_DATA_URL)  # a PNG's bytes, then padding: still a PNG to the sniffer
    large_url = "data:image/png;base64," + base64.b64encode(large).decode()

    async def load() -> tuple[int, dict[str, Image]]:
        refs = [ImageRef(PNG_URL, "small"), ImageRef(large_url, "large")]
        return threading.get_ident(), await load_images(refs)

    loop_thread, loaded = asyncio.run(load())
    assert (loaded["small"].data, loaded["large"].data) == (PNG, large)
    assert decoded["small"] == loop_thread != decoded["large"]


def test_a_data_url_sent_again_is_not_decoded_again_and_the_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An agent re-sends its transcript's screenshots with every turn."""
    decoded: list[str] = []
    decode = images.decode_data_url

    def recording(ref: ImageRef) -> Image:
        decoded.append(ref.where)
        return decode(ref)

    monkeypatch.setattr(images, "decode_data_url", recording)
    first = asyncio.run(load_images([ImageRef(PNG_URL, "a", "high")]))["a"]
    again = asyncio.run(load_images([ImageRef(PNG_URL, "b")]))["b"]
    assert decoded == ["a"]
    assert (again.data, again.source, again.detail, first.detail) == (PNG, first.source, None, "high")
    other = "data:image/png;base64," + base64.b64encode(PNG + b"\0").decode()
    monkeypatch.setattr(images.DECODED, "capacity", len(PNG_URL) + len(PNG) + 1)
    asyncio.run(load_images([ImageRef(other, "c"), ImageRef(PNG_URL, "d")]))  # the first pushed out by the other
    assert decoded == ["a", "c", "d"]


def test_the_decoded_images_are_shared_safely_by_the_loops_of_several_clients() -> None:
    """Each in-process client's engine loop has a thread of its own: a lookup must not meet another
    loop's eviction halfway (it raised KeyError), nor two puts lose count of the bytes held."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: a race shows within the run
    image = Image(source="s", data=b"d" * 10, mime="image/png")
    cache = images._Decoded(len("a") + 10)  # room for one of the two
    failures: list[BaseException] = []
    writing = threading.Event()

    def read() -> None:
        while not writing.is_set():
            try:
                cache.get("a")
            except BaseException as exc:
                failures.append(exc)

    def write() -> None:
        try:
            for i in range(100_000):
                cache.put("ab"[i % 2], image)
        except BaseException as exc:
            failures.append(exc)
        finally:
            writing.set()

    threads = [threading.Thread(target=read), threading.Thread(target=write), threading.Thread(target=write)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(switching)
    assert failures == []
    assert cache._bytes == sum(len(url) + len(i.data) for url, i in cache._images.items()) <= cache.capacity


@pytest.mark.parametrize("chunk", [4, 8, 12, 1 << 18])
def test_base64_decoded_in_chunks_as_in_one_call(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """binascii holds the GIL for a whole call, so a large image is decoded a chunk at a time: what
    one call takes or refuses (padding anywhere but at the end included), the chunks do too."""
    monkeypatch.setattr(images, "DECODE_CHUNK", chunk)
    encoded = base64.b64encode(PNG + b"tail").decode()
    assert decode_data_url(ImageRef(f"data:image/png;base64,{encoded}", "p")).data == PNG + b"tail"
    for bad in ("YQ==" + encoded, encoded[:-1], encoded[:-6] + "!" + encoded[-5:], encoded[:-4] + "=" + encoded[-3:]):
        with pytest.raises(binascii.Error):
            base64.b64decode(bad, validate=True)
        with pytest.raises(InvalidRequest, match="not valid base64"):
            decode_data_url(ImageRef(f"data:image/png;base64,{bad}", "p"))


def test_oversized_images_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", len(PNG) - 1)
    with pytest.raises(InvalidRequest, match="larger than") as caught:
        asyncio.run(load_images([ImageRef(PNG_URL, "input[0].content[0]")]))
    assert caught.value.param == "input[0].content[0]"


_HANG = threading.Event()
"""Set when a test's image host stops: ``/hang`` answers nothing until then."""


class _Images(BaseHTTPRequestHandler):
    """An image host; also an HTTP proxy that serves every URL it is asked for as that host would."""

    seen: list[tuple[str, str | None]] = []
    """Each request's target (a proxy is sent the whole URL) and its Authorization header."""

    def do_GET(self) -> None:
        _Images.seen.append((self.path, self.headers.get("authorization")))
        self.path = urlsplit(self.path).path  # as a proxy, the host's own path
        if self.path == "/cat.png":
            self._send(PNG, declared=len(PNG))
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("location", "/cat.png")
            self.send_header("content-length", "0")
            self.end_headers()
        elif self.path == "/endless":  # no content-length, no end: the cap is found while reading
            self._send_endless()
        elif self.path == "/big-declared":
            self._send(PNG, declared=images.MAX_IMAGE_BYTES + 1)
        elif self.path == "/hang":
            _HANG.wait(30)
        else:
            self.send_error(404)

    def _send(self, body: bytes, declared: int | None) -> None:
        self.send_response(200)
        self.send_header("content-type", "image/png")
        if declared is not None:
            self.send_header("content-length", str(declared))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stops reading at the cap
            self.wfile.write(body)

    def _send_endless(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.end_headers()
        with contextlib.suppress(OSError):  # until the client stops reading
            self.wfile.write(PNG)
            while not _HANG.is_set():
                self.wfile.write(bytes(64 * 1024))

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def image_host() -> Iterator[str]:
    _HANG.clear()
    _Images.seen.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _HANG.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_remote_images_are_fetched(image_host: str) -> None:
    loaded = asyncio.run(load_images([ImageRef(f"{image_host}/cat.png", "p")]))
    assert loaded["p"].data == PNG and loaded["p"].source == f"{image_host}/cat.png"


def test_the_tls_context_is_made_off_the_loop_once_per_store(image_host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a CA store takes 50-100 ms: on the engine loop it stalled every other turn (asyncio's
    debug mode caught a 0.12 s step in CI), so it is made in a worker thread, once per store (and
    tests/integration/test_first_use_off_loop.py in a fresh interpreter)."""
    import httpx2

    made: list[tuple[int, str | None]] = []
    create = httpx2.create_ssl_context

    def recording(*args: Any, **kwargs: Any) -> Any:
        made.append((threading.get_ident(), os.environ.get("SSL_CERT_FILE")))
        return create(*args, **kwargs)

    monkeypatch.setattr(httpx2, "create_ssl_context", recording)
    monkeypatch.setattr(images, "_TLS_CONTEXTS", {})
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    store = ssl.get_default_verify_paths().openssl_cafile

    async def load_three() -> int:
        for _ in range(2):
            await load_images([ImageRef(f"{image_host}/cat.png", "p")])
        monkeypatch.setenv("SSL_CERT_FILE", store)
        await load_images([ImageRef(f"{image_host}/cat.png", "p")])
        return threading.get_ident()

    loop_thread = asyncio.run(load_three())
    assert [store_file for _, store_file in made] == [None, store]
    assert loop_thread not in {thread for thread, _ in made}


def test_a_ca_store_that_cannot_be_read_is_named_in_the_400(
    image_host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not cached: a store put right is read on the next download."""
    monkeypatch.setattr(images, "_TLS_CONTEXTS", {})
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # SSL_CERT_FILE wins, and is the one named
    with pytest.raises(InvalidRequest, match=r"the CA store \(SSL_CERT_FILE=.*missing\.pem\) could not be") as caught:
        asyncio.run(load_images([ImageRef(f"{image_host}/cat.png", "messages[0].content[1]")]))
    assert caught.value.param == "messages[0].content[1]"
    monkeypatch.setenv("SSL_CERT_FILE", ssl.get_default_verify_paths().openssl_cafile)
    assert asyncio.run(load_images([ImageRef(f"{image_host}/cat.png", "p")]))["p"].data == PNG


def test_a_remote_image_that_cannot_be_fetched_is_a_400(image_host: str) -> None:
    with pytest.raises(InvalidRequest, match="HTTP 404") as caught:
        asyncio.run(load_images([ImageRef(f"{image_host}/missing.png", "messages[0].content[2]")]))
    assert caught.value.param == "messages[0].content[2]"


def test_a_turns_images_go_to_codex_inline_as_image_inputs() -> None:
    """Not as files: Codex wraps a ``localImage`` in text naming its path, which the model would see."""
    inputs = image_inputs([Image("a", PNG, "image/png"), Image("b", PNG, "image/png", detail="high")])
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert inputs == [wire.ImageInput(url=url), wire.ImageInput(url=url, detail="high")]
    assert msgspec.json.encode(inputs[1]) == b'{"url":"' + url.encode() + b'","type":"image","detail":"high"}'


def test_a_turns_large_images_are_encoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    encode = engine_images.image_inputs

    def recorded(given: Any) -> Any:
        threads.append(threading.get_ident())
        return encode(given)

    monkeypatch.setattr(engine_images, "image_inputs", recorded)
    small, big = Image("a", PNG, "image/png"), Image("b", PNG + bytes(LARGE_IMAGES), "image/png")

    async def main() -> tuple[int, list[wire.UserInput], list[wire.UserInput]]:
        return threading.get_ident(), await turn_images([small]), await turn_images([big])

    loop_thread, on_loop, off_loop = asyncio.run(main())
    assert [thread == loop_thread for thread in threads] == [True, False]
    assert (on_loop, off_loop) == ([wire.ImageInput(url=small.data_url)], [wire.ImageInput(url=big.data_url)])


@pytest.mark.parametrize(
    ("detail", "sent", "reported"),
    [
        (None, None, False),
        ("auto", "auto", False),
        ("high", "high", False),
        ("low", None, True),
        ("original", "original", True),
    ],
)
def test_detail_sent_to_codex_and_reported(detail: str | None, sent: str | None, reported: bool) -> None:
    """``low`` is not sent (Codex would drop the image); ``original`` is, and reported: Codex sends the
    model ``high`` for a model without it (tests/integration/test_image_detail.py)."""
    ref = ImageRef(PNG_URL, "messages[0].content[1]", detail)
    assert (ref.detail, ref.detail_reported) == (sent, reported)


def test_a_remote_image_is_fetched_through_redirects(image_host: str) -> None:
    loaded = asyncio.run(load_images([ImageRef(f"{image_host}/moved", "p")]))
    assert loaded["p"].data == PNG


@pytest.mark.parametrize("path", ["/endless", "/big-declared"])
def test_a_remote_image_over_the_limit_is_a_400(image_host: str, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 64 * 1024)
    with pytest.raises(InvalidRequest, match="larger than 65536 bytes") as caught:
        asyncio.run(load_images([ImageRef(f"{image_host}{path}", "input[0].content[1]")]))
    assert caught.value.param == "input[0].content[1]"


def test_a_remote_image_that_never_comes_is_a_400_after_the_deadline(
    image_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "FETCH_TIMEOUT_S", 0.2)
    with pytest.raises(InvalidRequest, match=r"no whole answer within 0\.2 s") as caught:
        asyncio.run(load_images([ImageRef(f"{image_host}/hang", "messages[1].content[0]")]))
    assert caught.value.param == "messages[1].content[0]"


def test_one_failed_fetch_stops_the_others(image_host: str) -> None:
    """The request fails with the first failure; nothing it started goes on fetching."""

    async def load() -> set[asyncio.Task[Any]]:
        refs = [ImageRef(f"{image_host}/hang", "p0"), ImageRef(f"{image_host}/missing.png", "p1")]
        with pytest.raises(InvalidRequest, match="HTTP 404"):
            await load_images(refs)
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(load()) == set()


def test_a_remote_image_is_fetched_through_the_environments_proxy(
    image_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As openai's own client goes: a host only the proxy can reach is fetched through it."""
    monkeypatch.setenv("HTTP_PROXY", image_host)
    loaded = asyncio.run(load_images([ImageRef("http://images.invalid/cat.png", "p")]))
    assert loaded["p"].data == PNG
    assert [target for target, _ in _Images.seen] == ["http://images.invalid/cat.png"]


def test_no_proxy_hosts_are_fetched_directly(image_host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: used, it would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    loaded = asyncio.run(load_images([ImageRef(f"{image_host}/cat.png", "p")]))
    assert loaded["p"].data == PNG
    assert _Images.seen == [("/cat.png", None)]


def test_no_credentials_are_sent_with_a_fetch(image_host: str) -> None:
    """A .netrc entry for the image's host stays unused: the URL comes from a request, not the user."""
    netrc = Path(os.environ["HOME"], ".netrc")  # the test's own HOME (tests/conftest.py)
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    asyncio.run(load_images([ImageRef(f"{image_host}/cat.png", "p")]))
    assert _Images.seen == [("/cat.png", None)]
