"""A socket client built from the documented framing alone: no claif_cod import.

Usage: raw_client.py SOCKET WORKDIR PROMPT. Prints one JSON line per received message.
"""

from __future__ import annotations

import json
import socket
import struct
import sys


def send(sock: socket.socket, message: dict[str, object]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


def receive(sock: socket.socket) -> dict[str, object]:
    header = recv_exactly(sock, 4)
    (length,) = struct.unpack(">I", header)
    return json.loads(recv_exactly(sock, length))


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("daemon closed the connection")
        data += chunk
    return data


def main() -> None:
    path, workdir, prompt = sys.argv[1:4]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    send(
        sock,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "hello",
            "params": {"protocol_version": 1, "package_version": "raw", "client_name": "raw-test"},
        },
    )
    print(json.dumps(receive(sock)), flush=True)
    send(
        sock,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "chat.completions.create",
            "params": {
                "body": {"model": "o4-mini", "stream": True, "messages": [{"role": "user", "content": prompt}]},
                "options": {"working_dir": workdir},
            },
        },
    )
    while True:
        message = receive(sock)
        print(json.dumps(message), flush=True)
        if message.get("id") == 2:
            break
    assert "claif_cod" not in sys.modules
    sock.close()


if __name__ == "__main__":
    main()
