"""Reading an OpenAI ``chat.completions`` request body and deciding what each parameter becomes.

Codex takes a model, a reasoning effort and an output schema, and nothing else; every other
parameter is either honoured by the wrapper itself or reported (see docs/parameters.md).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from claif_cod.engine.conversations import Conversation
from claif_cod.engine.errors import InvalidRequest, ReadingBody, missing
from claif_cod.engine.tools import ThreadTools
from claif_cod.openai_compat.chat_history import (
    CACHE_BREAKPOINT,
    REPORTED_FIELDS,
    ChatMessage,
    HistoryMemo,
    Messages,
    build_conversation,
    reported_fields,
)
from claif_cod.openai_compat.images import REPORTED_DETAILS, ImageRef, load_images
from claif_cod.openai_compat.light_parse import CHAT_DEFAULTS, LightParse, top_level, unhonoured
from claif_cod.openai_compat.ranges import EFFORTS, check_bound, check_enums, check_one_of, check_ranges
from claif_cod.openai_compat.schema_limits import check_schema
from claif_cod.openai_compat.tool_calls import (
    ChatTool,
    check_chat_tools,
    check_name,
    check_not_empty,
    check_tool_timeout,
    thread_tools,
)
from claif_cod.unreadable import UNREADABLE

MAX_N = 16
MAX_STOP = 4


class StreamOptions(msgspec.Struct):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class JsonSchemaFormat(msgspec.Struct):
    name: str
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(msgspec.Struct):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatRequest(msgspec.Struct):
    """The parameters claif_cod acts on, then the types of those it does not act on; which of those a
    request holds is read from the raw body (and reported, unless they have no effect)."""

    messages: list[ChatMessage]
    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    store: bool | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None
    session_id: str | None = None
    strict: bool | None = None
    tools: list[ChatTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    builtin_tools: bool | None = None
    """claif_cod's own: False offers the model only the caller's tools (no shell, patch, web search)."""
    tool_timeout: float | None = None
    """claif_cod's own: seconds a turn may wait for the results of the tool calls it returned."""
    # Not acted on (reported, or without effect), but typed as OpenAI types them: a value of the
    # wrong type is refused (``invalid_type``) as OpenAI refuses it, not reported as if well formed.
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, int] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    verbosity: str | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    safety_identifier: str | None = None

    @property
    def choices(self) -> int:
        """``n``, whose null is OpenAI's default (as every optional parameter's)."""
        return 1 if self.n is None else self.n


HONOURED = frozenset(
    {
        "messages",
        "model",
        "stream",
        "stream_options",
        "store",
        "n",
        "stop",
        "response_format",
        "reasoning_effort",
        "session_id",
        "strict",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "builtin_tools",
        "tool_timeout",
    }
)
NO_EFFECT = frozenset({"user", "metadata", "safety_identifier"})
"""Accepted everywhere: they never change the answer, so nothing is lost by not sending them."""
IGNORED = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "functions",
        "function_call",
        "modalities",
        "audio",
        "prediction",
        "verbosity",
        "web_search_options",
        "service_tier",
        "prompt_cache_key",
    }
)
"""Known OpenAI parameters that Codex cannot take and the wrapper cannot emulate."""


class ParsedRequest(msgspec.Struct):
    request: ChatRequest
    conversation: Conversation
    stop: tuple[str, ...]
    output_schema: dict[str, Any] | None
    ignored: tuple[str, ...]
    tools: ThreadTools
    image_refs: list[ImageRef]
    """Image parts still to be loaded (:meth:`with_images` puts them into the conversation)."""

    async def with_images(self) -> None:
        if self.image_refs:
            self.conversation = build_conversation(self.request.messages, await load_images(self.image_refs))


_decoder = msgspec.json.Decoder(ChatRequest)


class _MessageFlags(msgspec.Struct):
    """A message as :func:`stream_and_ignored` reads it: what :func:`reported_fields` looks at."""

    content: str | list[Any] | None = None
    name: Any = None
    refusal: Any = None
    audio: Any = None
    function_call: Any = None


