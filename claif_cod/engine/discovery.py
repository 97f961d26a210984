"""Finding the Codex binary and learning what the installed version accepts.

Codex's flags and enum values churn between releases (``on-failure`` disappeared around
0.145), so instead of hard-coding them we ask the binary itself: ``codex --version`` and
the JSON Schema it generates for its app-server protocol, once per binary (remembered on disk).

A probe runs on a thread of its own, never on an event loop's default executor (where a binary
whose ``--version`` hangs would hold workers that image decoding and directory checks need), and
callers asking about the same binary while it runs share it: one process, one answer.  Each probe
command runs in a process group of its own, killed whole when it ends, fails or times out, so a
wrapper script's children (npm's ``codex`` is a Node wrapper) are not left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from claif_cod.engine import probe_cache
from claif_cod.engine.ansi import strip_ansi
from claif_cod.engine.errors import CodexNotFound, CodexStartFailed, InvalidRequest

ENV_CODEX_PATH = "CLAIF_COD_CODEX_PATH"

# What each retired approval value means today, nearest first.
_APPROVAL_FALLBACKS: dict[str, tuple[str, ...]] = {
    "on-failure": ("on-request", "untrusted", "never"),
    "untrusted": ("on-request", "never"),
    "on-request": ("untrusted", "never"),
    "never": (),
}


@dataclass(frozen=True)
class CodexBinary:
    path: str
    version: str
    approval_values: frozenset[str]
    sandbox_values: frozenset[str]

    def approval_policy(self, requested: str | None) -> str | None:
        """The value this binary accepts that is nearest to ``requested`` (the caller says so if mapped)."""
        if requested is None or requested in self.approval_values:
            return requested
        for candidate in _APPROVAL_FALLBACKS.get(requested, ()):
            if candidate in self.approval_values:
                return candidate
        accepted = ", ".join(sorted(self.approval_values))
        raise InvalidRequest(
            f"approval_policy={requested!r} is unknown to codex {self.version}; use one of {accepted}",
            param="approval_policy",
        )

    def check_sandbox(self, requested: str | None) -> str | None:
        if requested is None or requested in self.sandbox_values:
            return requested
        accepted = ", ".join(sorted(self.sandbox_values))
        raise InvalidRequest(
            f"sandbox_mode={requested!r} is unknown to codex {self.version}; use one of {accepted}",
            param="sandbox_mode",
        )


def candidate_paths(codex_path: str | None) -> list[tuple[str, str | None]]:
    """Places to look, in order, as ``(description, path or None when absent)``."""
    places: list[tuple[str, str | None]] = []
    if codex_path:
        places.append((f"codex_path={codex_path}", codex_path))
    env_path = os.environ.get(ENV_CODEX_PATH)
    if env_path:
        places.append((f"${ENV_CODEX_PATH}={env_path}", env_path))
    places.append(("`codex` on PATH", shutil.which("codex")))
    places.append(("bundled openai-codex-cli-bin", _bundled_path()))
    return places


def _bundled_path() -> str | None:
    try:
        from codex_cli_bin import bundled_codex_path
    except ImportError:
        return None
    try:
        return str(bundled_codex_path())
    except Exception:  # the package exists but ships no binary for this platform
        return None


def find_codex(codex_path: str | None = None) -> str:
    """The first usable binary; an explicit ``codex_path`` that does not work is an error, not skipped."""
    searched: list[str] = []
    for description, path in candidate_paths(codex_path):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return native_binary(path)
        missing = path is None or not os.path.exists(path)
        searched.append(f"{description} (not found)" if missing else f"{description} (not executable)")
        if codex_path and description.startswith("codex_path="):
            raise CodexNotFound(searched)
    raise CodexNotFound(searched)


def native_binary(path: str) -> str:
    """Skip npm's Node wrapper: it adds ~60 ms start-up and ~43 MiB per process."""
    real = Path(path).resolve()
    if not _is_script(real):
        return str(real)
    package_root = next((p for p in real.parents if (p / "package.json").is_file()), None)
    if package_root is None:
        return str(real)
    for pattern in (
        "vendor/*/codex/codex",
        "vendor/*/bin/codex",
        "node_modules/@openai/codex-*/vendor/*/codex/codex",
        "node_modules/@openai/codex-*/vendor/*/bin/codex",
    ):
        for found in sorted(package_root.glob(pattern)):
            if os.access(found, os.X_OK) and not _is_script(found):
                return str(found)
    # npm may hoist the platform package next to @openai/codex
    scope_dir = package_root.parent
    for found in sorted(scope_dir.glob("codex-*/vendor/*/*/codex")):
        if os.access(found, os.X_OK) and not _is_script(found):
            return str(found)
    return str(real)


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


PROBE_TIMEOUT_S = 30.0
"""How long each probe command (``--version``, the schema) may take before its process group is killed."""
_PROBED_MAX = 16


def probe(path: str) -> CodexBinary:
    """Version and accepted enum values of the binary at ``path`` (blocks the calling thread).

    Remembered per file identity: in this process, and on disk across processes
    (:mod:`claif_cod.engine.probe_cache`), so a warm machine starts without running Codex.
    """
    identity = probe_cache.Identity.of(path)
    return _probed.get(identity) or _shared_probe(identity).result()


async def find_and_probe(codex_path: str | None = None) -> CodexBinary:
    """:func:`find_codex` and :func:`probe`, for an event loop: the file checks in its default
    executor (quick), the probe on a thread of its own, shared with whoever asks about the same
    binary meanwhile.  A caller cancelled leaves the probe running for the others (and the cache)."""
    identity = await asyncio.to_thread(_find_identity, codex_path)
    known = _probed.get(identity)
    if known is not None:
        return known
    # The shared future is already running: cancelling our wrapper cannot cancel it.
    return await asyncio.wrap_future(_shared_probe(identity))


