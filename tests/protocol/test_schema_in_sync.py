"""The committed docs must match the code: the JSON Schema, every example message, the hex dump."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from claif_cod.protocol import (
    METHODS,
    ErrorCode,
    ErrorResponse,
    HelloRequest,
    ProtocolError,
    Response,
    StreamDone,
    decode,
    decode_result,
    encode,
    encode_frame,
)
from claif_cod.protocol.schema import protocol_schema, render_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"
PROTOCOL_MD = (DOCS / "protocol.md").read_text(encoding="utf-8")
REGENERATE = "python -m claif_cod.protocol.schema > docs/protocol.schema.json"

# ```json message [hello-frame] [result=<method>|result=stream|error=<method>]
# (``error=``: a method whose documented answer is an error, such as ``responses.cancel``)
BLOCK = re.compile(r"^```(\w+)((?: [\w.=$/-]+)*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str, label: str) -> list[tuple[set[str], str]]:
    found = []
    for lang, info, text in BLOCK.findall(PROTOCOL_MD):
        labels = set(info.split())
        if lang == language and label in labels:
            found.append((labels, text))
    return found


MESSAGE_BLOCKS = blocks("json", "message")


def block_id(text: str) -> str:
    member = json.loads(text)
    kind = member.get("method") or ("error" if "error" in member else "result")
    return f"{kind}#{member.get('id', '-')}"


def hexdump(data: bytes) -> str:
    """``xxd``-style dump, as shown in docs/protocol.md."""
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        words = " ".join(row[i : i + 2].hex() for i in range(0, len(row), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:08x}: {words:<39}  {text}")
    return "\n".join(lines) + "\n"


def test_committed_schema_matches_the_code() -> None:
    committed = (DOCS / "protocol.schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), f"docs/protocol.schema.json is stale; regenerate it with: {REGENERATE}"


def test_schema_covers_every_method() -> None:
    schema = protocol_schema()
    assert set(schema["x-methods"]) == set(METHODS)
    for name, spec in METHODS.items():
        assert schema["x-methods"][name]["params"] == {"$ref": f"#/$defs/{spec.params_type.__name__}"}
    assert "jsonrpc" in schema["$defs"]["HelloRequest"]["required"]


def test_docs_have_message_examples() -> None:
    assert len(MESSAGE_BLOCKS) >= 20


@pytest.mark.parametrize(("labels", "text"), MESSAGE_BLOCKS, ids=[block_id(text) for _, text in MESSAGE_BLOCKS])
def test_doc_example_decodes(labels: set[str], text: str) -> None:
    message = decode(text.encode())
    for label in labels - {"message", "hello-frame"}:
        if label.startswith("error="):
            assert isinstance(message, ErrorResponse) and label.removeprefix("error=") in METHODS
            continue
        assert isinstance(message, Response)
        method = label.removeprefix("result=")
        result_type = StreamDone if method == "stream" else METHODS[method].result_type
        assert result_type is not None
        decode_result(message.result, result_type)
    if isinstance(message, ErrorResponse):
        assert ProtocolError.from_error(message.error).default_code == message.error.code


def test_docs_show_every_method_and_every_result() -> None:
    messages = [decode(text.encode()) for _, text in MESSAGE_BLOCKS]
    shown = {str(type(m).__struct_config__.tag) for m in messages if not isinstance(m, (Response, ErrorResponse))}
    assert shown == set(METHODS)
    results = {label.split("=", 1)[1] for labels, _ in MESSAGE_BLOCKS for label in labels if "=" in label}
    assert results >= {name for name, spec in METHODS.items() if not spec.is_notification}


def test_docs_error_table_lists_every_code() -> None:
    for code in ErrorCode:
        assert re.search(rf"^\| {code.value} \| {code.name} \|", PROTOCOL_MD, re.MULTILINE), code.name


def test_hello_frame_hex_dump_is_exact() -> None:
    ((_, source),) = blocks("json", "hello-frame")
    ((_, dump),) = blocks("text", "hello-frame")
    hello = decode(source.encode())
    assert isinstance(hello, HelloRequest)
    frame = encode_frame(encode(hello))
    assert dump == hexdump(frame)
    assert f"{len(frame) - 4}-byte body" in PROTOCOL_MD
    assert f"frame is {len(frame)} bytes" in PROTOCOL_MD


def test_doc_chat_examples_match_the_openai_structs_the_schema_names() -> None:
    """``params.body`` and the non-streamed result are typed in the schema by these structs."""
    from claif_cod.openai_compat.request import ChatRequest
    from claif_cod.openai_compat.schema import ChatCompletion

    chats = [decode(text.encode()) for _, text in MESSAGE_BLOCKS if '"chat.completions.create"' in text]
    assert chats
    for request in chats:
        msgspec.json.decode(bytes(request.params.body), type=ChatRequest)  # type: ignore[attr-defined]
    [(_, result)] = [(labels, text) for labels, text in MESSAGE_BLOCKS if "result=chat.completions.create" in labels]
    response = decode(result.encode())
    assert isinstance(response, Response)
    msgspec.json.decode(bytes(response.result), type=ChatCompletion)
    schema = protocol_schema()
    assert schema["$defs"]["ChatCompletionsCreateParams"]["properties"]["body"]["$ref"] == "#/$defs/ChatRequest"
    assert {"$ref": "#/$defs/ChatCompletion"} in schema["x-methods"]["chat.completions.create"]["result"]["anyOf"]
    assert "interrupted" in schema["$defs"]["ChatCompletion"]["properties"]
    assert "interrupted" in schema["$defs"]["StreamDone"]["properties"]