_flags = msgspec.json.Decoder(list[_MessageFlags])
_MAY_REPORT = re.compile(
    rb'"(?:%s|%s|detail)"' % (b"|".join(f.encode() for f in REPORTED_FIELDS), CACHE_BREAKPOINT.encode())
)
"""Keys without which a history's JSON holds nothing reported (one scan; most histories have none)."""


class _Reported(msgspec.Struct):
    """What ``ignored`` depends on besides the parameter names, without the messages."""

    stream: bool | None = False
    stream_options: StreamOptions | None = None
    store: bool | None = None
    response_format: ResponseFormat | None = None
    tools: list[ChatTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    builtin_tools: bool | None = None


_reported = LightParse(_Reported)


def stream_and_ignored(body: bytes) -> tuple[bool, tuple[str, ...]]:
    """``stream`` and what :func:`parse_chat_request` would report as ignored, without building the
    history (the messages are read only when a key that may be reported is in them): what a daemon
    client needs (the daemon parses and validates the request itself)."""
    try:
        values, reported = _reported(body)
    except UNREADABLE:
        return False, ()  # the daemon reports the problem
    ignored = unhonoured(values, HONOURED, NO_EFFECT, CHAT_DEFAULTS)
    try:
        _output_schema(reported.response_format, ignored)
        thread_tools(
            reported.tools, reported.tool_choice, reported.parallel_tool_calls, reported.builtin_tools, ignored
        )
    except InvalidRequest:
        return bool(reported.stream), ()  # the daemon reports the problem
    _reported_options(reported, ignored)
    messages = values.get("messages")
    if messages is not None and _MAY_REPORT.search(memoryview(messages)):
        try:
            ignored += _message_reports(_flags.decode(messages))
        except UNREADABLE:
            return bool(reported.stream), ()  # the daemon reports the problem
    return bool(reported.stream), tuple(sorted(ignored))


IMAGE_DETAIL = "image_url.detail"
"""Reported for an image part with ``detail`` ``low`` or ``original`` (see ``images.DETAILS``)."""


def _message_reports(messages: list[_MessageFlags]) -> set[str]:
    """What :func:`parse_chat_request` reports of the messages, read without building their history."""
    reported: set[str] = set()
    for message in messages:
        reported_fields(message, reported)
        if type(message.content) is list and any(_image_detail(part) in REPORTED_DETAILS for part in message.content):
            reported.add(IMAGE_DETAIL)
    return reported


def _image_detail(part: object) -> object:
    image_url = part.get("image_url") if type(part) is dict else None
    return image_url.get("detail") if type(image_url) is dict else None


def _reported_options(request: ChatRequest | _Reported, ignored: list[str]) -> None:
    """``store`` asks OpenAI to keep the completion (claif_cod keeps none: ``chat.completions.retrieve``
    is a 404); ``include_obfuscation`` for padding claif_cod never adds."""
    if request.store:
        ignored.append("store")
    if request.stream_options is not None and request.stream_options.include_obfuscation:
        ignored.append("stream_options.include_obfuscation")


_OTHER_FIELDS = {name: msgspec.json.encode(name) + b":" for name in ChatRequest.__struct_fields__ if name != "messages"}


def _decoded(body: bytes, memo: HistoryMemo | None) -> tuple[dict[str, msgspec.Raw], ChatRequest, Messages | None]:
    """The body's parameters, undecoded, and the request; with a ``memo``, the messages are decoded
    apart from the other parameters, each only once (see :class:`HistoryMemo`)."""
    values = top_level.decode(body)
    array = values.get("messages")
    if memo is None or array is None:
        return values, _decoder.decode(body), None
    fields = _OTHER_FIELDS
    others = b"".join(fields[name] + value + b"," for name, value in values.items() if name in fields)
    request = _decoder.decode(b"{" + others + b'"messages":[]}')
    messages = memo.messages(bytes(array))
    request.messages = messages.decoded
    return values, request, messages


def parse_chat_request(
    body: bytes, *, default_model: str | None, strict: bool, memo: HistoryMemo | None = None
) -> ParsedRequest:
    """``memo``: what earlier requests' messages were read into, for a request that re-sends them."""
    with ReadingBody(body):
        try:
            values, request, messages = _decoded(body, memo)
        except msgspec.DecodeError:
            if memo is None:
                raise
            values, request, messages = _decoded(body, None)  # the error, worded as for the whole body
    if request.model is None:
        request.model = default_model
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    check_ranges(request)
    check_enums(request)
    check_chat_tools(request.tools, request.tool_choice, request.parallel_tool_calls)
    check_not_empty(request.reasoning_effort, "reasoning_effort")  # else taken as no effort asked for
    check_one_of(request.reasoning_effort, "reasoning_effort", EFFORTS)
    strict = strict if request.strict is None else request.strict

    ignored = unhonoured(values, HONOURED, NO_EFFECT, CHAT_DEFAULTS)
    output_schema = _output_schema(request.response_format, ignored)
    _reported_options(request, ignored)
    tools = thread_tools(
        request.tools, request.tool_choice, request.parallel_tool_calls, request.builtin_tools, ignored
    )
    refs: list[ImageRef] = []
    reported: set[str] = set()
    if memo is not None and messages is not None:
        conversation = memo.conversation(messages, refs, reported)
    else:
        conversation = build_conversation(request.messages, refs=refs, reported=reported)
    ignored += reported
    if any(ref.detail_reported for ref in refs):
        ignored.append(IMAGE_DETAIL)
    if strict and ignored:
        names = ", ".join(sorted(ignored))
        raise InvalidRequest(
            f"strict mode: Codex cannot honour {names} (see docs/parameters.md)", param=sorted(ignored)[0]
        )
    if request.choices > MAX_N:  # (below 1: check_ranges) OpenAI's bound is 128; each choice is a Codex turn
        check_bound("n", request.choices, 1, MAX_N, "integer")
    if request.choices > 1 and request.session_id is not None:
        raise InvalidRequest("n > 1 cannot be combined with a named session", param="n")
    if tools.enabled and request.choices > 1:
        raise InvalidRequest("n > 1 cannot be combined with tools", param="n")
    if request.session_id is not None:
        no_session(tools)
    check_tool_timeout(request.tool_timeout)
    stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
    if len(stop) > MAX_STOP:
        message = (
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, "
            f"but got an array with length {len(stop)} instead."
        )
        raise InvalidRequest(message, param="stop", code="array_above_max_length")
    if any(not s for s in stop):
        raise InvalidRequest("stop sequences must be non-empty strings", param="stop")
    return ParsedRequest(
        request=request,
        conversation=conversation,
        stop=stop,
        output_schema=output_schema,
        ignored=tuple(sorted(ignored)),
        tools=tools,
        image_refs=refs,
    )


def no_session(tools: ThreadTools) -> None:
    """A named session's thread is resumed across restarts, which would lose what caller tools need."""
    if tools.enabled:
        raise InvalidRequest("tools cannot be combined with a named session", param="tools")
    if not tools.builtin:
        raise InvalidRequest("builtin_tools=false cannot be combined with a named session", param="builtin_tools")


def _output_schema(fmt: ResponseFormat | None, ignored: list[str]) -> dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        ignored.append("response_format.json_object")
        return None
    if fmt.json_schema is None:
        raise missing("response_format.json_schema")
    check_name(fmt.json_schema.name, "response_format.json_schema.name")
    if fmt.json_schema.schema is None:
        raise InvalidRequest("response_format json_schema needs json_schema.schema", param="response_format")
    check_schema(fmt.json_schema.schema, "response_format.json_schema.schema")
    if fmt.json_schema.strict is False:
        ignored.append("response_format.json_schema.strict")  # Codex applies every schema strictly
    if fmt.json_schema.description is not None:
        ignored.append("response_format.json_schema.description")  # Codex takes the schema alone
    return fmt.json_schema.schema
