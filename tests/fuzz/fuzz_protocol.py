"""Atheris (libFuzzer) target for the wire protocol: any bytes through ``FrameDecoder.feed`` and ``decode``.

The contract under test (``claif_cod/protocol/errors.py``): whatever bytes a peer sends, in whatever
chunks the socket delivers them, the framing layer and the codec raise nothing but ``ProtocolError``.
Anything else escaping is a crash the fuzzer reports. Beyond that the target checks, for every input:

* chunking never matters: the same frames and the same framing error as feeding the stream at once;
* ``feed`` raises only ``FramingError`` and ``decode`` never does;
* each error can be sent back (``ErrorResponse.from_exception`` encodes and decodes to the same code),
  since that is exactly what the daemon does with it;
* every message ``decode`` accepts re-encodes to bytes that decode to an equal message.

Input layout (so the fuzzer steers the chunking as well as the bytes)::

    byte 0      frame cap: CAPS[b % len(CAPS)]
    byte 1      n = b % 8 chunk lengths follow (0: feed the whole stream in one call)
    n bytes     chunk lengths, used cyclically (0 is an empty ``feed``)
    rest        the byte stream a peer sends

Run it (see tests/fuzz/README.md)::

    python tests/fuzz/fuzz_protocol.py -max_total_time=60
    python tests/fuzz/fuzz_protocol.py --make-corpus     # regenerate tests/fuzz/corpus/

``test_one_input`` needs no atheris: tests/protocol/test_decoder_robustness.py runs it over the seed
corpus and random inputs so CI exercises this code path either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
PROTOCOL_MD = HERE.parents[1] / "docs" / "protocol.md"

try:  # instrument claif_cod (atheris works per top-level package; msgspec is C) for coverage
    import atheris
except ImportError:  # pytest runs test_one_input without atheris
    atheris = None

if atheris is not None and __name__ == "__main__":
    with atheris.instrument_imports(include=["claif_cod"]):
        import claif_cod.protocol  # noqa: F401

import msgspec  # noqa: E402

from claif_cod.protocol import (  # noqa: E402 - after instrumentation
    DEFAULT_MAX_FRAME,
    METHODS,
    ErrorResponse,
    FrameDecoder,
    FramingError,
    Message,
    ProtocolError,
    decode,
    encode,
    encode_frame,
)

CAPS = (DEFAULT_MAX_FRAME, 4096, 64, 5, 2**32 - 1)
MAX_CHUNK_LENGTHS = 8


def split_input(data: bytes) -> tuple[int, list[int], bytes]:
    """(frame cap, chunk lengths, stream) as laid out in the module docstring."""
    if len(data) < 2:
        return CAPS[0], [], data
    cap = CAPS[data[0] % len(CAPS)]
    n = data[1] % MAX_CHUNK_LENGTHS
    lengths = list(data[2 : 2 + n])
    return cap, lengths, data[2 + n :]


def make_input(stream: bytes, *, cap_index: int = 0, lengths: tuple[int, ...] = ()) -> bytes:
    """The inverse of ``split_input``: what the seed corpus files hold."""
    assert len(lengths) < MAX_CHUNK_LENGTHS and all(0 <= n < 256 for n in lengths)
    return bytes([cap_index, len(lengths), *lengths]) + stream


def chunk(stream: bytes, lengths: list[int]) -> Iterator[bytes]:
    if not lengths or not any(lengths):
        yield stream
        return
    pos, i = 0, 0
    while pos < len(stream):
        size = lengths[i % len(lengths)]
        yield stream[pos : pos + size]
        pos += size
        i += 1


def _feed(decoder: FrameDecoder, chunks: Iterator[bytes]) -> tuple[list[bytes], FramingError | None]:
    frames: list[bytes] = []
    for piece in chunks:
        try:
            frames += decoder.feed(piece)
        except FramingError as exc:
            return frames + list(exc.frames), exc
        # Any other exception (ProtocolError or not) escapes: feed may raise FramingError only.
    return frames, None


def _check_reply(exc: ProtocolError) -> None:
    """The daemon answers with this error; it must encode, and decode back to the same code."""
    assert isinstance(exc.message, str) and isinstance(exc.code, int), exc
    reply = decode(encode(ErrorResponse.from_exception(exc)))
    assert isinstance(reply, ErrorResponse), reply
    assert reply.error.code == exc.code and reply.id == exc.request_id, (reply, exc)


def test_one_input(data: bytes) -> None:
    cap, lengths, stream = split_input(data)
    frames, error = _feed(FrameDecoder(cap), chunk(stream, lengths))

    whole_frames, whole_error = _feed(FrameDecoder(cap), iter([stream]))
    assert frames == whole_frames, "frames depend on chunking"
    assert type(error) is type(whole_error), (error, whole_error)
    if error is not None:
        assert whole_error is not None and error.message == whole_error.message
        _check_reply(error)

    for body in frames:
        assert 0 < len(body) <= cap
        try:
            message: Message = decode(body)
        except FramingError:
            raise AssertionError("decode raised a FramingError") from None
        except ProtocolError as exc:
            _check_reply(exc)
            continue
        assert decode(encode(message)) == message, f"round trip changed {message!r}"


# --- seed corpus -----------------------------------------------------------------------------------

_BLOCK = re.compile(r"^```json message[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def documented_messages() -> list[bytes]:
    """Every example message body in docs/protocol.md, compact as claif_cod encodes it."""
    bodies = []
    for text in _BLOCK.findall(PROTOCOL_MD.read_text(encoding="utf-8")):
        bodies.append(encode(decode(json.dumps(json.loads(text)).encode())))
    return bodies


def seed_inputs() -> dict[str, bytes]:
    """Named fuzzer inputs built from valid messages, plus the framing edge cases around them."""
    bodies = documented_messages()
    frames = [encode_frame(body) for body in bodies]
    seeds: dict[str, bytes] = {}
    for i, frame in enumerate(frames):
        seeds[f"doc-{i:02d}"] = make_input(frame)
        seeds[f"doc-{i:02d}-bytewise"] = make_input(frame, lengths=(1,))
    everything = b"".join(frames)
    seeds["all-docs"] = make_input(everything)
    seeds["all-docs-chunked"] = make_input(everything, lengths=(3, 0, 250, 17))
    seeds["all-docs-cap-64"] = make_input(everything, cap_index=2)
    hello = frames[0]
    seeds["announce-4gib"] = make_input(b"\xff\xff\xff\xff" + hello)
    seeds["announce-4gib-uncapped"] = make_input(b"\xff\xff\xff\xff" + hello, cap_index=4, lengths=(7,))
    seeds["empty-frame"] = make_input(hello + b"\x00\x00\x00\x00" + hello)
    seeds["split-header"] = make_input(hello + hello[:2], lengths=(len(hello) + 1, 1))
    seeds["truncated-body"] = make_input(hello[:-3])
    seeds["not-json"] = make_input(encode_frame(b"\xff\xfe{") + encode_frame(b"[1,2]") + encode_frame(b"null"))
    seeds["deep-nesting"] = make_input(encode_frame(b"[" * 5000 + b"]" * 5000))
    seeds["unknown-method"] = make_input(encode_frame(b'{"jsonrpc":"2.0","id":"x","method":"nope","params":{}}'))
    return seeds


def write_corpus(directory: Path = CORPUS_DIR) -> list[Path]:
    """(Re)write the seed corpus: one file per seed, named by content hash like libFuzzer's own."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    written = []
    for name, data in sorted(seed_inputs().items()):
        path = directory / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}"
        path.write_bytes(data)
        written.append(path)
    return written


