"""Fuzz the frame decoders a stranger reaches (protocol/codec.py): the broker decodes a
store client's msgpack and screens' JSON, the store client decodes the broker's msgpack.
Random bytes, valid frames mutated byte by byte, and message-shaped trees of wrong values:
the answer is a message of the channel's union or ``ProtocolError`` with 1007, 1008 or
1009 and a reason that fits a close frame — nothing else, never a hang."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from protocol import CloseCode, ProtocolError
from protocol.codec import decode_json, decode_msgpack, encode_json, encode_msgpack
from protocol.messages import hq, kds, store
from tests.protocol import strategies as S
from tests.security.fuzzing import fuzz, never_hangs

#: What each side decodes from its peer.
ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "store-client": store.STORE_CLIENT,  # the broker, from a store link
    "store-broker": store.STORE_BROKER,  # the store client, from the broker
    "kds-screen": kds.KDS_SCREEN,  # the broker, from a kitchen screen
    "hq-screen": hq.HQ_SCREEN,  # the broker, from the HQ dashboard
}
REFUSALS = {CloseCode.UNDECODABLE, CloseCode.POLICY, CloseCode.TOO_BIG}
VALID = st.one_of(
    *(
        st.sampled_from(list(msgs.values())).flatmap(lambda s: s)
        for msgs in (S.STORE_MESSAGES, S.KDS_MESSAGES, S.HQ_MESSAGES)
    )
)
KEYS = st.sampled_from(
    "type offset job_id state at status token store station ref ticket_id version order_id "
    "line_id seq reason resume epoch store_id client_version protocol printers paper since x".split()
)
TYPES = st.sampled_from(
    "hello ack job_state printer_status error start bump bump_line serve recall prioritize "
    "welcome job snapshot config x".split()
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=16),
    st.binary(max_size=8),
    TYPES,
    st.sampled_from(["2026-11-21T12:00:00+08:00", "0001-01-01T00:00:00+14:00", "printed"]),
)
TREES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=24,
)
SHAPED = st.builds(lambda t, rest: {"type": t, **rest}, TYPES, st.dictionaries(KEYS, TREES))
# Hand-picked frames worth keeping whatever hypothesis draws.
DEEP_JSON = b"[" * 5000 + b"]" * 5000
DEEP_MSGPACK = b"\x91" * 5000 + b"\xc0"
HUGE_ARRAY = b"\xdd\xff\xff\xff\xff"  # msgpack array32 announcing 4 G items
TIMESTAMP = msgpack.packb(
    {"type": "job_state", "job_id": "j", "state": "printed", "at": msgpack.Timestamp(1, 0)}
)


def refused_or_decoded(decode: Any, data: bytes | str, adapter: TypeAdapter[Any]) -> None:
    with never_hangs(f"decoding {len(data)} bytes"):
        try:
            message = decode(data, adapter)
        except ProtocolError as exc:
            assert exc.code in REFUSALS, exc
            assert exc.reason and len(exc.reason.encode()) <= 123
            return
    assert adapter.validate_python(message.model_dump()) == message


def both(data: bytes, adapter: TypeAdapter[Any]) -> None:
    refused_or_decoded(decode_msgpack, data, adapter)
    refused_or_decoded(decode_json, data, adapter)


@fuzz()
@given(st.binary(max_size=1024), st.sampled_from(sorted(ADAPTERS)))
@example(DEEP_JSON, "kds-screen")
@example(DEEP_MSGPACK, "store-client")
@example(HUGE_ARRAY, "store-client")
@example(TIMESTAMP, "store-client")
@example(b'{"type":"hello","token":"\\ud800","store":"s","station":"g"}', "kds-screen")
@example(b'{"type":"ack","offset":1' + b"0" * 5000 + b"}", "store-client")
def test_random_bytes(data: bytes, side: str) -> None:
    both(data, ADAPTERS[side])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    message = draw(VALID)
    raw = draw(st.sampled_from([encode_msgpack(message), encode_json(message).encode()]))
    buf = bytearray(raw)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(buf)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        if op == "flip" and pos < len(buf):
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del buf[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            buf[pos:pos] = buf[pos : pos + draw(st.integers(1, 16))] * draw(st.integers(2, 50))
    return bytes(buf)


@fuzz(weight=0.5)
@given(mutated(), st.sampled_from(sorted(ADAPTERS)))
def test_mutated_valid_frames(data: bytes, side: str) -> None:
    both(data, ADAPTERS[side])


@fuzz()
@given(SHAPED, st.sampled_from(sorted(ADAPTERS)))
def test_message_shaped_trees_of_wrong_values(obj: dict[str, Any], side: str) -> None:
    adapter = ADAPTERS[side]
    refused_or_decoded(decode_msgpack, msgpack.packb(obj, use_bin_type=True), adapter)
    text = json.dumps(obj, default=lambda b: b.decode("latin-1"), allow_nan=True)
    refused_or_decoded(decode_json, text, adapter)
