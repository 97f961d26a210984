"""The packaged systemd user units, as ``claif-codd install-systemd`` writes them."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from claif_cod.transport.socket_path import ENV_SOCKET, SOCKET_NAME

UNIT_FILES = ("claif-codd.socket", "claif-codd.service")

# A word systemd reads back unchanged when written as it is: no blank, quote, backslash, specifier
# (%) or variable ($), which would each change or split it.
_PLAIN_WORD = re.compile(r"[\w@+=:,./-]+")


def _unit_dir() -> Path:
    """Wheels carry systemd/ as claif_codd/units; a source checkout has it at the top level."""
    packaged = Path(__file__).with_name("units")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "systemd"


def user_unit_dirs(environ: Mapping[str, str]) -> set[Path]:
    """The folders ``systemctl --user`` looks for units in (systemd.unit(5), "User Unit Search Path")."""
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    data = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = (environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")
    found = [config, data, Path("/etc"), *(Path(d) for d in data_dirs if d)]
    if environ.get("XDG_RUNTIME_DIR"):
        found.append(Path(environ["XDG_RUNTIME_DIR"]))
    dirs = {(d / "systemd" / "user") for d in found}
    return {d.resolve() for d in dirs} | {Path("/usr/lib/systemd/user"), Path("/usr/local/lib/systemd/user")}


def enable_commands(target: Path, units: list[str], environ: Mapping[str, str]) -> list[list[str]]:
    """What enables ``units`` written to ``target``: units outside systemd's search path are linked
    into it first (enabled by their name, systemd would not find them)."""
    commands = [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", *units]]
    if target.resolve() in user_unit_dirs(environ):
        return commands
    return [["systemctl", "--user", "link", *(str(target.resolve() / name) for name in UNIT_FILES)], *commands]


def exec_word(word: str, *, executable: bool = False) -> str:
    """``word`` as one word of an ``ExecStart=`` line, which systemd splits at blanks, unquotes (C escapes
    inside and outside quotes), expands ``%`` specifiers in (``%%`` is a ``%``) and, in the arguments,
    expands ``${VAR}`` in (``$$`` is a ``$``): a shell's quoting (``shlex.quote``) is not systemd's, and a
    virtualenv under ``~/My Projects`` would start ``~/My``.  systemd expands no variable in the path of
    the program it runs, so there a ``$`` stays single."""
    text = word.replace("%", "%%")
    if not executable:
        text = text.replace("$", "$$")
    if _PLAIN_WORD.fullmatch(word):
        return text
    quoted = "".join(
        "\\\\" if ch == "\\" else '\\"' if ch == '"' else f"\\x{ord(ch):02x}" if ord(ch) < 0x20 else ch for ch in text
    )
    return f'"{quoted}"'


def unit_texts(serve_args: list[str] | None = None) -> dict[str, str]:
    """The packaged units, with ExecStart pointing at this installation's interpreter (plus ``serve_args``)."""
    texts = {name: _unit_dir().joinpath(name).read_text() for name in UNIT_FILES}
    exec_start = f"ExecStart={exec_word(sys.executable, executable=True)} -m claif_codd serve"
    extra = "".join(f" {exec_word(arg)}" for arg in serve_args or [])
    texts["claif-codd.service"] = (
        "\n".join(
            exec_start + line.split(" serve", 1)[1] + extra if line.startswith("ExecStart=") else line
            for line in texts["claif-codd.service"].splitlines()
        )
        + "\n"
    )
    return texts


def socket_elsewhere(environ: Mapping[str, str]) -> str | None:
    """Why the units would serve none of this environment's clients, or None.  The socket unit listens on
    ``%t/claif-cod/codd.sock``, systemd's ``$XDG_RUNTIME_DIR``, where a client looks only when
    ``$CLAIF_COD_SOCKET`` names no other path: with it set elsewhere, the service would be installed and
    enabled, and every client would still run Codex in its own process (``daemon="auto"``) or fail."""
    explicit = environ.get(ENV_SOCKET)
    if not explicit:
        return None
    runtime = environ.get("XDG_RUNTIME_DIR")
    listening = os.path.join(runtime, "claif-cod", SOCKET_NAME) if runtime else None
    if listening is not None and os.path.abspath(explicit) == os.path.abspath(listening):
        return None
    where = listening or "$XDG_RUNTIME_DIR/claif-cod/codd.sock"
    return (
        f"the units listen on {where} (%t/claif-cod/{SOCKET_NAME}), but ${ENV_SOCKET} sends this environment's "
        f"clients to {explicit}: unset {ENV_SOCKET} (in your shell profile too) to use the service"
    )


UNIT_MODE = 0o644
"""A unit file's mode whatever the umask: its ``ExecStart`` runs as you, so nobody else may write it
(under umask 000 ``write_text`` made it 0666, and any local user could have put their command there)."""


def write_unit(path: Path, text: str) -> None:
    """Write ``path`` as :data:`UNIT_MODE` (an existing file too: one left writable by others is closed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, UNIT_MODE)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, UNIT_MODE)
        out.write(text)
