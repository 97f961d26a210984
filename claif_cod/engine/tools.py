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
  thread, or by the request that produced it, for a client that retries); ``Engine.resume_tools``
  answers its calls with :class:`ToolResult` s and returns the same :class:`Turn`, whose
  ``events()`` continue with what the model says next (text, or more tool calls).
* A suspension nobody resumes within its deadline (``TurnOptions.tool_timeout``) is given up: its
  calls are answered as failed, the turn is interrupted, and the thread is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire
from claif_cod.engine.errors import InvalidRequest

if TYPE_CHECKING:
    from claif_cod.engine.events import TurnUsage
    from claif_cod.engine.turns import Turn

log = get_logger("claif_cod.engine.tools")

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
    """The caller's answer to call ``call_id``."""

    call_id: str
    output: str
    success: bool = True


def canonical_arguments(arguments: str) -> str:
    """The arguments as sorted, compact JSON, so a caller that re-serialises them still matches."""
    try:
        return msgspec.json.encode(msgspec.json.decode(arguments), order="sorted").decode()
    except msgspec.DecodeError:
        return arguments


# --- wire: how Codex sees the tools -----------------------------------------------------------


def thread_start_fields(tools: ThreadTools) -> dict[str, Any]:
    """Extra ``thread/start`` params for a tool set: dynamic tools, raw events, tools-only config."""
    if not tools.enabled and tools.builtin:
        return {}
    fields: dict[str, Any] = {}
    if tools.enabled:
        fields["dynamic_tools"] = [
            wire.DynamicToolSpec(name=s.name, description=s.description, input_schema=s.parameters or _EMPTY_SCHEMA)
            for s in tools.specs
        ]
        # The only place a model response's complete set of calls can be seen before Codex asks for
        # the first one (it asks for them one at a time): rawResponseItem/completed + rawResponse/completed.
        fields["experimental_raw_events"] = True
    if not tools.builtin:
        fields["environments"] = []  # no shell, apply_patch or view_image
        fields["config"] = TOOLS_ONLY_CONFIG
    return fields


_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
TOOLS_ONLY_CONFIG: dict[str, Any] = {
    "features": {"multi_agent": False, "goals": False},
    "web_search": "disabled",
    "tools": {"experimental_request_user_input": {"enabled": False}},
}
"""Config overrides that, with ``environments: []``, leave the model only the dynamic tools (Codex 0.163)."""

TOOLS_ONLY_NEWEST_VERIFIED = (0, 163)
"""The newest Codex minor version on which tools-only mode was seen to offer the caller's tools only.

Codex 0.171 still offers ``exec_command``, ``write_stdin``, ``apply_patch`` and ``view_image`` with
``environments: []`` (``features.shell_tool=false`` removes the first two; nothing found removes
the others), so a newer binary is refused rather than trusted to hide its own tools."""


def check_tools_only(tools: ThreadTools, codex_version: str) -> None:
    """Refuse ``builtin=False`` on a Codex not verified to honour it: silently offering Codex's own
    tools would break the promise made to the caller."""
    if tools.builtin:
        return
    try:
        major, minor = (int(part) for part in codex_version.split(".")[:2])
    except ValueError:
        major, minor = TOOLS_ONLY_NEWEST_VERIFIED[0], TOOLS_ONLY_NEWEST_VERIFIED[1] + 1
    if (major, minor) > TOOLS_ONLY_NEWEST_VERIFIED:
        newest = ".".join(map(str, TOOLS_ONLY_NEWEST_VERIFIED))
        raise InvalidRequest(
            f"builtin_tools=false is not supported by codex {codex_version}: it still offers the model its "
            f"own shell, patch and image tools (tools-only mode is verified up to codex {newest}.x)",
            param="builtin_tools",
        )


# --- the batch of one model response ------------------------------------------------------------


