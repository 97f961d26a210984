"""Hypothesis properties of FrameDecoder + decode: robust to any bytes, blind to chunking, lossless."""

from __future__ import annotations

import itertools
import typing
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claif_cod.protocol import (
    METHODS,
    FrameDecoder,
    FramingError,
    Message,
    ProtocolError,
    decode,
    encode,
    encode_frame,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CAP = 512  # small, so generated streams hit FrameTooLarge as well as valid frames

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values of a msgspec-inspected type, so new message fields are covered without editing this."""
    if isinstance(t, mi.StructType):
        fields = {f.name: strategy_for(f.type) for f in t.fields if f.required}
        optional = {f.name: strategy_for(f.type) for f in t.fields if not f.required}
        return st.fixed_dictionaries(fields, optional=optional).map(lambda kwargs: t.cls(**kwargs))
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(member) for member in t.types])
    if isinstance(t, mi.ListType):
        return st.lists(strategy_for(t.item_type), max_size=3)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.RawType):
        return json_values.map(lambda value: msgspec.Raw(msgspec.json.encode(value)))
    simple: dict[type[mi.Type], st.SearchStrategy[Any]] = {
        mi.StrType: st.text(max_size=12),
        mi.IntType: st.integers(-(2**63), 2**63 - 1),
        mi.FloatType: st.floats(allow_nan=False, allow_infinity=False),
        mi.BoolType: st.booleans(),
        mi.NoneType: st.none(),
    }
    return simple[type(t)]


messages: st.SearchStrategy[Message] = st.one_of(
    [strategy_for(mi.type_info(member)) for member in typing.get_args(Message)]
)

# Bodies aimed at the codec's classification logic: valid messages with one member replaced, removed
# or added at some depth, envelope-shaped objects, arbitrary JSON, byte-mutated messages, plain bytes.


@st.composite
def near_misses(draw: st.DrawFn) -> bytes:
    root = msgspec.json.decode(encode(draw(messages)))
    target = root
    while draw(st.booleans()):
        children = sorted(key for key, value in target.items() if isinstance(value, dict))
        if not children:
            break
        target = target[draw(st.sampled_from(children))]
    keys = sorted(target)
    action = draw(st.sampled_from(["replace", "delete", "add"] if keys else ["add"]))
    if action == "add":
        target[draw(st.text(max_size=6))] = draw(json_values)
    elif action == "delete":
        del target[draw(st.sampled_from(keys))]
    else:
        target[draw(st.sampled_from(keys))] = draw(json_values | st.sampled_from([*METHODS, "nope", "2.0"]))
    return msgspec.json.encode(root)


envelope_values = {
    "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values,
    "id": st.integers(-5, 5) | st.text(max_size=3) | json_values,
    "method": st.sampled_from(sorted(METHODS)) | json_values,
    "params": json_values,
    "result": json_values,
    "error": st.fixed_dictionaries({"code": st.integers(), "message": st.text(max_size=4)}) | json_values,
}
envelopes = st.fixed_dictionaries({}, optional=envelope_values).map(msgspec.json.encode)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(encode(draw(messages)))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data) - 1))
        data[i : i + draw(st.integers(0, 2))] = draw(st.binary(max_size=2))
    return bytes(data)


bodies = st.one_of(
    near_misses(),
    envelopes,
    json_values.map(msgspec.json.encode),
    mutated(),
    st.binary(min_size=1, max_size=64),
    messages.map(encode),
)
frame_or_junk = st.one_of(
    bodies.filter(lambda b: len(b) <= CAP).map(lambda b: encode_frame(b, max_frame_size=CAP)),
    st.binary(max_size=8),  # stray bytes: desynchronise the stream, may announce huge or empty frames
)
streams = st.lists(frame_or_junk, max_size=6).map(b"".join)


@st.composite
def chunkings(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def run(chunks: list[bytes]) -> tuple[list[bytes], str | None, list[Any]]:
    """Frames, framing error and decode outcomes of feeding ``chunks`` to a fresh decoder.

    Only ProtocolError is caught: anything else escaping fails the test.
    """
    decoder = FrameDecoder(max_frame_size=CAP)
    frames: list[bytes] = []
    error = None
    for chunk in chunks:
        try:
            frames += decoder.feed(chunk)
        except FramingError as exc:
            frames += exc.frames
            error = f"{type(exc).__name__}: {exc.message}"
            break
    outcomes: list[Any] = []
    for frame in frames:
        try:
            outcomes.append(decode(frame))
        except ProtocolError as exc:
            outcomes.append((type(exc), exc.code, exc.message, exc.request_id, exc.notification))
    return frames, error, outcomes


@SETTINGS
@given(st.data())
def test_any_bytes_any_chunking_raise_only_protocol_errors(data: st.DataObject) -> None:
    stream = data.draw(streams | st.binary(max_size=300))
    run(data.draw(chunkings(stream)))


@SETTINGS
@given(st.data())
def test_decoding_is_independent_of_chunking(data: st.DataObject) -> None:
    stream = data.draw(streams)
    assert run(data.draw(chunkings(stream))) == run([stream])


@SETTINGS
@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_encode_frame_decode_round_trips(sent: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(encode(message)) for message in sent)
    decoder = FrameDecoder()
    received = [decode(body) for chunk in data.draw(chunkings(stream)) for body in decoder.feed(chunk)]
    assert received == sent
    assert decoder.buffered == 0
