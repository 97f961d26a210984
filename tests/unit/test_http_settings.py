"""``--http`` settings and the loopback peer lookup behind the HTTP endpoint's same-user check."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from claif_codd.cli import main
from claif_codd.http import tcp_owner
from claif_codd.http.options import checked_http_settings, http_args
from claif_codd.http.settings import (
    DEFAULT_SSE_KEEPALIVE_S,
    ENV_TOKEN,
    HttpSettings,
    HttpSettingsError,
    parse_listen,
    read_token,
)
from claif_codd.http.tcp_owner import address, diag_reply_uid, diag_request, loopback_peer_uid, owner_in_table

# --- --http [HOST:]PORT ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("0", ("127.0.0.1", 0)),
        ("localhost:9", ("127.0.0.1", 9)),
        ("127.0.0.2:80", ("127.0.0.2", 80)),
        ("[::1]:8443", ("::1", 8443)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("example.com:80", "IP address"),
        ("127.0.0.1:65536", "0 to 65535"),
        ("port", "0 to 65535"),
        (":80", "IP address"),
    ],
)
def test_bad_listen_addresses_name_the_problem(value: str, message: str) -> None:
    with pytest.raises(HttpSettingsError, match=message):
        parse_listen(value)


def test_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(HttpSettingsError, match="needs a bearer token"):
        HttpSettings("0.0.0.0", 80, working_dir=str(tmp_path)).check()
    HttpSettings("0.0.0.0", 80, token="t", working_dir=str(tmp_path)).check()
    HttpSettings("::1", 80, working_dir=str(tmp_path)).check()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sse-keepalive", "1"], "--sse-keepalive needs --http"),
        (["--http", "0", "--sse-keepalive", "-1"], "not in the range x>=0"),
        (["--http", "0", "--sse-keepalive", "nan"], "nan is not a number of seconds"),
        (["--http", "0", "--sse-keepalive", "inf"], "inf is not a number of seconds"),
    ],
)
def test_sse_keepalive_takes_finite_seconds_with_http(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_sse_keepalive_reaches_the_settings_and_a_serve_started_elsewhere(tmp_path: Path) -> None:
    settings = checked_http_settings("0", None, tmp_path, sse_keepalive=0.2)
    assert settings is not None and settings.sse_keepalive == 0.2
    default = checked_http_settings("0", None, tmp_path)
    assert default is not None and default.sse_keepalive == DEFAULT_SSE_KEEPALIVE_S == 15
    assert http_args("0", None, None, sse_keepalive=0.0) == ["--http", "0", "--sse-keepalive", "0.0"]


def test_working_dir_must_be_an_absolute_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(HttpSettingsError, match=f"^--http-working-dir {tmp_path.name}: not an absolute path$"):
        HttpSettings("127.0.0.1", 80, working_dir=tmp_path.name).check()
    missing = tmp_path / "missing"
    with pytest.raises(HttpSettingsError, match=f"^--http-working-dir {missing}: no such directory$"):
        HttpSettings("127.0.0.1", 80, working_dir=str(missing)).check()


def test_token_is_never_in_the_repr() -> None:
    assert "s3cret" not in repr(HttpSettings("127.0.0.1", 80, token="s3cret"))


# --- the token ----------------------------------------------------------------------------------------


def test_token_file_must_be_private_and_non_empty(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  abc123\n")
    path.chmod(0o600)
    assert read_token(path) == "abc123"
    path.chmod(0o640)
    with pytest.raises(HttpSettingsError, match="chmod 600"):
        read_token(path)
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(HttpSettingsError, match="empty"):
        read_token(path)
    with pytest.raises(HttpSettingsError, match="No such file"):
        read_token(tmp_path / "missing")


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    assert read_token(None) is None
    monkeypatch.setenv(ENV_TOKEN, "from-env")
    assert read_token(None) == "from-env"
    monkeypatch.setenv(ENV_TOKEN, " from-env\n")  # pasted with a newline: stripped, as a file's token is
    assert read_token(None) == "from-env"
    monkeypatch.setenv(ENV_TOKEN, " \n")
    assert read_token(None) is None


# --- who owns a loopback connection's client end ----------------------------------------------------------

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def row(local: str, remote: str, uid: int) -> str:
    return f"   0: {local} {remote} 01 00000000:00000000 00:00000000 00000000  {uid}        0 4242 1 0 20 4 30 10 -1\n"


little_endian = pytest.mark.skipif(sys.byteorder != "little", reason="captured tables are from a little-endian host")


@little_endian
def test_the_client_row_is_found_not_the_servers() -> None:
    # 127.0.0.1:8080 is the server (uid 1000), 127.0.0.1:51000 the client (uid 2000).
    table = HEADER + row("0100007F:1F90", "0100007F:C738", 1000) + row("0100007F:C738", "0100007F:1F90", 2000)
    peer, ours = address("127.0.0.1", 51000), address("127.0.0.1", 8080)
    assert owner_in_table(table, peer, ours) == 2000
    assert owner_in_table(table, ours, peer) == 1000
    assert owner_in_table(table, address("127.0.0.1", 51001), ours) is None


@little_endian
def test_ipv6_and_ipv4_mapped_rows() -> None:
    loop6 = "00000000000000000000000001000000"
    mapped = "0000000000000000FFFF00000100007F"
    table = HEADER + row(f"{loop6}:C738", f"{loop6}:1F90", 3000) + row(f"{mapped}:C739", f"{mapped}:1F90", 4000)
    assert owner_in_table(table, address("::1", 51000), address("::1", 8080)) == 3000
    assert owner_in_table(table, address("::ffff:127.0.0.1", 51001), address("127.0.0.1", 8080)) == 4000


def test_malformed_rows_are_skipped() -> None:
    table = HEADER + "garbage\n" + "   0: zz:zz yy:yy 01 0 0 0 0 0 0\n"
    assert owner_in_table(table, address("127.0.0.1", 1), address("127.0.0.1", 2)) is None


def test_address_canonical_form() -> None:
    assert address("::ffff:127.0.0.1", 5) == (ipaddress.ip_address("127.0.0.1"), 5)
    assert address("fe80::1%lo", 5) == (ipaddress.ip_address("fe80::1"), 5)


def test_diag_request_asks_for_exactly_one_socket() -> None:
    request = diag_request(address("127.0.0.1", 51000), address("127.0.0.2", 8080), seq=7)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags, seq, pid) == (len(request), 20, 1, 7, 0) and length == 16 + 8 + 48
    family, protocol = request[16], request[17]
    assert (family, protocol) == (socket.AF_INET, socket.IPPROTO_TCP)
    sockid = request[24:]
    assert struct.unpack("!HH", sockid[:4]) == (51000, 8080)  # ports in network byte order
    assert sockid[4:20] == bytes([127, 0, 0, 1]) + bytes(12)
    assert sockid[20:36] == bytes([127, 0, 0, 2]) + bytes(12)
    assert sockid[40:48] == b"\xff" * 8  # no cookie: look the socket up by its addresses
    v6 = diag_request(address("::1", 1), address("::1", 2))
    assert v6[16] == socket.AF_INET6 and v6[28:44] == ipaddress.ip_address("::1").packed


def test_diag_reply_uid() -> None:
    header = struct.pack("=IHHII", 16 + 72, 20, 2, 1, 0)
    message = bytes([2, 1, 0, 0]) + bytes(48) + struct.pack("=IIIII", 0, 0, 0, 1234, 99)
    assert diag_reply_uid(header + message) == 1234
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + bytes(16)  # ENOENT
    assert diag_reply_uid(error) is None
    assert diag_reply_uid(b"") is None
    assert diag_reply_uid(header + message[:20]) is None


@pytest.fixture
def live_connection() -> Iterator[tuple[tcp_owner.Address, tcp_owner.Address]]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()):
            accepted, peer = server.accept()
            with accepted:
                yield address(*peer), address(*accepted.getsockname())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sock_diag and /proc/net/tcp")
def test_a_live_loopback_connection_is_ours_by_either_lookup(
    live_connection: tuple[tcp_owner.Address, tcp_owner.Address],
) -> None:
    peer, ours = live_connection
    assert loopback_peer_uid(peer, ours) == os.getuid()
    assert tcp_owner._diag_lookup(peer, ours) == os.getuid()
    assert tcp_owner._proc_lookup(peer, ours) == os.getuid()
    # The server's own end is a different socket; a made-up one does not exist.
    assert tcp_owner._diag_lookup(peer, address("127.0.0.1", 1)) is None
    assert tcp_owner._proc_lookup(peer, address("127.0.0.1", 1)) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc/net/tcp")
def test_without_netlink_the_proc_tables_answer(
    live_connection: tuple[tcp_owner.Address, tcp_owner.Address], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_netlink(*_args: object) -> int | None:
        raise PermissionError("netlink is not allowed here")

    monkeypatch.setattr(tcp_owner, "_diag_lookup", no_netlink)
    assert loopback_peer_uid(*live_connection) == os.getuid()
