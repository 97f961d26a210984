"""Reading an OpenAI ``responses.create`` body: its input (items read by :mod:`.responses_input`),
instructions and parameter policy.

Like the chat parser, every parameter is honoured or reported (docs/parameters.md, "Responses").
``input`` becomes the turn's prompt (the last user message, with its images) plus the items
before it, which are injected into the thread as history.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from claif_cod.engine.conversations import HistoryItem, Message
from claif_cod.engine.errors import InvalidRequest, ReadingBody, missing
from claif_cod.engine.images import Image
from claif_cod.engine.tools import ThreadTools, ToolResult
from claif_cod.openai_compat.chat_history import CACHE_BREAKPOINT
from claif_cod.openai_compat.images import ImageRef, load_images
from claif_cod.openai_compat.light_parse import RESPONSES_DEFAULTS, LightParse, top_level, unhonoured
from claif_cod.openai_compat.ranges import EFFORTS, ENUMS, check_enums, check_include, check_one_of, check_ranges
from claif_cod.openai_compat.responses_calls import check_calls
from claif_cod.openai_compat.responses_input import item_fields, read_items
from claif_cod.openai_compat.schema_limits import check_schema
from claif_cod.openai_compat.tool_calls import (
    ChatTool,
    FunctionDef,
    check_name,
    check_not_empty,
    check_responses_tool_choice,
    check_tool_timeout,
    thread_tools,
)
from claif_cod.unreadable import UNREADABLE


class TextFormat(msgspec.Struct):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class TextConfig(msgspec.Struct):
    format: TextFormat | None = None
    verbosity: str | None = None


class ReasoningConfig(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None
    mode: str | None = None
    context: str | None = None


class FunctionTool(msgspec.Struct):
    """A Responses tool: function tools are flat (``name`` beside ``type``), unlike chat's."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    defer_loading: bool | None = None
    allowed_callers: list[str] | None = None
    output_schema: dict[str, Any] | None = None


TOOL_FIELDS = ("defer_loading", "allowed_callers", "output_schema")
"""A function tool's fields Codex's dynamic tools lack: reported as ``tools.<field>`` when given."""


class ConversationRef(msgspec.Struct):
    id: str


class ResponsesRequest(msgspec.Struct):
    """The parameters claif_cod acts on, then the types of those it does not act on; which of those a
    request holds is read from the raw body (and reported, unless they have no effect)."""

    input: str | list[dict[str, Any]]
    model: str | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    stream: bool | None = False
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = True
    strict: bool | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    builtin_tools: bool | None = None
    tool_timeout: float | None = None
    background: bool | None = False
    # Not acted on (reported, or without effect), but typed as OpenAI types them: a value of the
    # wrong type is refused (``invalid_type``) as OpenAI refuses it, not reported as if well formed.
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    truncation: str | None = None
    include: list[str] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    user: str | None = None
    safety_identifier: str | None = None

    @property
    def stored(self) -> bool:
        """``store``, whose null is OpenAI's default, true (as every optional parameter's)."""
        return self.store is not False


HONOURED = frozenset(
    {
        "input",
        "model",
        "instructions",
        "previous_response_id",
        "conversation",
        "stream",
        "text",
        "reasoning",
        "metadata",
        "store",
        "strict",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "builtin_tools",
        "tool_timeout",
        "background",
    }
)
SUMMARIES = ("auto", "concise", "detailed", "none")
"""``reasoning.summary``: OpenAI's values, and Codex's ``none`` (which undoes an earlier turn's)."""
NO_EFFECT = frozenset({"user", "safety_identifier"})
"""Accepted: they never change the answer."""


class ParsedResponses(msgspec.Struct):
    request: ResponsesRequest
    instructions: str | None
    """``instructions`` plus the input's system/developer messages: the thread's developer instructions."""
    history: tuple[HistoryItem, ...]
    prompt: str | None
    """None when the input ends with ``function_call_output`` items (the turn answers those results) or
    with an assistant message (the model speaks again)."""
    prompt_images: tuple[Image, ...]
    tools: ThreadTools
    output_schema: dict[str, Any] | None
    ignored: tuple[str, ...]
    image_refs: list[ImageRef]
    image_owner: list[int]
    """For each image ref, the index of the user message or tool result (in history + prompt) that holds it."""

    def pending_results(self) -> tuple[ToolResult, ...]:
        """The ``function_call_output`` items that end the input (empty when it ends with a user message)."""
        tail: list[ToolResult] = []
        for item in reversed(self.history if self.prompt is None else ()):
            if not isinstance(item, ToolResult):
                break
            tail.insert(0, item)
        return tuple(tail)

    async def with_images(self) -> None:
        """Fetch/decode the image parts and attach them to their messages and tool results."""
        if not self.image_refs:
            return
        loaded = await load_images(self.image_refs)
        by_item: dict[int, list[Image]] = {}
        for ref, owner in zip(self.image_refs, self.image_owner, strict=True):
            by_item.setdefault(owner, []).append(loaded[ref.where])
        self.history = tuple(
            msgspec.structs.replace(item, images=tuple(by_item[i])) if i in by_item else item
            for i, item in enumerate(self.history)
        )
        self.prompt_images = tuple(by_item.get(len(self.history), ()))


