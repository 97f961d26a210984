#!/usr/bin/env python3
"""A scripted stand-in for the ``codex`` binary, enough for ``CodexClient(codex_path=...)``.

Commands:
    codex --version                                   prints ``codex-cli 0.163.0``
    codex app-server generate-json-schema --out DIR   writes ``DIR/v2/ThreadStartParams.json``
    codex app-server [-c key=value ...]               JSON lines over stdio, like Codex's

The app-server answers ``initialize``, ``thread/start``, ``thread/inject_items``,
``thread/resume``, ``thread/fork``, ``thread/loaded/list``, ``turn/start``, ``turn/interrupt``
and ``model/list``.  A turn replies ``Echo: <text>`` (or ``[[reply:TEXT]]``) one word per
``item/agentMessage/delta``, then ``item/completed``, ``thread/tokenUsage/updated`` and
``turn/completed``.  Turns run on their own threads, so requests are answered meanwhile.

Misbehaviour on cue, for the whole process via ``FAKE_CODEX_MODE`` (comma-separated) or
for one turn via a marker in its text:

    crash-mid-turn           [[crash-mid-turn]]  exit 1 after the first delta, with a line on stderr
    hang                     [[hang]]            after the first delta stop answering anything
                                                 (turn/interrupt included) but stay alive
    garbage                  [[garbage]]         write non-JSON lines to stdout, then go on normally
    crash-on-start                               exit 1 before answering initialize, with stderr
    ignore-sigterm-and-fork                      ignore SIGTERM, fork a grandchild that ignores it
                                                 too and sleeps; write "PID GRANDCHILD_PID" to
                                                 ``FAKE_CODEX_PIDFILE``; linger after stdin EOF
                             [[slow:MS]]         wait MS milliseconds before each delta
                             [[silent:MS]]       say nothing for MS milliseconds after turn/started
                             [[moderation:MODE]] the message completes with Codex 0.171's
                                                 ``moderation`` (MODE: show, hide, block or other)

Other knobs: ``FAKE_CODEX_HANG_ON=METHOD`` stops answering anything once METHOD arrives;
``FAKE_CODEX_IGNORE=METHOD`` never answers METHOD but everything else (for both, ``@FILE``
reads the method from FILE at each request, so a test can switch it on for a running
process); ``FAKE_CODEX_LOG=FILE`` gets a line ``start PID`` per app-server start.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

VERSION = "0.163.0"
MODES = {m.strip() for m in os.environ.get("FAKE_CODEX_MODE", "").split(",") if m.strip()}
MARKER = re.compile(r"\[\[([a-z-]+)(?::(.*?))?\]\]")
GARBAGE = [
    b"this is not json\n",
    b'{"id": 1, "result\n',
    b"\xff\xfe not even utf-8\n",
    b"[1, 2, 3]\n",
    b'"a string"\n',
    b"\n",
    b"WARN codex_core: a log line on the wrong stream\n",
]

_out_lock = threading.Lock()
_hung = threading.Event()
_ids = itertools.count(1)
_threads: set[str] = set()
_turns: dict[str, threading.Event] = {}  # turn id -> interrupt requested


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(f"codex-cli {VERSION}")
        return 0
    if argv[:2] == ["app-server", "generate-json-schema"]:
        return generate_schema(argv[argv.index("--out") + 1])
    if argv[:1] == ["app-server"]:
        return app_server()
    sys.stderr.write(f"fake codex: unsupported command {argv!r}\n")
    return 2


def generate_schema(out_dir: str) -> int:
    schema = {
        "title": "ThreadStartParams",
        "type": "object",
        "definitions": {
            "AskForApproval": {"oneOf": [{"type": "string", "enum": ["untrusted", "on-request", "never"]}]},
            "SandboxMode": {"type": "string", "enum": ["read-only", "workspace-write", "danger-full-access"]},
        },
    }
    target = Path(out_dir) / "v2"
    target.mkdir(parents=True, exist_ok=True)
    (target / "ThreadStartParams.json").write_text(json.dumps(schema))
    return 0


# --- output ------------------------------------------------------------------------------


def block_forever() -> None:
    while True:
        time.sleep(3600)


def write(data: bytes) -> None:
    if _hung.is_set():
        block_forever()
    with _out_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def send(message: dict[str, Any]) -> None:
    write(json.dumps(message).encode() + b"\n")


def notify(method: str, params: dict[str, Any]) -> None:
    send({"method": method, "params": {**params, "emittedAtMs": int(time.time() * 1000)}})


def garbage() -> None:
    for line in GARBAGE:
        write(line)


def hang() -> None:
    _hung.set()
    block_forever()


# --- the app-server ------------------------------------------------------------------------


def app_server() -> int:
    if log := os.environ.get("FAKE_CODEX_LOG"):
        with open(log, "a") as f:
            f.write(f"start {os.getpid()}\n")
    if "crash-on-start" in MODES:
        sys.stderr.write("fake codex: error loading config.toml: crash-on-start requested\n")
        sys.stderr.flush()
        return 1
    linger = False
    if "ignore-sigterm-and-fork" in MODES:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = os.fork()
        if grandchild == 0:
            block_forever()  # SIG_IGN is inherited
        if pidfile := os.environ.get("FAKE_CODEX_PIDFILE"):
            Path(pidfile).write_text(f"{os.getpid()} {grandchild}\n")
        linger = True
    if "garbage" in MODES:
        garbage()
    initialized = False
    while True:
        line = sys.stdin.buffer.readline()
        if _hung.is_set():
            block_forever()
        if not line:
            break
        message = json.loads(line)
        method, rid = message.get("method"), message.get("id")
        if method is None or rid is None:
            continue  # an answer to a request of ours, or a notification
        if method == knob("FAKE_CODEX_HANG_ON"):
            hang()
        if method == knob("FAKE_CODEX_IGNORE"):
            continue  # never answered, while everything else is
        if method != "initialize" and not initialized:
            send({"id": rid, "error": {"code": -32600, "message": "Not initialized"}})
            continue
        try:
            result = handle(method, message.get("params") or {})
        except KeyError as exc:
            send({"id": rid, "error": {"code": -32602, "message": f"missing field {exc}"}})
            continue
        if result is None:
            send({"id": rid, "error": {"code": -32601, "message": f"unknown method {method}"}})
            continue
        if method == "initialize":
            initialized = True
        if isinstance(result, tuple):  # turn/start: answer first, then run the turn
            answer, turn = result
            send({"id": rid, "result": answer})
            turn.start()
        else:
            send({"id": rid, "result": result})
    if linger:
        block_forever()
    return 0


def knob(name: str) -> str | None:
    """An environment setting; ``@FILE`` means FILE's content, read now (a test can flip it later)."""
    value = os.environ.get(name)
    if value and value.startswith("@"):
        try:
            return Path(value[1:]).read_text().strip() or None
        except FileNotFoundError:
            return None
    return value