@dataclass
class CallBatch:
    """Collects the caller-tool calls of one model response from the turn's raw events."""

    names: frozenset[str]
    calls: list[ToolCall] = field(default_factory=list)

    def raw_item(self, params: msgspec.Raw, turn_id: str) -> None:
        note = msgspec.json.decode(params, type=wire.RawResponseItemCompleted)
        item = note.item
        if note.turn_id != turn_id:
            return
        if item.type == "function_call" and item.name in self.names and item.namespace is None and item.call_id:
            self.calls.append(ToolCall(call_id=item.call_id, name=item.name, arguments=item.arguments or ""))

    def close(self) -> list[ToolCall]:
        """The calls of the response that just completed (possibly none); the next response starts empty."""
        calls, self.calls = self.calls, []
        return calls


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
        return wire.DynamicToolCallResponse(
            content_items=[wire.InputTextContent(text=result.output)], success=result.success
        )

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


# --- suspended turns ----------------------------------------------------------------------------


@dataclass(eq=False)
class Suspension:
    """A turn waiting for the results of ``calls``; ``text`` and ``usage`` are those of the response that made them."""

    turn: Turn
    calls: tuple[ToolCall, ...]
    text: str
    usage: TurnUsage
    tools: ThreadTools
    origin: str | None = None
    """Digest of the request that produced it, so a client that retries that request gets it back."""
    expiry: asyncio.TimerHandle | None = None

    @property
    def call_ids(self) -> frozenset[str]:
        return frozenset(call.call_id for call in self.calls)

    def missing(self, results: Iterable[ToolResult]) -> list[str]:
        given = {r.call_id for r in results}
        return [c.call_id for c in self.calls if c.call_id not in given]


class Suspensions:
    """Suspended turns by call id, by thread and by originating request; each expires at its deadline."""

    def __init__(self, on_expired: Callable[[Suspension], None]) -> None:
        self._by_call: dict[str, Suspension] = {}
        self._by_thread: dict[str, Suspension] = {}
        self._by_origin: dict[str, Suspension] = {}
        self._on_expired = on_expired

    def add(self, suspension: Suspension, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        suspension.expiry = loop.call_later(timeout, self._expire, suspension)
        self._by_thread[suspension.turn.handle.thread_id] = suspension
        for call in suspension.calls:
            self._by_call[call.call_id] = suspension

    def tag_origin(self, suspension: Suspension, digest: str) -> None:
        if self._by_thread.get(suspension.turn.handle.thread_id) is suspension:
            suspension.origin = digest
            self._by_origin[digest] = suspension

    def for_results(self, results: Iterable[ToolResult]) -> Suspension | None:
        """The suspension these results answer; InvalidRequest when they mix several or leave calls out."""
        found = {self._by_call.get(r.call_id) for r in results}
        found.discard(None)
        if not found:
            return None
        if len(found) > 1:
            raise InvalidRequest("the tool results answer calls of different responses", param="messages")
        suspension = found.pop()
        assert suspension is not None
        missing = suspension.missing(results)
        if missing:
            raise InvalidRequest(f"no tool result for call {missing[0]} (every call needs one)", param="messages")
        return suspension

    def for_thread(self, thread_id: str) -> Suspension | None:
        return self._by_thread.get(thread_id)

    def for_origin(self, digest: str) -> Suspension | None:
        return self._by_origin.get(digest)

    def take(self, suspension: Suspension) -> None:
        """The suspension ends (resumed, expired or its turn gone): unindex it and stop its timer."""
        if suspension.expiry is not None:
            suspension.expiry.cancel()
        thread_id = suspension.turn.handle.thread_id
        if self._by_thread.get(thread_id) is suspension:
            del self._by_thread[thread_id]
        for call in suspension.calls:
            if self._by_call.get(call.call_id) is suspension:
                del self._by_call[call.call_id]
        if suspension.origin is not None and self._by_origin.get(suspension.origin) is suspension:
            del self._by_origin[suspension.origin]

    def _expire(self, suspension: Suspension) -> None:
        if self._by_thread.get(suspension.turn.handle.thread_id) is suspension:
            log.warning("engine.tool_calls_abandoned", thread_id=suspension.turn.handle.thread_id)
            self.take(suspension)
            self._on_expired(suspension)

    def __len__(self) -> int:
        return len(self._by_thread)
