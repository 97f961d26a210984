"""What the offline model received: recorded requests and helpers that read them like a model would.

Tests assert on these to prove what reached the model (the user's words, instructions, the tools
it was offered, images, tool calls and their outputs), past the context Codex adds on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


def texts(content: Any) -> list[str]:
    """Text parts of message content, tool output or a reasoning summary (a string or ``{"text"}`` parts)."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def visible_text(content: Any) -> str:
    """A message's text without Codex's ``<tagged>`` context parts (environment, permissions, skills)."""
    return "\n".join(t for t in texts(content) if not t.startswith("<"))


def item_words(item: Any) -> list[str]:
    """Every word an input item contributes to the prompt, Codex's own context included."""
    if not isinstance(item, dict):
        return []
    kind = item.get("type")
    if kind == "function_call":
        parts = [str(item.get("arguments", ""))]
    elif kind == "function_call_output":
        parts = texts(item.get("output"))
    elif kind == "reasoning":
        parts = texts(item.get("summary"))
    else:
        parts = texts(item.get("content"))
    return [word for text in parts for word in text.split()]


@dataclass(frozen=True)
class FunctionCall:
    """A ``function_call`` item in the model's input: a call the model made earlier."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class FunctionOutput:
    """A ``function_call_output`` item: what a tool answered to call ``call_id``."""

    call_id: str
    output: str


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it, with helpers that see past Codex's preamble."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def _items(self) -> list[dict[str, Any]]:
        return [item for item in self.body.get("input") or [] if isinstance(item, dict)]

    def _message_items(self) -> Iterator[tuple[str, str]]:
        for item in self._items():
            if item.get("type") == "message":
                yield str(item.get("role", "")), visible_text(item.get("content"))

    def user_texts(self) -> list[str]:
        """Texts of the real user messages; Codex's ``<environment_context>``-style ones are skipped."""
        return [text for role, text in self._message_items() if role == "user" and text]

    def developer_texts(self) -> list[str]:
        """Texts of developer messages: the model's base instructions first, then any extra instructions."""
        return [text for role, text in self._message_items() if role == "developer" and text]

    def messages(self) -> list[tuple[str, str]]:
        """``(role, text)`` of the conversation after Codex's leading developer/context preamble."""
        items = [(role, text) for role, text in self._message_items() if text]
        start = next((i for i, (role, _) in enumerate(items) if role != "developer"), len(items))
        return items[start:]

    def tool_names(self) -> list[str]:
        """Names of the tools offered to the model, in order; a namespace's tools as ``namespace.name``.

        Tools without a name (``web_search``) are listed by their type."""
        names: list[str] = []
        for tool in self.body.get("tools") or []:
            if not isinstance(tool, dict):
                continue
            if tool.get("type") == "namespace":
                names += [f"{tool.get('name')}.{t.get('name')}" for t in tool.get("tools") or [] if isinstance(t, dict)]
            else:
                names.append(str(tool.get("name") or tool.get("type")))
        return names

    def tool(self, name: str) -> dict[str, Any] | None:
        """The offered tool ``name`` as the model saw it (``parameters``, ``description``...), if offered."""
        for tool in self.body.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name") == name and tool.get("type") == "function":
                return tool
        return None

    def function_calls(self) -> list[FunctionCall]:
        """The ``function_call`` items of the input, oldest first."""
        return [
            FunctionCall(str(i.get("call_id")), str(i.get("name")), str(i.get("arguments", "")))
            for i in self._items()
            if i.get("type") == "function_call"
        ]

    def function_outputs(self) -> list[FunctionOutput]:
        """The ``function_call_output`` items of the input, oldest first."""
        return [
            FunctionOutput(str(i.get("call_id")), "\n".join(texts(i.get("output"))))
            for i in self._items()
            if i.get("type") == "function_call_output"
        ]

    def images(self) -> list[str]:
        """URLs of the images in the input (``input_image`` parts of messages and tool outputs), oldest first."""
        urls: list[str] = []
        for item in self._items():
            for key in ("content", "output"):
                parts = item.get(key)
                if isinstance(parts, list):
                    urls += [
                        str(p.get("image_url")) for p in parts if isinstance(p, dict) and p.get("type") == "input_image"
                    ]
        return urls