_decoder = msgspec.json.Decoder(ResponsesRequest)

ConversationItems = Callable[[str], list[dict[str, Any]]]
"""A conversation's items by its id, oldest first (raises when there is no such conversation)."""


def conversation_id(request: ResponsesRequest) -> str | None:
    conversation = request.conversation
    return conversation.id if isinstance(conversation, ConversationRef) else conversation


def parse_responses_request(
    body: bytes,
    *,
    default_model: str | None,
    strict: bool,
    conversations: ConversationItems | None = None,
    client_options: tuple[str, ...] = (),
) -> ParsedResponses:
    """With ``conversation``, the request's input follows that conversation's items (from
    ``conversations``), as if the caller had sent them all (without ``conversations``, what a daemon
    client parses for the report alone, they are neither looked up nor the calls checked against
    them).  ``client_options``: settings of the
    caller's client that Responses does not apply (a client's ``session_id``), reported as the
    body's are."""
    with ReadingBody(body):
        request = _decoder.decode(body)
        raw = top_level.decode(body)
    if request.model is None:
        request.model = default_model
    if request.background:
        message = "background responses are not supported by claif_cod: a response runs while its request waits"
        raise InvalidRequest(message, param="background")
    check_ranges(request)
    check_enums(request)
    check_include(request.include)
    check_one_of(request.text.verbosity if request.text else None, "text.verbosity", ENUMS["verbosity"])
    check_one_of(request.reasoning.summary if request.reasoning else None, "reasoning.summary", SUMMARIES)
    check_not_empty(request.reasoning.effort if request.reasoning else None, "reasoning.effort")
    check_one_of(request.reasoning.effort if request.reasoning else None, "reasoning.effort", EFFORTS)
    strict = strict if request.strict is None else request.strict
    ignored = unhonoured(raw, HONOURED, NO_EFFECT, RESPONSES_DEFAULTS)
    ignored += client_options
    output_schema = _output_schema(request.text, ignored)
    _reasoning(request.reasoning, ignored)
    earlier = _earlier(request, conversations)
    instructions, items, refs, owners = read_items(request.input, ignored, earlier=earlier or [])
    # else checked against that response's calls as it starts, or by the daemon, which has the conversation
    if request.previous_response_id is None and earlier is not None:
        check_calls(items)
    tools = _thread_tools(request, ignored)
    check_tool_timeout(request.tool_timeout)
    if strict and ignored:
        names = ", ".join(sorted(ignored))
        raise InvalidRequest(
            f"strict mode: Codex cannot honour {names} (see docs/parameters.md)", param=sorted(ignored)[0]
        )
    if request.instructions:
        instructions.insert(0, request.instructions)
    last = items[-1] if items else None
    # Results to answer; the model's own message, after which it speaks again; or instructions alone
    # (system or developer messages, as chat answers them): a turn with no new input
    no_prompt = (
        isinstance(last, ToolResult)
        or (isinstance(last, Message) and last.role == "assistant")
        or (last is None and bool(instructions))
    )
    if not no_prompt and not (isinstance(last, Message) and last.role == "user"):
        raise InvalidRequest(
            "input must end with a user or assistant message, or function_call_output items", param="input"
        )
    return ParsedResponses(
        request=request,
        instructions="\n\n".join(instructions) if instructions else None,
        history=tuple(items) if no_prompt else tuple(items[:-1]),
        prompt=None if no_prompt or not isinstance(last, Message) else last.text,
        prompt_images=(),
        tools=tools,
        output_schema=output_schema,
        ignored=tuple(sorted(set(ignored))),
        image_refs=refs,
        image_owner=owners,
    )


