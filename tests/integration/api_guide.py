"""Run the ``python`` examples of the user-facing API guide against the real Codex CLI.

Used by ``test_api_guide.py``. The guide is read where it lives (never copied into the tests),
so the tests and the guide cannot drift apart:

1. ``docs/python-api.md`` in the repository, when it exists;
2. otherwise ``../shared/spec/python-api.md`` relative to the repository root.

Every fenced ``python`` block is one example, named after the nearest heading above it
(``#### Synchronous Requests`` -> ``synchronous-requests``). An example is compiled with the
guide as its file name and its real line numbers, so a traceback points into the guide.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import re
import symtable
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer, write_codex_home

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE_CANDIDATES = (
    REPO_ROOT / "docs" / "python-api.md",
    REPO_ROOT.parent / "shared" / "spec" / "python-api.md",
)
EXAMPLE_MODULE = "api_guide_example"
"""``__name__`` of every example, so ``if __name__ == '__main__':`` blocks do not start servers."""

EXAMPLE_FOLDERS = ("project", "my-project")
"""Folders the examples name as ``working_dir`` (``./project``, ``./my-project``)."""
EXAMPLE_CODEX_HOME = "codex-home"
"""A second offline ``CODEX_HOME`` in the working directory, for examples that pass ``codex_home=``.

``$CODEX_HOME`` points elsewhere, so a check can tell which of the two Codex used."""
DAEMON_HELPERS = REPO_ROOT / "tests" / "daemon"
"""Where ``daemon_process.DaemonProcess`` lives, for examples that need a claif-codd."""

CLIENT_TYPES = (CodexClient, AsyncCodexClient)

GUIDE_WARNINGS = pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning")
"""The guide's Flask, FastAPI and response-processing examples call pydantic's deprecated ``.dict()``.

