"""JSON Schema of the protocol, generated from the message structs so it can't drift from them.

``python -m claif_cod.protocol.schema > docs/protocol.schema.json`` regenerates the committed copy;
``tests/protocol/test_schema_in_sync.py`` fails when it is stale.

The protocol passes OpenAI objects through as raw JSON; their schema (``params.body``, the
non-streamed chat result) comes from the structs ``claif_cod.openai_compat`` reads and writes them
with. Only this generator looks there: the protocol package itself depends on msgspec alone.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import msgspec

from claif_cod.openai_compat.request import ChatRequest
from claif_cod.openai_compat.schema import ChatCompletion

from .framing import DEFAULT_MAX_FRAME
from .messages import (
    HELLO_TIMEOUT_S,
    METHODS,
    PROTOCOL_VERSION,
    ErrorResponse,
    Notification,
    Request,
    Response,
)
from .params import StreamDone

__all__ = ["main", "protocol_schema", "render_schema"]

_REF_TEMPLATE = "#/$defs/{name}"
_RENAMED = {
    "claif_cod.protocol.turn_events.Usage": "Usage",
    "claif_cod.openai_compat.schema.Usage": "CompletionUsage",
}
"""msgspec qualifies the two ``Usage`` structs' names; the OpenAI one gets OpenAI's name."""


def protocol_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) matching any one frame body, plus ``x-methods`` naming each method's
    params and result definitions."""
    specs = list(METHODS.values())
    envelope_types: list[Any] = [Request, Notification, Response[msgspec.Raw], ErrorResponse]
    result_types = [spec.result_type for spec in specs if spec.result_type is not None]
    all_refs, defs = msgspec.json.schema_components(
        [
            *envelope_types,
            *(spec.params_type for spec in specs),
            *result_types,
            StreamDone,
            ChatCompletion,
            ChatRequest,
        ],
        ref_template=_REF_TEMPLATE,
    )
    defs = _renamed(defs)
    refs = iter(all_refs)
    envelopes = [next(refs) for _ in envelope_types]
    methods: dict[str, dict[str, Any]] = {
        spec.name: {"kind": "notification" if spec.is_notification else "request", "params": next(refs)}
        for spec in specs
    }
    for spec in specs:
        if spec.result_type is not None:
            methods[spec.name]["result"] = next(refs)
    stream_done, completion, chat_request = next(refs), next(refs), next(refs)
    for spec in specs:
        if spec.result_type is msgspec.Raw:  # an OpenAI object passed through, or StreamDone when streamed
            verbatim = {"description": "the OpenAI object, verbatim (non-streaming)"}
            chat = spec.name == "chat.completions.create"
            methods[spec.name]["result"] = {"anyOf": [completion if chat else verbatim, stream_done]}
    defs["ChatCompletion"]["description"] = (
        "Result of a non-streaming chat.completions.create: OpenAI's chat.completion object, plus "
        "`interrupted` (true) when turn.interrupt stopped the turn."
    )
    defs["ChatRequest"]["description"] = (
        "An OpenAI chat.completions request body. The members listed are the ones claif_cod acts on; "
        "any other is accepted and reported as ignored, or refused in strict mode (docs/parameters.md)."
    )
    body = defs["ChatCompletionsCreateParams"]["properties"]["body"]
    defs["ChatCompletionsCreateParams"]["properties"]["body"] = {**body, **chat_request}
    _require_jsonrpc(defs)
    _clean_descriptions(defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "claif-codd protocol",
        "description": (
            f"One frame body of protocol version {PROTOCOL_VERSION}: a JSON-RPC 2.0 message. Frames are a "
            f"4-byte big-endian length (at most {DEFAULT_MAX_FRAME} bytes) followed by the body; the "
            f"first message must be `hello`, within {HELLO_TIMEOUT_S:g} s. See docs/protocol.md."
        ),
        "oneOf": envelopes,
        "x-methods": methods,
        "$defs": defs,
    }


def _renamed(defs: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(defs)
    for old, new in _RENAMED.items():
        text = text.replace(f'"{_REF_TEMPLATE.format(name=old)}"', f'"{_REF_TEMPLATE.format(name=new)}"')
    return {_RENAMED.get(name, name): definition for name, definition in json.loads(text).items()}


def _require_jsonrpc(defs: dict[str, Any]) -> None:
    """msgspec marks ``jsonrpc`` optional because it has a constructor default; on the wire it is
    required, and the codec rejects a message without it."""
    for definition in defs.values():
        properties = definition.get("properties", {})
        if "jsonrpc" in properties:
            properties["jsonrpc"].pop("default", None)
            if "jsonrpc" not in definition["required"]:
                definition["required"].insert(0, "jsonrpc")


def _clean_descriptions(defs: dict[str, Any]) -> None:
    """Docstrings become descriptions; msgspec < 0.23 keeps their indentation and 0.23 cleans it.
    Cleaning them here makes the schema the same text whichever msgspec generated it."""
    for definition in defs.values():
        if "description" in definition:
            definition["description"] = inspect.cleandoc(definition["description"])


def render_schema() -> str:
    """The exact text of ``docs/protocol.schema.json``."""
    return json.dumps(protocol_schema(), indent=2) + "\n"


def main() -> None:
    sys.stdout.write(render_schema())


if __name__ == "__main__":
    main()
