"""What ``--http`` and its companion options mean, checked before anything listens."""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

ENV_TOKEN = "CLAIF_CODD_HTTP_TOKEN"
DEFAULT_SSE_KEEPALIVE_S = 15.0
"""Well within the 60 s of nginx's ``proxy_read_timeout``, and of most proxies' idle timeouts."""


def http_url(host: str, port: int) -> str:
    """The endpoint's base URL (an IPv6 host in brackets), as ``claif-codd status`` shows it."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpSettingsError(ValueError):
    """An ``--http`` setting that cannot be served safely; the message names the fix."""


@dataclass(frozen=True)
class HttpSettings:
    host: str
    port: int
    token: str | None = field(default=None, repr=False)
    working_dir: str = field(default_factory=lambda: str(Path.home()))
    """Where Codex runs for requests that do not name a directory (``X-Claif-Cod-Working-Dir``)."""
    strict: bool = False
    """``--http-strict``: strict mode for requests whose body does not set ``strict`` itself."""
    sse_keepalive: float = DEFAULT_SSE_KEEPALIVE_S
    """``--sse-keepalive``: seconds of silence in a stream (its first event included) after which it
    gets an SSE comment, so that a proxy does not cut a turn that works without a word; 0: never."""

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def check(self) -> None:
        if not self.loopback and self.token is None:
            raise HttpSettingsError(
                f"--http {self.host}: serving beyond loopback needs a bearer token "
                f"(--http-token-file FILE or ${ENV_TOKEN})"
            )
        if not os.path.isdir(self.working_dir):
            raise HttpSettingsError(f"--http-working-dir {self.working_dir}: no such directory")
        if not os.path.isabs(self.working_dir):
            raise HttpSettingsError(f"--http-working-dir {self.working_dir}: not an absolute path")


def parse_listen(value: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT``; a bare port listens on 127.0.0.1."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", value
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise HttpSettingsError(f"--http {value}: the host must be an IP address (or localhost)") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise HttpSettingsError(f"--http {value}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def beyond_loopback(listen: str) -> bool:
    """Whether ``--http LISTEN`` listens beyond loopback (and so needs a token); False for a value that
    does not parse, which :func:`parse_listen` then reports in the full check."""
    try:
        host, _ = parse_listen(listen)
    except HttpSettingsError:
        return False
    return not ipaddress.ip_address(host).is_loopback


def read_token(path: Path | None) -> str | None:
    """The bearer token from ``path`` (which only its owner may read), else from the environment."""
    if path is None:  # stripped as the file's is: a newline or space pasted with it is not part of it
        return os.environ.get(ENV_TOKEN, "").strip() or None
    try:
        info = path.stat()
        text = path.read_text().strip()
    except OSError as exc:
        raise HttpSettingsError(f"--http-token-file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise HttpSettingsError(f"--http-token-file {path}: others can read it; run `chmod 600 {path}`")
    if not text:
        raise HttpSettingsError(f"--http-token-file {path}: the file is empty")
    return text
