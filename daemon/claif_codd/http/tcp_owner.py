"""Which local user owns the other end of a loopback TCP connection.

TCP has no ``SO_PEERCRED``, but the kernel knows each socket's owner. The client's socket of a
loopback connection is the one whose local end is the peer address we accepted and whose remote
end is our own address; we ask for exactly that socket:

1. with one ``sock_diag`` netlink request (what ``ss`` uses; about 10 µs whatever the number of
   sockets on the machine);
2. where netlink is unavailable, by reading ``/proc/net/tcp`` and ``/proc/net/tcp6``, which
   costs milliseconds per thousand sockets.

Building and parsing the messages and tables are pure functions, tested without sockets.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Address = tuple[IP, int]

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_NLMSG_HEADER = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQ_HEADER = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states
_SOCKID_TAIL = struct.Struct("=III")  # interface, cookie[2]
_UID_OFFSET = _NLMSG_HEADER.size + 4 + 48 + 12
"""inet_diag_msg: family, state, timer, retrans; the 48-byte socket id; expires, rqueue, wqueue; uid."""


def address(host: str, port: int) -> Address:
    """An address in canonical form: IPv4-mapped IPv6 addresses become IPv4."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, port
    return ip, port


# --- sock_diag ----------------------------------------------------------------------------------


def diag_request(local: Address, remote: Address, seq: int = 1) -> bytes:
    """A ``SOCK_DIAG_BY_FAMILY`` request for the one TCP socket from ``local`` to ``remote``."""
    family = socket.AF_INET if local[0].version == 4 else socket.AF_INET6
    sockid = (
        struct.pack("!HH", local[1], remote[1])
        + local[0].packed.ljust(16, b"\0")
        + remote[0].packed.ljust(16, b"\0")
        + _SOCKID_TAIL.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    )
    body = _REQ_HEADER.pack(family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    return _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0) + body


def diag_reply_uid(reply: bytes) -> int | None:
    """The uid in a ``sock_diag`` answer; None when the kernel found no such socket."""
    if len(reply) < _NLMSG_HEADER.size:
        return None
    _length, kind, _flags, _seq, _pid = _NLMSG_HEADER.unpack_from(reply)
    if kind != SOCK_DIAG_BY_FAMILY or len(reply) < _UID_OFFSET + 4:
        return None  # NLMSG_ERROR: e.g. ENOENT when the client has already gone
    uid: int = struct.unpack_from("=I", reply, _UID_OFFSET)[0]
    return uid


def _diag_lookup(local: Address, remote: Address) -> int | None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendto(diag_request(local, remote), (0, 0))
        return diag_reply_uid(nl.recv(8192))


# --- /proc/net/tcp ------------------------------------------------------------------------------


def _decode(field: str) -> Address:
    """``0100007F:1F90``: the kernel prints each 32-bit word of the address in host byte order."""
    hex_ip, hex_port = field.split(":")
    words = [int(hex_ip[i : i + 8], 16) for i in range(0, len(hex_ip), 8)]
    ip = ipaddress.ip_address(struct.pack(f"={len(words)}I", *words))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(hex_port, 16)


def owner_in_table(table: str, local: Address, remote: Address) -> int | None:
    """The uid of the socket in ``table`` (a /proc/net/tcp text) from ``local`` to ``remote``."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            if _decode(fields[1]) == local and _decode(fields[2]) == remote:
                return int(fields[7])
        except ValueError:
            continue
    return None


def _proc_lookup(local: Address, remote: Address) -> int | None:
    for table in TABLES:
        try:
            text = table.read_text()
        except OSError:
            continue
        uid = owner_in_table(text, local, remote)
        if uid is not None:
            return uid
    return None


def loopback_peer_uid(peer: Address, ours: Address) -> int | None:
    """The uid owning the client end of the connection ``peer`` → ``ours``, or None if unknown."""
    try:
        return _diag_lookup(peer, ours)
    except OSError:  # no netlink here (another OS, a restricted sandbox): the slow way
        return _proc_lookup(peer, ours)