The guide is kept verbatim, so the warning is filtered wherever its examples run."""

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def guide_path() -> Path | None:
    """The API guide to test, or ``None`` when neither location holds it."""
    for candidate in GUIDE_CANDIDATES:
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Example:
    """One fenced ``python`` block of the guide."""

    id: str
    heading: str
    code: str
    line: int  # 1-based line of the first code line in the guide
    path: Path

    def compile(self) -> Any:
        """Compiled with the guide's path and line numbers, so tracebacks point into the guide.

        ``dont_inherit``: this module's ``from __future__ import annotations`` must not leak
        into the example (FastAPI could then not resolve the example's pydantic models).
        """
        return compile("\n" * (self.line - 1) + self.code, str(self.path), "exec", dont_inherit=True)


def slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "example"


def parse_examples(text: str, path: Path) -> list[Example]:
    """Every fenced ``python`` block, in order, with an id taken from the nearest heading."""
    examples: list[Example] = []
    seen: dict[str, int] = {}
    heading = "preamble"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            match = _HEADING.match(lines[i])
            if match:
                heading = match.group(2)
            i += 1
            continue
        marker, lang = fence.group(1), fence.group(2).lower()
        body: list[str] = []
        j = i + 1
        closing = re.compile(re.escape(marker[0]) + f"{{{len(marker)},}}\\s*")
        while j < len(lines) and not closing.fullmatch(lines[j]):
            body.append(lines[j])
            j += 1
        if lang in ("python", "py", "python3"):
            base = slug(heading)
            seen[base] = seen.get(base, 0) + 1
            example_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
            examples.append(Example(example_id, heading, "\n".join(body) + "\n", i + 2, path))
        i = j + 1
    return examples


def load_examples() -> tuple[Path | None, list[Example]]:
    path = guide_path()
    if path is None:
        return None, []
    return path, parse_examples(path.read_text(encoding="utf-8"), path)


def free_names(code: str) -> set[str]:
    """Global names an example reads but never binds: what it expects an earlier example to set up."""
    top = symtable.symtable(code, "<example>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    used: set[str] = set()

    def walk(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            if not symbol.is_referenced():
                continue
            if table is top or symbol.is_global():
                used.add(symbol.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return {
        name
        for name in used - bound
        if not (name.startswith("__") and name.endswith("__")) and not hasattr(builtins, name)
    }


# --- what earlier examples set up -------------------------------------------------------------

CONTEXT: dict[str, Callable[[], Any]] = {
    # "Advanced Parameters", "Streaming Responses" and "Multiple Choices" continue the
    # "Synchronous Requests" example, which starts with ``client = CodexClient()``.
    "client": lambda: CodexClient(),
}


# --- processes ---------------------------------------------------------------------------------


def child_pids() -> set[int] | None:
    """Live (or unreaped) child processes of this process; ``None`` where ``/proc`` is missing."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    me = os.getpid()
    children: set[int] = set()
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = (proc / entry.name / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            children.add(int(entry.name))
    return children


def find_clients(namespace: dict[str, Any], depth: int = 3) -> list[Any]:
    """``CodexClient``/``AsyncCodexClient`` instances in a namespace, also inside objects (``processor.client``)."""
    found: dict[int, Any] = {}
    seen: set[int] = set()

    def visit(value: Any, level: int) -> None:
        if id(value) in seen or level > depth:
            return
        seen.add(id(value))
        if isinstance(value, CLIENT_TYPES):
            found[id(value)] = value
            return
        if isinstance(value, dict):
            for item in value.values():
                visit(item, level + 1)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                visit(item, level + 1)
        elif isinstance(value, types.ModuleType):
            return  # holds no client of the example; and openai's lazy attributes change its dict meanwhile
        elif not isinstance(value, type) and not callable(value) and hasattr(value, "__dict__"):
            for item in vars(value).values():
                visit(item, level + 1)

    for value in namespace.values():
        visit(value, 0)
    return list(found.values())


def close_client(client: Any) -> None:
    if isinstance(client, AsyncCodexClient):
        asyncio.run(client.close())
    else:
        client.close()


# --- running an example ------------------------------------------------------------------------


@dataclass
class Run:
    """One example after ``exec``: what it printed and left behind, and the model it talked to."""

    example: Example
    namespace: dict[str, Any]
    stdout: str
    server: ModelServer
    workdir: Path
    clients: list[Any] = field(default_factory=list)  # every client created while the test ran

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]

    def new_client(self, **kwargs: Any) -> CodexClient:
        """A client for exercising what the example defined (closed with the others)."""
        return CodexClient(**kwargs)

    def requests_for(self, user_text: str) -> list[Any]:
        """Model requests whose last real user message is ``user_text``."""
        return [r for r in self.server.requests if r.user_texts() and r.user_texts()[-1] == user_text]


class GuideRunner:
    """Runs examples in a fresh working directory, with ``CODEX_HOME`` on the offline model."""

    def __init__(
        self,
        server: ModelServer,
        workdir: Path,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.server = server
        self.workdir = workdir
        self.capsys = capsys
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.clients: list[Any] = []
        self.runs: list[Run] = []
        self.daemon: Any = None  # a DaemonProcess once start_daemon() ran

    def start_daemon(self) -> None:
        """A claif-codd of this test's own, found by clients through ``CLAIF_COD_SOCKET``; stopped by close()."""
        if str(DAEMON_HELPERS) not in sys.path:
            sys.path.append(str(DAEMON_HELPERS))
        from daemon_process import DaemonProcess

        run_dir = self.tmp_path / "daemon"
        run_dir.mkdir(mode=0o700)
        socket = run_dir / "codd.sock"
        self.daemon = DaemonProcess(
            socket=socket,
            state_dir=self.tmp_path / "daemon-state",
            log=self.tmp_path / "codd.log",
            env={**os.environ, "CLAIF_COD_SOCKET": str(socket)},
        )
        self.daemon.start()
        self.monkeypatch.setenv("CLAIF_COD_SOCKET", str(socket))

    def track(self, client: Any) -> None:
        self.clients.append(client)

    def run(self, example: Example) -> Run:
        namespace: dict[str, Any] = {"__name__": EXAMPLE_MODULE, "__builtins__": builtins}
        missing = free_names(example.code) - CONTEXT.keys()
        assert not missing, (
            f"example {example.id!r} ({example.path}:{example.line}) uses {sorted(missing)}, "
            f"which neither it nor the context the guide sets up earlier ({sorted(CONTEXT)}) defines"
        )
        for name in sorted(free_names(example.code)):
            namespace[name] = CONTEXT[name]()
        code = example.compile()
        self.capsys.readouterr()
        try:
            exec(code, namespace)
        finally:
            stdout = self.capsys.readouterr().out
            run = Run(example, namespace, stdout, self.server, self.workdir, self.clients)
            self.runs.append(run)
        return run

    def close(self) -> list[str]:
        """Close every client (tracked or left in a namespace), then the daemon; returns what failed."""
        clients: dict[int, Any] = {id(c): c for c in self.clients}
        for run in self.runs:
            clients.update({id(c): c for c in find_clients(run.namespace)})
        problems = []
        for client in clients.values():
            try:
                close_client(client)
            except Exception as exc:  # keep closing the others
                problems.append(f"closing {type(client).__name__}: {exc!r}")
        if self.daemon is not None and (code := self.daemon.stop()) != 0:
            problems.append(f"claif-codd exited with {code}:\n{self.daemon.log.read_text()}")
        return problems


@contextlib.contextmanager
def guide_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[GuideRunner]:
    """A running offline model, ``CODEX_HOME`` aimed at it, and a fresh working directory.

    Every ``CodexClient``/``AsyncCodexClient`` created meanwhile (even inside an example's
    functions, where the example drops it) is closed afterwards, then the claif-codd that
    :meth:`GuideRunner.start_daemon` may have started; every process the test started must be
    gone by then.
    """
    before = child_pids()
    workdir = tmp_path / "work"
    for folder in EXAMPLE_FOLDERS:
        (workdir / folder).mkdir(parents=True)
    with ModelServer() as server:
        home = write_codex_home(tmp_path / "codex-home", server.url)
        write_codex_home(workdir / EXAMPLE_CODEX_HOME, server.url)
        monkeypatch.setenv("CODEX_HOME", str(home))
        monkeypatch.setenv("CLAIF_COD_DAEMON", "off")  # never a daemon someone left running
        monkeypatch.delenv("CLAIF_COD_AUTOSTART", raising=False)  # nor one a client would start
        monkeypatch.chdir(workdir)
        runner = GuideRunner(server, workdir, capsys, tmp_path, monkeypatch)
        for cls in CLIENT_TYPES:
            original = cls.__init__

            def tracking_init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
                __original(self, *args, **kwargs)
                runner.track(self)

            monkeypatch.setattr(cls, "__init__", tracking_init)
        try:
            yield runner
        finally:
            problems = runner.close()
    assert not problems, problems
    if before is not None:
        deadline = time.monotonic() + 5.0
        while (left := (child_pids() or set()) - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"Codex processes still running after every client was closed: {sorted(left)}"


def unsupported_here(example_id: str) -> str | None:
    """Why an example cannot run against the Codex under test, or None.

    "Only Your Tools" needs tools-only mode, which claif_cod refuses on a Codex it has no recipe for
    (``engine.tools_only.recipe``; the refusal itself is tested in test_tools_only.py).
    """
    if example_id != "only-your-tools":
        return None
    from claif_cod.engine.discovery import find_codex, probe
    from claif_cod.engine.errors import InvalidRequest
    from claif_cod.engine.tools_only import recipe

    version = probe(find_codex(None)).version
    try:
        recipe(version)
    except InvalidRequest as refused:
        return f"codex {version}: {refused.message}"
    return None