class _ItemType(msgspec.Struct):
    type: str = "message"
    phase: Any = None
    name: Any = None
    namespace: Any = None
    caller: Any = None


class _Reported(msgspec.Struct):
    """What ``ignored`` depends on besides the parameter names: an input item's type, not its content."""

    input: str | list[_ItemType] = ""
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    builtin_tools: bool | None = None


_reported = LightParse(_Reported)


def responses_ignored(body: bytes) -> tuple[str, ...]:
    """What :func:`parse_responses_request` would report as ignored, without building the input's
    history (~0.4 ms for 200 items): what a daemon client needs (the daemon parses and validates
    the request itself, and reports any problem)."""
    if _WHOLE_PARSE.search(body):  # rare: an image part's detail, a refusal, a cache breakpoint
        try:
            return parse_responses_request(body, default_model=None, strict=False).ignored
        except InvalidRequest:
            return ()
    try:
        values, reported = _reported(body)
    except UNREADABLE:
        return ()
    ignored = unhonoured(values, HONOURED, NO_EFFECT, RESPONSES_DEFAULTS)
    try:
        _output_schema(reported.text, ignored)
        _thread_tools(reported, ignored)
    except InvalidRequest:
        return ()
    _reasoning(reported.reasoning, ignored)
    if not isinstance(reported.input, str):
        for item in reported.input:
            if item.type == "reasoning":
                ignored.append("input.reasoning")
            elif not (item.phase is None and item.namespace is None and item.caller is None and item.name is None):
                item_fields(item.type, functools.partial(getattr, item), ignored)
    return tuple(sorted(set(ignored)))


_WHOLE_PARSE = re.compile(b'"(?:detail|refusal|%s)"' % CACHE_BREAKPOINT.encode())
"""Keys that only the whole parse tells about (one scan; most inputs have none)."""


def _reasoning(reasoning: ReasoningConfig | None, ignored: list[str]) -> None:
    """Codex takes an effort and a summary: not another mode, nor which earlier reasoning to reuse."""
    if reasoning is not None:
        fields = ("generate_summary", "mode", "context")
        ignored += (f"reasoning.{name}" for name in fields if getattr(reasoning, name) is not None)


def _thread_tools(request: ResponsesRequest | _Reported, ignored: list[str]) -> ThreadTools:
    ignored += (f"tools.{field}" for tool in request.tools or [] for field in TOOL_FIELDS if getattr(tool, field))
    for index, tool in enumerate(request.tools or []):
        if tool.type == "function" and tool.name is None:  # e.g. chat's {"type": "function", "function": {...}}
            raise missing(f"tools[{index}].name")
    chat_tools = [
        ChatTool(
            t.type, FunctionDef(t.name or "", t.description, t.parameters, t.strict) if t.type == "function" else None
        )
        for t in request.tools or []
    ]
    tool_choice, parallel, builtin = request.tool_choice, request.parallel_tool_calls, request.builtin_tools
    check_responses_tool_choice(tool_choice, {tool.function.name for tool in chat_tools if tool.function})
    return thread_tools(chat_tools, tool_choice, parallel, builtin, ignored, name_field="name")


def _output_schema(text: TextConfig | None, ignored: list[str]) -> dict[str, Any] | None:
    if text is None:
        return None
    if text.verbosity is not None:  # Codex asks the model for its catalog's verbosity, whatever this says
        ignored.append("text.verbosity")
    fmt = text.format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        ignored.append("text.format.json_object")
        return None
    if fmt.name is None:
        raise missing("text.format.name")
    check_name(fmt.name, "text.format.name")
    if fmt.schema is None:
        raise missing("text.format.schema")
    check_schema(fmt.schema, "text.format.schema")
    if fmt.strict is False:
        ignored.append("text.format.strict")  # Codex applies every schema strictly
    if fmt.description is not None:
        ignored.append("text.format.description")  # Codex takes the schema alone
    return fmt.schema


def _earlier(request: ResponsesRequest, conversations: ConversationItems | None) -> list[dict[str, Any]] | None:
    """The items of the request's conversation, which the input follows; None when the request names
    one and ``conversations`` is None: a daemon client, which only wants what the request's own input
    reports (the daemon looks the items up and checks the request against them)."""
    named = conversation_id(request)
    if named is None:
        return []
    if request.previous_response_id is not None:
        message = (
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'."
        )
        raise InvalidRequest(message, param="conversation")
    return None if conversations is None else conversations(named)
