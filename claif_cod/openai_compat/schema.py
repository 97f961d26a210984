"""OpenAI response objects as msgspec Structs: encoded straight to the JSON ``openai`` parses."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from claif_cod.engine.events import TurnUsage
from claif_cod.openai_compat.tool_calls import ChatToolCall, ToolCallDelta

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails

    @classmethod
    def from_turns(cls, usages: list[TurnUsage]) -> Usage:
        prompt = sum(u.input_tokens for u in usages)
        completion = sum(u.output_tokens for u in usages)
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=sum(u.total_tokens for u in usages) or prompt + completion,
            prompt_tokens_details=PromptTokensDetails(sum(u.cached_input_tokens for u in usages)),
            completion_tokens_details=CompletionTokensDetails(sum(u.reasoning_output_tokens for u in usages)),
        )


class AssistantMessage(msgspec.Struct):
    """As OpenAI's: ``tool_calls`` only when there are calls (a client's ``message.get("tool_calls", [])``
    must not meet a null), ``annotations`` always."""

    content: str | None
    role: Literal["assistant"] = "assistant"
    refusal: None = None
    annotations: list[Any] = []
    tool_calls: list[ChatToolCall] | msgspec.UnsetType = msgspec.UNSET


class Choice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: None = None
    interrupted: bool | msgspec.UnsetType = msgspec.UNSET
    """claif_cod's own member, present (``true``) only when the turn was interrupted (``turn.interrupt``)."""


class Delta(msgspec.Struct, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | msgspec.UnsetType | None = msgspec.UNSET
    """As OpenAI sends it: only with ``stream_options.include_usage``, ``null`` on every chunk but the last."""
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    system_fingerprint: None = None
    interrupted: bool | msgspec.UnsetType = msgspec.UNSET
    """claif_cod's own member, present (``true``) only on the chunk with the ``finish_reason`` of a choice whose
    turn was interrupted: what ``StreamDone.interrupted`` says on the socket, for SSE clients (``serve --http``)."""


class Model(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct):
    data: list[Model]
    object: Literal["list"] = "list"