def thread_result(thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    _threads.add(thread_id)
    return {
        "thread": {"id": thread_id, "preview": "", "cwd": params.get("cwd") or os.getcwd(), "turns": []},
        "model": params.get("model") or "fake-model",
        "modelProvider": "fake",
        "cwd": params.get("cwd") or os.getcwd(),
        "approvalPolicy": params.get("approvalPolicy") or "on-request",
        "sandbox": {"type": "readOnly"},
    }


def handle(method: str, params: dict[str, Any]) -> Any:
    if method == "initialize":
        return {"userAgent": f"fake_codex/{VERSION}", "codexHome": os.environ.get("CODEX_HOME", "/fake/home")}
    if method == "thread/start":
        return thread_result(f"thr-{os.getpid()}-{next(_ids)}", params)
    if method == "thread/resume":
        return thread_result(params["threadId"], params)
    if method == "thread/fork":
        return thread_result(f"thr-{os.getpid()}-{next(_ids)}", params)
    if method == "thread/inject_items":
        return {}
    if method == "thread/loaded/list":
        return {"data": sorted(_threads), "nextCursor": None}
    if method == "model/list":
        return {
            "data": [
                {
                    "id": "fake-model",
                    "model": "fake-model",
                    "displayName": "Fake",
                    "description": "fake",
                    "hidden": False,
                    "isDefault": True,
                }
            ],
            "nextCursor": None,
        }
    if method == "turn/interrupt":
        interrupted = _turns.get(params["turnId"])
        if interrupted is not None:
            interrupted.set()
        return {}
    if method == "turn/start":
        turn_id = f"turn-{next(_ids)}"
        text = " ".join(part.get("text", "") for part in params["input"])
        interrupted = _turns[turn_id] = threading.Event()
        runner = threading.Thread(target=run_turn, args=(params["threadId"], turn_id, text, interrupted), daemon=True)
        return {"turn": {"id": turn_id, "status": "inProgress", "items": [], "error": None}}, runner
    return None


def run_turn(thread_id: str, turn_id: str, text: str, interrupted: threading.Event) -> None:
    markers = {m.group(1): m.group(2) or "" for m in MARKER.finditer(text)}
    modes = MODES | set(markers)
    ids = {"threadId": thread_id, "turnId": turn_id}
    notify("turn/started", {"threadId": thread_id, "turn": {"id": turn_id, "status": "inProgress", "items": []}})
    if "garbage" in modes:
        garbage()
    if "silent" in markers and interrupted.wait(int(markers["silent"]) / 1000):
        return finish(thread_id, turn_id, "interrupted")
    reply = markers["reply"] if "reply" in markers else "Echo: " + " ".join(MARKER.sub("", text).split())
    words = re.findall(r"\s*\S+", reply) or [reply]
    item_id = f"msg-{turn_id}"
    notify("item/started", {**ids, "item": {"type": "agentMessage", "id": item_id, "text": ""}})
    delay = int(markers["slow"]) / 1000 if "slow" in markers else 0.0
    for i, word in enumerate(words):
        if (delay and interrupted.wait(delay)) or interrupted.is_set():
            return finish(thread_id, turn_id, "interrupted")
        notify("item/agentMessage/delta", {**ids, "itemId": item_id, "delta": word})
        if i == 0 and "crash-mid-turn" in modes:
            sys.stderr.write("fake codex: thread 'tokio-runtime-worker' panicked: crash-mid-turn requested\n")
            sys.stderr.flush()
            os._exit(1)
        if i == 0 and "hang" in modes:
            hang()
        if "garbage" in modes:
            write(b"not json between deltas\n")
    item: dict[str, Any] = {"type": "agentMessage", "id": item_id, "text": reply}
    if "moderation" in markers:
        item["moderation"] = moderation(markers["moderation"])
    notify("item/completed", {**ids, "item": item})
    usage = {
        "inputTokens": len(text.split()),
        "cachedInputTokens": 0,
        "outputTokens": len(words),
        "reasoningOutputTokens": 0,
        "totalTokens": len(text.split()) + len(words),
    }
    notify(
        "thread/tokenUsage/updated",
        {**ids, "tokenUsage": {"last": usage, "total": usage, "modelContextWindow": 272000}},
    )
    finish(thread_id, turn_id, "completed")


def moderation(mode: str) -> dict[str, Any]:
    """``agentMessage.moderation`` as Codex 0.171's schema describes it (AgentMessageDisplay)."""
    display: dict[str, Any] = {"mode": mode, "version": 1}
    if mode == "show":
        display["trustedContacts"] = "skip"
    elif mode == "hide":
        display["replacement"] = {"kind": "wellbeingPromptHelpline"}
    elif mode == "block":
        display["reason"] = {"kind": "cyber", "trustedAccess": False}
    return {"moderated": mode != "show", "display": display}


def finish(thread_id: str, turn_id: str, status: str) -> None:
    _turns.pop(turn_id, None)
    notify(
        "turn/completed", {"threadId": thread_id, "turn": {"id": turn_id, "status": status, "items": [], "error": None}}
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
