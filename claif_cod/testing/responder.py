"""What the offline model answers: one scripted Responses-API response, played as server-sent
events onto a connection, and the memory the model keeps across requests (prompt-cache prefixes,
first ``[[flaky]]`` attempts, barrier arrivals).

Apart from :mod:`.model_server` so that the script (what is said) does not depend on how HTTP is
spoken: the responder sees the connection only as a :class:`Channel`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from claif_cod.testing import calls
from claif_cod.testing.markers import BadMarker, Script
from claif_cod.testing.recorded import RecordedRequest

_REASONING_SUMMARY = "Thinking about how to answer this request."  # seven words = reasoning_tokens

_ERROR_MESSAGES = {
    "context_length_exceeded": "Your input exceeds the context window of this model.",
    "rate_limit_exceeded": "Rate limit reached for requests. Please try again later.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
    "invalid_api_key": "Incorrect API key provided.",
    "server_error": "The server had an error while processing your request.",
}


class Channel(Protocol):
    """The connection a response is played onto."""

    def error(self, status: int, code: str | None, message: str) -> None:
        """Send an OpenAI-style JSON error body."""

    def hold(self) -> None:
        """Keep the connection open until the client hangs up or the server stops."""

    def pause(self, seconds: float) -> None:
        """Wait, unless the server stops first (then raise)."""

    def start_stream(self) -> None: ...

    def event(self, name: str, **data: Any) -> None: ...


def _chunks(text: str) -> list[str]:
    """Split a reply into one delta per word, keeping whitespace so the deltas join back exactly."""
    chunks = re.findall(r"\s*\S+", text)
    tail = text[len("".join(chunks)) :]
    if tail and chunks:
        chunks[-1] += tail
    elif tail:
        chunks.append(tail)
    return chunks


def _common_prefix(a: list[str], b: list[str]) -> int:
    shorter = min(len(a), len(b))
    return next((i for i in range(shorter) if a[i] != b[i]), shorter)


def _usage(input_tokens: int, cached: int, output_tokens: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


@dataclass
class SharedState:
    """Everything the handler threads share (the model's memory, the recorded requests), under one condition."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    stopping: threading.Event = field(default_factory=threading.Event)
    requests: list[RecordedRequest] = field(default_factory=list)
    prompts_by_cache_key: dict[str, list[str]] = field(default_factory=dict)
    flaky_seen: set[str] = field(default_factory=set)
    barrier_arrivals: int = 0
    next_id: int = 0

    def new_id(self, prefix: str) -> str:
        with self.cond:
            self.next_id += 1
            return f"{prefix}_{self.next_id}"

    def record(self, request: RecordedRequest, words: list[str]) -> int:
        """Store the request and return its cached-prefix length in words."""
        key = request.body.get("prompt_cache_key")
        with self.cond:
            self.requests.append(request)
            self.cond.notify_all()
            if not isinstance(key, str):
                return 0
            previous = self.prompts_by_cache_key.get(key, [])
            self.prompts_by_cache_key[key] = words
        return _common_prefix(previous, words)

    def barrier(self, parties: int) -> None:
        """Hold until ``parties`` barrier requests have arrived: proof that they run concurrently."""
        with self.cond:
            self.barrier_arrivals += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.barrier_arrivals >= parties or self.stopping.is_set())

    def first_flaky(self, request: RecordedRequest) -> bool:
        """True only for the first ``[[flaky]]`` request of a conversation."""
        key = hashlib.sha256(json.dumps(request.user_texts()).encode()).hexdigest()
        with self.cond:
            first = key not in self.flaky_seen
            self.flaky_seen.add(key)
            return first