def _find_identity(codex_path: str | None) -> probe_cache.Identity:
    return probe_cache.Identity.of(find_codex(codex_path))


def forget_probes() -> None:
    """Forget this process's probes (the ones on disk stay): the next :func:`probe` asks again."""
    _probed.clear()


_probed: dict[probe_cache.Identity, CodexBinary] = {}
"""Successful probes in this process, oldest first (failures are not remembered: they may pass)."""
_in_flight: dict[probe_cache.Identity, Future[CodexBinary]] = {}
_in_flight_lock = threading.Lock()
_running: set[subprocess.Popen[bytes]] = set()
"""Probe commands under way: killed (with their groups) if the interpreter exits meanwhile."""


def _shared_probe(identity: probe_cache.Identity) -> Future[CodexBinary]:
    """The probe of ``identity`` under way, or a new one started on a thread of its own."""
    with _in_flight_lock:
        future = _in_flight.get(identity)
        if future is None:
            future = _in_flight[identity] = Future()
            future.set_running_or_notify_cancel()  # nobody's cancellation can take it from the others
            thread = threading.Thread(target=_run_probe, args=(identity, future), name="claif-cod-probe", daemon=True)
            try:
                thread.start()
            except BaseException:
                del _in_flight[identity]
                raise
    return future


def _run_probe(identity: probe_cache.Identity, future: Future[CodexBinary]) -> None:
    try:
        binary = _probe(identity)
    except BaseException as exc:
        with _in_flight_lock:
            _in_flight.pop(identity, None)
        future.set_exception(exc)
        return
    with _in_flight_lock:
        _probed[identity] = binary
        while len(_probed) > _PROBED_MAX:
            del _probed[next(iter(_probed))]
        _in_flight.pop(identity, None)
    future.set_result(binary)


def _probe(identity: probe_cache.Identity) -> CodexBinary:
    path = identity.path
    entry = probe_cache.load(identity)
    if entry is None:
        try:
            out = _run([path, "--version"], check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise CodexStartFailed(f"`{path} --version` failed: {exc}{_stderr_note(exc)}") from exc
        version = out.decode("utf-8", "replace").strip().rsplit(" ", 1)[-1]
        enums = _schema_enums(path)
        if enums is None:  # not remembered: a failure may be passing (a timeout under load)
            return CodexBinary(path, version, _DEFAULT_APPROVAL, _DEFAULT_SANDBOX)
        entry = probe_cache.Entry(identity, version, sorted(enums[0]), sorted(enums[1]))
        probe_cache.store(entry)
    return CodexBinary(
        path=path,
        version=entry.version,
        approval_values=frozenset(entry.approval_values) or _DEFAULT_APPROVAL,
        sandbox_values=frozenset(entry.sandbox_values) or _DEFAULT_SANDBOX,
    )


def _run(args: list[str], *, check: bool) -> bytes:
    """Run a probe command in a process group of its own and return its stdout; whatever is left
    in the group when it is done (exited, failed or timed out) is killed, so nothing stays behind."""
    with subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    ) as proc:
        with _in_flight_lock:
            _running.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=PROBE_TIMEOUT_S)
        finally:
            _kill_group(proc.pid)
            with _in_flight_lock:
                _running.discard(proc)
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, args, stdout, stderr)
    return stdout


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _stderr_note(exc: BaseException) -> str:
    """The last line the failed command wrote to stderr, if any, without terminal escapes."""
    stderr = getattr(exc, "stderr", None)
    if not isinstance(stderr, bytes):
        return ""
    lines = strip_ansi(stderr.decode("utf-8", "replace")).strip().splitlines()
    return f": {lines[-1][-300:]}" if lines else ""


@atexit.register
def _kill_running() -> None:
    """An interpreter exiting mid-probe (its probe threads are daemons) leaves no probe behind."""
    for proc in list(_running):
        _kill_group(proc.pid)


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's probe threads: it starts with no probe under way."""
    global _in_flight_lock
    _in_flight_lock = threading.Lock()
    _in_flight.clear()
    _running.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


_DEFAULT_APPROVAL = frozenset({"untrusted", "on-request", "never"})
_DEFAULT_SANDBOX = frozenset({"read-only", "workspace-write", "danger-full-access"})


def _schema_enums(path: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """Accepted approval and sandbox values from the binary's own protocol schema (None: unreadable).

    The schema is written inside the private cache directory, not the shared temporary folder;
    only when that directory is unusable does it fall back to the temporary folder.
    """
    work = probe_cache.work_dir()
    with tempfile.TemporaryDirectory(prefix="schema-" if work else "claif-cod-schema-", dir=work) as out_dir:
        try:
            _run([path, "app-server", "generate-json-schema", "--out", out_dir], check=True)
            schema = json.loads((Path(out_dir) / "v2" / "ThreadStartParams.json").read_text())
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
    definitions = schema.get("definitions", {}) if isinstance(schema, dict) else {}
    return (
        frozenset(_string_enum(definitions.get("AskForApproval"))) or _DEFAULT_APPROVAL,
        frozenset(_string_enum(definitions.get("SandboxMode"))) or _DEFAULT_SANDBOX,
    )


def _string_enum(node: object) -> list[str]:
    if not isinstance(node, dict):
        return []
    values = [v for v in node.get("enum", []) if isinstance(v, str)]
    for branch in node.get("oneOf", []) + node.get("anyOf", []):
        values.extend(_string_enum(branch))
    return values
