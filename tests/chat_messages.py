"""Chat messages as tests write them: plain dicts, as most callers pass them to ``create()``."""

from __future__ import annotations

from openai.types.chat import ChatCompletionUserMessageParam


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}


def patch_prompt(*lines: str) -> str:
    """A prompt that makes the offline model run ``apply_patch`` (the patch's LINES) through Codex's
    shell tool, which Codex takes over as a file change, asked about first under ``untrusted``."""
    body = "\n".join(["*** Begin Patch", *lines, "*** End Patch"])
    return f"[[tool:apply_patch <<'EOF'\n{body}\nEOF]] go"