class Responder:
    """Plays one scripted response onto a handler's connection."""

    def __init__(
        self, handler: Channel, state: SharedState, request: RecordedRequest, input_tokens: int, cached: int
    ) -> None:
        self.handler = handler
        self.request = request
        self.state = state
        user_texts = request.user_texts()
        self.script = Script.parse(user_texts[-1] if user_texts else "")
        self.turn = len(user_texts)
        self.tool_outputs = calls.returned_outputs(request)
        self.missing: list[str] = []
        self.via_exec = False
        """Code mode: the calls go through one JavaScript ``exec`` call (see claif_cod.testing.calls)."""
        # Parse every marker argument before the first byte goes out, so a typo becomes a clean 400.
        self.calls = [] if self.tool_outputs is not None else self._calls(user_texts[-1] if user_texts else "")
        self.status = self.script.status() if "status" in self.script.markers else None
        self.delay = self.script.number("slow") / 1000 if "slow" in self.script.markers else 0.0
        self.summary_parts = self.script.number("reasoning") if self.script.markers.get("reasoning") else 0
        self.reply = self._reply_text()
        self.input_tokens = input_tokens
        self.cached = cached
        self.response_id = self.state.new_id("resp")
        self.deltas = 0
        self.reasoning_tokens = 0

    def run(self) -> None:
        markers = self.script.markers
        if self.status is not None:
            status, code = self.status
            self.handler.error(status, code, _ERROR_MESSAGES.get(code or "", f"Scripted HTTP {status}."))
            return
        if "stall" in markers:
            self.handler.hold()
            return
        if "barrier" in markers:
            self.state.barrier(self.script.number("barrier"))
        self.handler.start_stream()
        self.handler.event("response.created", response={"id": self.response_id})
        if "failed" in markers or ("failed-after-tool" in markers and self.tool_outputs is not None):
            self.handler.event(
                "response.failed",
                response={"id": self.response_id, "error": {"code": "server_error", "message": "scripted failure"}},
            )
            return
        output_index = 0
        if "reasoning" in markers:
            self._reasoning(output_index)
            output_index += 1
        if self.calls and self.via_exec:
            self._exec_call(output_index, calls.exec_script(self.calls))
        elif self.calls:
            cut = "sse-error" in markers or ("flaky" in markers and self.state.first_flaky(self.request))
            for call in self.calls[:1] if cut else self.calls:
                self._function_call(output_index, call.name, call.arguments)
                output_index += 1
            if cut:
                self._stream_error()
                return
        elif "tool" in markers and self.tool_outputs is None:
            self._function_call(output_index, calls.SHELL_TOOL, json.dumps({"cmd": markers["tool"]}))
        else:
            if "preamble" in markers:
                self._preamble(output_index, markers["preamble"])
                output_index += 1
            if not self._message(output_index):
                self._stream_error()
                return
        usage = _usage(self.input_tokens, self.cached, self.deltas + self.reasoning_tokens, self.reasoning_tokens)
        if "incomplete" in markers:
            details = {"reason": "max_output_tokens"}
            self.handler.event(
                "response.incomplete", response={"id": self.response_id, "incomplete_details": details, "usage": usage}
            )
        else:
            self.handler.event("response.completed", response={"id": self.response_id, "usage": usage})

    def _stream_error(self) -> None:
        """``[[sse-error]]``, where the stream was cut: the ``error`` event the Responses API sends
        when a response fails mid-stream, then the end of the connection."""
        if "sse-error" in self.script.markers:
            code = self.script.markers["sse-error"] or "server_error"
            message = _ERROR_MESSAGES.get(code, "scripted stream error")
            self.handler.event("error", code=code, message=message, param=None, sequence_number=0)

    def _calls(self, message: str) -> list[calls.ScriptedCall]:
        """The scripted calls, all to offered tools; none when a called tool was not offered (the reply says so)."""
        try:
            scripted = calls.scripted_calls(message)
        except calls.BadCallMarker as exc:
            raise BadMarker(str(exc)) from None
        self.missing = calls.missing_tools(self.request, scripted)
        if self.missing and calls.exec_offered(self.request):
            self.missing, self.via_exec = [], True
        return [] if self.missing else scripted

    def _reply_text(self) -> str:
        markers = self.script.markers
        if self.tool_outputs is not None:
            return calls.report(self.tool_outputs)
        if self.missing:
            return f"Not offered: {', '.join(self.missing)}"
        if "reply" in markers:
            return markers["reply"]
        if "long" in markers:
            return " ".join(f"w{i}" for i in range(1, self.script.number("long") + 1))
        prefix = f"[turn {self.turn}] " if self.turn > 1 else ""
        return f"{prefix}Echo: {self.script.text}"

    def _reasoning(self, output_index: int) -> None:
        """``[[reasoning]]``: one summary, deltas only; ``[[reasoning:N]]``: N summary parts, each announced."""
        parts = self.summary_parts
        texts = [_REASONING_SUMMARY] if parts == 0 else [f"Part {i} of the reasoning." for i in range(1, parts + 1)]
        item_id = self.state.new_id("rs")
        ids = {"item_id": item_id, "output_index": output_index}
        self.handler.event(
            "response.output_item.added",
            output_index=output_index,
            item={"type": "reasoning", "id": item_id, "summary": []},
        )
        for index, text in enumerate(texts):
            part = {"type": "summary_text", "text": ""}
            if parts:
                self.handler.event("response.reasoning_summary_part.added", **ids, summary_index=index, part=part)
            for chunk in _chunks(text):
                self.handler.event("response.reasoning_summary_text.delta", **ids, summary_index=index, delta=chunk)
                self.reasoning_tokens += 1
            if parts:
                self.handler.event("response.reasoning_summary_text.done", **ids, summary_index=index, text=text)
                done = {"type": "summary_text", "text": text}
                self.handler.event("response.reasoning_summary_part.done", **ids, summary_index=index, part=done)
        self.handler.event(
            "response.output_item.done",
            output_index=output_index,
            item={"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": t} for t in texts]},
        )

    def _function_call(self, output_index: int, name: str, arguments: str) -> None:
        item = {
            "type": "function_call",
            "id": self.state.new_id("fc"),
            "call_id": self.state.new_id("call"),
            "name": name,
        }
        self.handler.event("response.output_item.added", output_index=output_index, item={**item, "arguments": ""})
        self.handler.event(
            "response.function_call_arguments.delta", item_id=item["id"], output_index=output_index, delta=arguments
        )
        self.handler.event(
            "response.output_item.done", output_index=output_index, item={**item, "arguments": arguments}
        )
        self.deltas += 1

    def _exec_call(self, output_index: int, script: str) -> None:
        item = {"type": "custom_tool_call", "id": self.state.new_id("ctc"), "call_id": self.state.new_id("call")}
        item["name"] = calls.EXEC_TOOL
        self.handler.event("response.output_item.added", output_index=output_index, item={**item, "input": ""})
        self.handler.event(
            "response.custom_tool_call_input.delta", item_id=item["id"], output_index=output_index, delta=script
        )
        self.handler.event("response.output_item.done", output_index=output_index, item={**item, "input": script})
        self.deltas += 1

    def _preamble(self, output_index: int, text: str) -> None:
        """``[[preamble:TEXT]]``: a whole commentary message before the answer, as agentic models send."""
        item = {"type": "message", "role": "assistant", "id": self.state.new_id("msg"), "phase": "commentary"}
        self.handler.event("response.output_item.added", output_index=output_index, item={**item, "content": []})
        ids = {"item_id": item["id"], "output_index": output_index, "content_index": 0}
        for chunk in _chunks(text):
            self.handler.event("response.output_text.delta", **ids, delta=chunk)
            self.deltas += 1
        done = {**item, "content": [{"type": "output_text", "text": text}]}
        self.handler.event("response.output_item.done", output_index=output_index, item=done)

    def _message(self, output_index: int) -> bool:
        """Stream the assistant message; False when the script cuts the stream short after two deltas."""
        markers = self.script.markers
        cut = (
            "stall-mid" in markers
            or "sse-error" in markers
            or ("flaky" in markers and self.state.first_flaky(self.request))
        )
        chunks = _chunks(self.reply)
        item = {"type": "message", "role": "assistant", "id": self.state.new_id("msg")}
        self.handler.event("response.output_item.added", output_index=output_index, item={**item, "content": []})
        for chunk in chunks[:2] if cut else chunks:
            if self.delay:
                self.handler.pause(self.delay)
            self.handler.event(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=output_index,
                content_index=0,
                delta=chunk,
            )
            self.deltas += 1
        if cut:
            if "stall-mid" in markers:
                self.handler.hold()
            return False
        self.handler.event(
            "response.output_item.done",
            output_index=output_index,
            item={**item, "content": [{"type": "output_text", "text": self.reply}]},
        )
        return True
