"""Finding the Codex binary and learning what the installed version accepts.

Codex's flags and enum values churn between releases (``on-failure`` disappeared around
0.145), so instead of hard-coding them we ask the binary itself: ``codex --version`` and
the JSON Schema it generates for its app-server protocol, once per binary (remembered on disk).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from claif_cod.engine import probe_cache
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


def probe(path: str) -> CodexBinary:
    """Version and accepted enum values of the binary at ``path``.

    Remembered per file identity: in this process, and on disk across processes
    (:mod:`claif_cod.engine.probe_cache`), so a warm machine starts without running Codex.
    """
    return _probe(probe_cache.Identity.of(path))


@functools.lru_cache(maxsize=16)
def _probe(identity: probe_cache.Identity) -> CodexBinary:
    path = identity.path
    entry = probe_cache.load(identity)
    if entry is None:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise CodexStartFailed(f"`{path} --version` failed: {exc}") from exc
        version = out.stdout.strip().rsplit(" ", 1)[-1]
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
            subprocess.run(
                [path, "app-server", "generate-json-schema", "--out", out_dir],
                capture_output=True,
                timeout=30,
                check=True,
            )
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
