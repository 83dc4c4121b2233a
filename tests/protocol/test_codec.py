"""Every message round-trips through both codecs; hostile bytes only raise ProtocolError."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from protocol import CloseCode, ProtocolError
from protocol.codec import (
    MAX_FRAME_BYTES,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
    truncate_reason,
)
from protocol.messages import hq, kds, store
from tests.protocol import strategies as S

CHANNELS: list[tuple[str, TypeAdapter[Any], dict[str, st.SearchStrategy[Any]]]] = [
    ("store", store.STORE, S.STORE_MESSAGES),
    ("kds", kds.KDS, S.KDS_MESSAGES),
    ("hq", hq.HQ, S.HQ_MESSAGES),
]
CASES = [(name, t, adapter, strat) for name, adapter, msgs in CHANNELS for t, strat in msgs.items()]
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def union_types(adapter: TypeAdapter[Any]) -> set[str]:
    union = typing.get_args(adapter._type)[0]  # Annotated[Union, Field] -> Union
    return {m.model_fields["type"].default for m in typing.get_args(union)}


@pytest.mark.parametrize(("channel", "adapter", "msgs"), CHANNELS, ids=[c[0] for c in CHANNELS])
def test_strategies_cover_every_message_type(channel: str, adapter: Any, msgs: dict) -> None:
    assert union_types(adapter) == set(msgs), f"{channel}: a message type has no strategy"


@pytest.mark.parametrize(
    ("channel", "mtype", "adapter", "strategy"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_round_trip_both_codecs(channel: str, mtype: str, adapter: Any, strategy: Any) -> None:
    @SLOW
    @given(strategy)
    def check(message: Any) -> None:
        assert message.type == mtype
        big = 10 * MAX_FRAME_BYTES  # generated snapshots may be large; limits are tested apart
        assert decode_msgpack(encode_msgpack(message), adapter, big) == message
        assert decode_json(encode_json(message), adapter, big) == message
        assert decode_json(encode_json(message).encode(), adapter, big) == message

    check()


ADAPTERS = [store.STORE, store.STORE_CLIENT, kds.KDS_SCREEN, hq.HQ]


def assert_refused(fn: Any) -> ProtocolError:
    try:
        fn()
    except ProtocolError as exc:
        assert exc.code in (CloseCode.UNDECODABLE, CloseCode.POLICY, CloseCode.TOO_BIG)
        assert exc.reason and len(exc.reason.encode()) <= 123
        return exc
    except Exception as exc:  # pragma: no cover - the failure we look for
        pytest.fail(f"decode raised {type(exc).__name__}: {exc}")
    pytest.fail("decode accepted garbage")  # pragma: no cover


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.sampled_from(ADAPTERS))
def test_random_bytes_only_raise_protocol_error(data: bytes, adapter: Any) -> None:
    for decode in (decode_msgpack, decode_json):
        try:
            decode(data, adapter)
        except ProtocolError as exc:
            assert exc.code in (CloseCode.UNDECODABLE, CloseCode.POLICY, CloseCode.TOO_BIG)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(S.STORE_MESSAGES["job_state"], st.data())
def test_mutated_frames_only_raise_protocol_error(message: Any, data: st.DataObject) -> None:
    for raw in (encode_msgpack(message), encode_json(message).encode()):
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
            pos = data.draw(st.integers(0, max(len(buf) - 1, 0)))
            if op == "flip" and buf:
                buf[pos] ^= 1 << data.draw(st.integers(0, 7))
            elif op == "cut":
                del buf[pos:]
            else:
                buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        for decode in (decode_msgpack, decode_json):
            try:
                decoded = decode(bytes(buf), store.STORE)
            except ProtocolError as exc:
                assert exc.code in (CloseCode.UNDECODABLE, CloseCode.POLICY, CloseCode.TOO_BIG)
            else:
                assert decoded.type in union_types(store.STORE)


def test_oversized_frame_is_1009() -> None:
    frame = msgpack.packb({"type": "ack", "offset": 1, "pad": "x" * MAX_FRAME_BYTES})
    assert assert_refused(lambda: decode_msgpack(frame, store.STORE)).code == CloseCode.TOO_BIG
    text = json.dumps({"type": "hello", "token": "x" * MAX_FRAME_BYTES})
    assert assert_refused(lambda: decode_json(text, kds.KDS)).code == CloseCode.TOO_BIG


def test_configurable_limit() -> None:
    frame = encode_msgpack(store.Ack(offset=5))
    assert decode_msgpack(frame, store.STORE, max_size=len(frame)) == store.Ack(offset=5)
    err = assert_refused(lambda: decode_msgpack(frame, store.STORE, max_size=len(frame) - 1))
    assert err.code == CloseCode.TOO_BIG


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1", CloseCode.UNDECODABLE),  # msgpack "never used" byte
        (msgpack.packb([1, 2]), CloseCode.UNDECODABLE),  # not an object
        (msgpack.packb({"type": "nope"}), CloseCode.POLICY),  # unknown type
        (msgpack.packb({"type": "ack", "offset": 1, "extra": 1}), CloseCode.POLICY),
        (msgpack.packb({"type": "ack"}), CloseCode.POLICY),  # missing field
        (msgpack.packb({"type": "ack", "offset": -1}), CloseCode.POLICY),
        (msgpack.packb({1: 2}), CloseCode.UNDECODABLE),  # non-string keys
    ],
)
def test_msgpack_error_codes(frame: bytes, code: CloseCode) -> None:
    assert assert_refused(lambda: decode_msgpack(frame, store.STORE)).code == code


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{", CloseCode.UNDECODABLE),
        (b"\xff\xfe", CloseCode.UNDECODABLE),
        ("[]", CloseCode.UNDECODABLE),
        ('{"type": "welcome"}', CloseCode.POLICY),  # a broker message from a screen
        ('{"type": "bump", "ref": "r", "ticket_id": "t"}', CloseCode.POLICY),
        ("[" * 100_000 + "]" * 100_000, CloseCode.TOO_BIG),
        ("[" * 20_000 + "]" * 20_000, CloseCode.UNDECODABLE),
    ],
)
def test_json_error_codes(frame: str | bytes, code: CloseCode) -> None:
    assert assert_refused(lambda: decode_json(frame, kds.KDS_SCREEN)).code == code


def test_error_reason_names_the_field() -> None:
    frame = '{"type": "bump", "ref": "r", "ticket_id": "t", "version": "x"}'
    assert "version" in assert_refused(lambda: decode_json(frame, kds.KDS_SCREEN)).reason


def test_direction_unions_refuse_the_other_side() -> None:
    welcome = store.Welcome(epoch="e", offset=0, recovered=True, config=None)
    assert_refused(lambda: decode_msgpack(encode_msgpack(welcome), store.STORE_CLIENT))
    assert decode_msgpack(encode_msgpack(welcome), store.STORE_BROKER) == welcome


def test_naive_timestamps_are_refused() -> None:
    frame = {"type": "job_state", "job_id": "j", "state": "printed", "at": "2026-11-21T12:00:00"}
    err = assert_refused(lambda: decode_msgpack(msgpack.packb(frame), store.STORE))
    assert err.code == CloseCode.POLICY and "at" in err.reason


def test_truncate_reason_keeps_utf8_valid() -> None:
    out = truncate_reason("宫" * 100)
    assert len(out.encode()) <= 120
    assert out == "宫" * 40
