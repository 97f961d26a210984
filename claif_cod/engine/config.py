"""What selects a warm Codex process, and the per-request knobs that do not."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from claif_cod.engine.discovery import CodexBinary
from claif_cod.engine.errors import CodexNotFound, InvalidRequest


@dataclass(frozen=True)
class CodexConfig:
    """The caller's Codex settings, before the binary is resolved."""

    working_dir: str
    codex_path: str | None = None
    codex_home: str | None = None
    api_key: str | None = field(default=None, repr=False)
    sandbox_mode: str | None = None
    approval_policy: str | None = None


@dataclass(frozen=True)
class ProcessKey:
    """One warm ``codex app-server`` serves exactly one of these."""

    codex_path: str
    codex_home: str | None
    key_fingerprint: str | None
    working_dir: str
    sandbox: str | None
    approval: str | None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """For each request with these settings: what was changed to suit the binary (a retired approval value)."""

    @classmethod
    def resolve(cls, config: CodexConfig, binary: CodexBinary, *, default_home: str | None) -> ProcessKey:
        """``default_home``: the ``CODEX_HOME`` a child gets when the caller names none (the engine's
        own), so that a caller naming it and one that does not share a process."""
        requested = config.approval_policy
        approval = binary.approval_policy(requested)
        said: tuple[str, ...] = ()
        if approval != requested:
            version = binary.version
            said = (f"approval_policy={requested!r} is not accepted by codex {version}; using {approval!r} instead",)
        return cls(
            codex_path=binary.path,
            codex_home=config.codex_home or default_home,
            key_fingerprint=key_fingerprint(config.api_key),
            working_dir=config.working_dir,
            sandbox=binary.check_sandbox(config.sandbox_mode),
            approval=approval,
            warnings=said,
        )

    def missing_directory(self) -> InvalidRequest | None:
        """The refusal of a working directory or ``CODEX_HOME`` that is not there (two ``stat`` calls):
        Codex cannot start in a missing working directory, nor with a missing ``CODEX_HOME``, and a
        process that started before it was deleted would run the turn there (Codex's commands then
        fail in it, and its rollouts with it), so a request is refused either way."""
        for setting, path in (("working_dir", self.working_dir), ("codex_home", self.codex_home)):
            if path is not None and not os.path.isdir(path):
                return InvalidRequest(f"{setting} {path} does not exist or is not a directory", param=setting)
        return None

    def missing_binary(self) -> CodexNotFound | None:
        """The refusal of a Codex binary that is no longer there, or no longer executable (uninstalled, or
        moved away under a running daemon, whose probe of it stands): like a missing directory, the
        caller's to mend, not a crash to back off from, so Codex starts as soon as it is back."""
        path = self.codex_path
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return None
        state = "no longer executable" if os.path.exists(path) else "no longer there"
        return CodexNotFound([f"{path} ({state}: uninstalled, or moved away?)"])


def key_fingerprint(api_key: str | None) -> str | None:
    """Tells keys apart without keeping them: 12 hex digits of a SHA-256."""
    if not api_key:
        return None
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]