def dictionary_tokens() -> list[str]:
    """libFuzzer ``-dict`` tokens: the protocol's method and member names, so mutations stay JSON-RPC-shaped."""
    names = set(METHODS) | {"jsonrpc", "2.0", "id", "method", "params", "result", "error", "code", "message", "data"}
    for spec in METHODS.values():
        names.update(f.name for f in msgspec.structs.fields(spec.params_type))
    tokens = [json.dumps(name) for name in sorted(names)]
    return [*tokens, "{", "}", "[", "]", ":", ",", "null", "true", "-1", "1e999", '"\\ud800"', "\\u0000"]


def _write_dictionary(directory: Path) -> Path:
    path = directory / "protocol.dict"
    escaped = (token.replace("\\", "\\\\").replace('"', '\\"') for token in dictionary_tokens())
    path.write_text("".join(f'"{token}"\n' for token in escaped))
    return path


def main(argv: list[str]) -> None:
    if "--make-corpus" in argv:
        print(f"wrote {len(write_corpus())} seeds to {CORPUS_DIR}")
        return
    if atheris is None:
        raise SystemExit("atheris is not installed: pip install atheris")
    scratch = Path(os.environ.get("CLAIF_COD_FUZZ_DIR", Path(tempfile.gettempdir()) / "claif_cod-fuzz"))
    scratch.mkdir(parents=True, exist_ok=True)
    if not any(arg.startswith("-dict=") for arg in argv):
        argv = [*argv, f"-dict={_write_dictionary(scratch)}"]
    if not any(not arg.startswith("-") for arg in argv[1:]):
        # No corpus given: grow a scratch corpus (libFuzzer writes new inputs into the first
        # directory) seeded from the committed one, which stays untouched.
        work = scratch / "corpus"
        work.mkdir(exist_ok=True)
        argv = [*argv, str(work), str(CORPUS_DIR)]
    args: Any = argv
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
