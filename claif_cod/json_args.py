"""``create()``'s arguments as a JSON body, when they are already plain JSON.

A value JSON would change or cannot hold (a tuple, a set, bytes, a date, NaN, a key that is not a
string, a dataclass) does not come back equal from a JSON round trip, and a model, an iterator or
``NotGiven`` does not encode at all: such arguments are left to openai's own ``create``.  The round
trip runs in C, but decoding is most of it and grows with the history a client re-sends every
turn (the messages, or Responses' input items).  So the decode of a history's JSON is kept, and a
later history whose JSON begins with exactly those bytes decodes only what follows them: the same
bytes decode to the same values, so the check is the same, only cheaper.  The kept values are never
handed out, so nothing can change them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import msgspec

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_HISTORIES = ("messages", "input")


class _Decodes:
    """The decoded values of recent histories' JSON arrays, looked up by the bytes a later history's
    JSON begins with; at most ``capacity`` of them and ``max_bytes`` of JSON (their values hold
    several times that).  Shared by every client of the process, on any thread."""

    def __init__(self, capacity: int = 16, max_bytes: int = 1 << 20) -> None:
        self._capacity, self._max_bytes = capacity, max_bytes
        self._kept: OrderedDict[bytes, list[Any]] = OrderedDict()
        """A history's JSON without its closing bracket → its values."""
        self._bytes = 0
        self._lock = threading.Lock()

    def decode(self, array: bytes) -> list[Any]:
        """``array`` (msgspec's encoding of a list: no spaces) decoded."""
        values: list[Any]
        with self._lock:
            earlier = next((head for head in reversed(self._kept) if array.startswith(head)), None)
            if earlier is None:
                values = _decode(array)
            else:
                rest = array[len(earlier) :]
                if rest == b"]":
                    self._kept.move_to_end(earlier)
                    return self._kept[earlier]
                if rest[:1] != b",":  # its last value goes on: not more values
                    values = _decode(array)
                else:
                    values = [*self._kept[earlier], *_decode(b"[" + rest[1:])]
                    self._drop(earlier)
            self._keep(array[:-1], values)
            return values

    def _keep(self, head: bytes, values: list[Any]) -> None:
        if len(head) > self._max_bytes or len(values) < 2:
            return
        self._kept[head] = values
        self._bytes += len(head)
        while len(self._kept) > self._capacity or self._bytes > self._max_bytes:
            self._drop(next(iter(self._kept)))

    def _drop(self, head: bytes) -> None:
        del self._kept[head]
        self._bytes -= len(head)

    def forget_after_fork(self) -> None:
        """In a forked child: another thread of the parent may have held the lock, mid-update."""
        self._lock = threading.Lock()
        self._kept.clear()
        self._bytes = 0


_decodes = _Decodes()
os.register_at_fork(after_in_child=lambda: _decodes.forget_after_fork())


class JsonBody:
    """``create()``'s arguments encoded as a body, and whether they are plain JSON (:meth:`plain`):
    asked apart, so that a sync ``create()`` can ask while Codex works on the turn (see
    :mod:`claif_cod.fast_create`)."""

    __slots__ = ("_params", "_split", "content")

    def __init__(self, params: dict[str, Any]) -> None:
        """Raises ``TypeError`` for arguments JSON cannot encode at all."""
        name = next((n for n in _HISTORIES if type(params.get(n)) is list), None)
        self._params = params
        self._split: tuple[bytes, dict[str, Any], bytes, list[Any]] | None = None
        """The history's JSON apart from the other arguments': its decode is kept."""
        if name is None:
            self.content = _encode(params)
            return
        history = params[name]
        rest = {k: v for k, v in params.items() if k != name}
        head, array = _encode(rest), _encode(history)
        self._split = (head, rest, array, history)
        self.content = b"".join((head[:-1], b"," if rest else b"", b'"', name.encode(), b'":', array, b"}"))

    def plain(self) -> bool:
        """Whether a JSON round trip gives the arguments back unchanged."""
        if self._split is None:
            return bool(_decode(self.content) == self._params)
        head, rest, array, history = self._split
        return bool(_decode(head) == rest and _decodes.decode(array) == history)


def encoded(params: dict[str, Any]) -> JsonBody | None:
    """``params`` as a body, or None when JSON cannot encode them."""
    try:
        return JsonBody(params)
    except TypeError:
        return None
