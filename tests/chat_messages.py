"""Chat messages as tests write them: plain dicts, as most callers pass them to ``create()``."""

from __future__ import annotations

from openai.types.chat import ChatCompletionUserMessageParam


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}
