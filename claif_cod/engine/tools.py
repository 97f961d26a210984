"""Caller-defined tools: Codex dynamic tools, and turns that wait for the caller to run them.

Contract (what a caller of the engine, chat or Responses, relies on):

* A thread is started with a :class:`ThreadTools` (``Threads.start(..., tools=)``); its tools
  are fixed for the thread's life, so they are part of what a warm thread is matched on.  With
  ``builtin=False`` the model is offered the caller's tools only: no shell, patch, image viewer,
  web search, sub-agents or goals.
* When the model calls caller tools, the turn yields one :class:`ToolCallsRequested` with every
  call of that model response (parallel calls come together: the batch closes on Codex's
  ``rawResponse/completed``, the end of the model response, never on a timer) and the usage of
  that response; its ``events()`` iterator then ends and the turn is **suspended**: Codex waits on
  its ``item/tool/call`` requests, the thread stays locked and the turn stays in flight.
* ``Engine.suspension(...)`` finds a suspended turn (by the call ids of the results, by its
  thread, or by the request that produced it, for a client that retries; see
  :mod:`claif_cod.engine.suspensions`); ``Engine.resume_tools``
  answers its calls with :class:`ToolResult` s and returns the same :class:`Turn`, whose
  ``events()`` continue with what the model says next (text, or more tool calls).
* A suspension nobody resumes within its deadline (``TurnOptions.tool_timeout``) is given up: its
  calls are answered as failed, the turn is interrupted, and the thread is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from claif_cod.engine import wire, wire_notifications
from claif_cod.engine.images import Image, large
from claif_cod.unreadable import UNREADABLE

DEFAULT_TOOL_TIMEOUT_S = 600.0
"""How long a suspended turn waits for its tool results before its calls are answered as failed."""


class ToolSpec(msgspec.Struct, frozen=True):
    """A function the caller offers the model; ``parameters`` is its JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class ThreadTools(msgspec.Struct, frozen=True):
    """The tools a thread offers: the caller's functions, and whether Codex's own tools come too."""

    specs: tuple[ToolSpec, ...] = ()
    builtin: bool = True

    @property
    def enabled(self) -> bool:
        """Whether turns on the thread can suspend on caller tools."""
        return bool(self.specs)

    def names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.specs)

    def material(self) -> object:
        """What identifies this tool set in a history hash (order-independent, schema-exact)."""
        return [self.builtin, sorted([s.name, s.description, s.parameters] for s in self.specs)]


NO_TOOLS = ThreadTools()


class ToolCall(msgspec.Struct, frozen=True):
    """A call the model made: ``arguments`` is the JSON text it wrote."""

    call_id: str
    name: str
    arguments: str


class ToolResult(msgspec.Struct, frozen=True):
    """The caller's answer to call ``call_id``: its text, and the images it returned (Responses only)."""

    call_id: str
    output: str
    success: bool = True
    images: tuple[Image, ...] = ()


def canonical_arguments(arguments: str) -> str:
    """The arguments as sorted, compact JSON, so a caller that re-serialises them still matches."""
    try:
        return msgspec.json.encode(msgspec.json.decode(arguments), order="sorted").decode()
    except UNREADABLE:  # not JSON (or nested too deeply to read): compared as sent
        return arguments


# --- wire: how Codex sees the tools -----------------------------------------------------------


def thread_start_fields(tools: ThreadTools) -> dict[str, Any]:
    """Extra ``thread/start`` params for caller tools: dynamic tools and raw events.

    What makes a thread tools-only (``builtin=False``) depends on the Codex version: engine/tools_only.py."""
    if not tools.enabled:
        return {}
    return {
        "dynamic_tools": [
            wire.DynamicToolSpec(name=s.name, description=s.description, input_schema=s.parameters or _EMPTY_SCHEMA)
            for s in tools.specs
        ],
        # The only place a model response's complete set of calls can be seen before Codex asks for
        # the first one (it asks for them one at a time): rawResponseItem/completed + rawResponse/completed.
        "experimental_raw_events": True,
    }


_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


# --- the batch of one model response ------------------------------------------------------------


@dataclass
class CallBatch:
    """Collects the caller-tool calls of one model response from the turn's raw events."""

    names: frozenset[str]
    calls: list[ToolCall] = field(default_factory=list)
    codex_calls: set[str] = field(default_factory=set)
    """The call ids of the response's calls to Codex's own tools (a command's item has its call's id)."""

    def raw_item(self, params: msgspec.Raw, turn_id: str) -> None:
        note = msgspec.json.decode(params, type=wire_notifications.RawResponseItemCompleted)
        item = note.item
        if note.turn_id != turn_id or not item.call_id:
            return
        if item.type == "function_call" and item.name in self.names and item.namespace is None:
            self.calls.append(ToolCall(call_id=item.call_id, name=item.name, arguments=item.arguments or ""))
        else:
            self.codex_calls.add(item.call_id)

    def close(self) -> tuple[list[ToolCall], set[str]]:
        """The calls of the response that just completed, the caller's (possibly none) and the ids of
        Codex's own; the next response starts empty."""
        calls, codex_calls = self.calls, self.codex_calls
        self.calls, self.codex_calls = [], set()
        return calls, codex_calls


# --- answering item/tool/call -------------------------------------------------------------------


class ToolRouter:
    """Pairs Codex's ``item/tool/call`` requests with the caller's results, in whichever order they come.

    Codex asks for a batch's calls one at a time, each only after the previous one is answered, so a
    result may arrive long before the request that wants it: both meet in one future per call.
    """

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], asyncio.Future[ToolResult]] = {}

    def _future(self, thread_id: str, call_id: str) -> asyncio.Future[ToolResult]:
        key = (thread_id, call_id)
        future = self._calls.get(key)
        if future is None:
            future = self._calls[key] = asyncio.get_running_loop().create_future()
        return future

    async def on_call(self, params: msgspec.Raw) -> wire.DynamicToolCallResponse:
        call = msgspec.json.decode(params, type=wire.DynamicToolCallParams)
        future = self._future(call.thread_id, call.call_id)
        try:
            result = await asyncio.shield(future)
        finally:
            self._calls.pop((call.thread_id, call.call_id), None)
        items = await asyncio.to_thread(_content_items, result) if large(result.images) else _content_items(result)
        return wire.DynamicToolCallResponse(content_items=items, success=result.success)

    def answer(self, thread_id: str, results: Iterable[ToolResult]) -> None:
        for result in results:
            future = self._future(thread_id, result.call_id)
            if not future.done():
                future.set_result(result)

    def drop_thread(self, thread_id: str, reason: str) -> None:
        """The thread's turn ended: any call Codex may still wait on is answered as failed."""
        for key in [k for k in self._calls if k[0] == thread_id]:
            future = self._calls.pop(key)
            if not future.done():
                future.set_result(ToolResult(key[1], reason, success=False))


def _content_items(result: ToolResult) -> list[wire.InputTextContent | wire.InputImageContent]:
    """What the model reads of a result: its text (also when empty, unless it returned only images),
    then its images as ``data:`` URLs, the costly part (see ``images.large``)."""
    items: list[wire.InputTextContent | wire.InputImageContent] = []
    if result.output or not result.images:
        items.append(wire.InputTextContent(text=result.output))
    items.extend(wire.InputImageContent(image_url=image.data_url) for image in result.images)
    return items
