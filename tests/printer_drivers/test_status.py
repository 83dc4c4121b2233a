"""decode_status: every bit of DLE EOT 1-4 and ASB; invalid, stale and missing replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from printer_drivers import Reply, StatusReplyError, decode_status
from printer_drivers.status import check_asb, check_paper_sensor, check_realtime
from protocol.status import Paper, PrinterState, StatusSource

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
IDLE = {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}


def realtime(**bits: int) -> dict[int, bytes]:
    """DLE EOT replies of a healthy printer with extra bits OR-ed in: ``n1=0x08`` …"""
    replies = dict(IDLE)
    for key, value in bits.items():
        replies[int(key[1])] |= value
    return {n: bytes((b,)) for n, b in replies.items()}


def test_idle_printer_is_ready() -> None:
    status = decode_status(realtime(), at=AT)
    assert status.reachable and status.online and status.paper is Paper.OK
    assert status.source is StatusSource.REALTIME
    assert status.state is PrinterState.READY and status.reasons == ("none",)


@pytest.mark.parametrize(
    ("bits", "field", "value"),
    [
        ({"n1": 0x04}, "drawer_open", True),
        ({"n1": 0x08}, "online", False),
        ({"n1": 0x40}, "feed_button", True),
        ({"n2": 0x04}, "cover_open", True),
        ({"n2": 0x08}, "feed_button", True),
        ({"n2": 0x20}, "paper", Paper.OUT),
        ({"n3": 0x04}, "mechanical_error", True),
        ({"n3": 0x08}, "cutter_error", True),
        ({"n3": 0x20}, "unrecoverable_error", True),
        ({"n3": 0x40}, "auto_recoverable_error", True),
        ({"n4": 0x0C}, "paper", Paper.NEAR_END),
        ({"n4": 0x04}, "paper", Paper.NEAR_END),
        ({"n4": 0x60}, "paper", Paper.OUT),
        ({"n4": 0x6C}, "paper", Paper.OUT),
    ],
)
def test_each_realtime_bit(bits: dict[str, int], field: str, value: object) -> None:
    status = decode_status(realtime(**bits), at=AT)
    assert getattr(status, field) == value
    healthy = decode_status(realtime(), at=AT)
    others = {k for k, v in status.model_dump().items() if healthy.model_dump()[k] != v}
    assert others - {field, "state", "reasons"} == set()


@pytest.mark.parametrize(
    ("bits", "state", "reason"),
    [
        ({"n1": 0x08}, PrinterState.ERROR, "paused-report"),
        ({"n2": 0x04, "n1": 0x08}, PrinterState.ERROR, "cover-open-error"),
        ({"n4": 0x60, "n2": 0x20}, PrinterState.ERROR, "media-empty-error"),
        ({"n4": 0x0C}, PrinterState.WARNING, "media-low-warning"),
        ({"n3": 0x08, "n2": 0x40}, PrinterState.ERROR, "media-jam-error"),
        ({"n3": 0x20}, PrinterState.ERROR, "other-error"),
        ({"n3": 0x40}, PrinterState.ERROR, "other-warning"),
    ],
)
def test_state_and_ipp_reasons(bits: dict[str, int], state: PrinterState, reason: str) -> None:
    status = decode_status(realtime(**bits), at=AT)
    assert status.state is state and reason in status.reasons


@pytest.mark.parametrize("bad", [0x00, 0x13, 0x92, 0x02, 0x10, 0xFF])
def test_fixed_bits_are_checked(bad: int) -> None:
    with pytest.raises(StatusReplyError, match="0xx1xx10"):
        check_realtime(1, bytes((bad,)))
    replies = realtime()
    replies[2] = bytes((bad,))
    status = decode_status(replies, at=AT)
    assert not status.reachable and status.source is StatusSource.NONE
    assert status.state is PrinterState.OFFLINE


def test_wrong_length_is_rejected() -> None:
    with pytest.raises(StatusReplyError, match="expected 1 byte"):
        check_realtime(1, b"\x12\x12")  # an earlier, late answer piled up before this one
    with pytest.raises(StatusReplyError):
        check_realtime(1, b"")
    replies = realtime()
    replies[4] = b"\x12\x12"
    assert decode_status(replies, at=AT).source is StatusSource.NONE


@pytest.mark.parametrize("missing", [1, 2, 3, 4])
def test_a_missing_reply_is_never_ok(missing: int) -> None:
    replies: dict[int, bytes | None] = dict(realtime())
    replies[missing] = None
    status = decode_status(replies, at=AT)
    assert not status.reachable and status.source is StatusSource.NONE
    assert status.state is PrinterState.OFFLINE and status.reasons == ("offline-report",)


def test_no_reply_at_all_is_offline_and_write_only_link_is_unknown() -> None:
    assert decode_status({}, at=AT).state is PrinterState.OFFLINE
    assert decode_status(None, at=AT).state is PrinterState.OFFLINE
    unknown = decode_status(None, at=AT, link_up=True)
    assert unknown.reachable and unknown.source is StatusSource.NONE
    assert unknown.state is PrinterState.UNKNOWN


def test_stale_replies_are_rejected() -> None:
    fresh = {n: Reply(b, requested_at=10.0, received_at=10.1) for n, b in realtime().items()}
    assert decode_status(fresh, at=AT, now=10.2).state is PrinterState.READY
    early = dict(fresh)
    early[3] = Reply(b"\x12", requested_at=10.0, received_at=9.5)  # read before it was asked
    assert decode_status(early, at=AT, now=10.2).state is PrinterState.OFFLINE
    assert decode_status(fresh, at=AT, now=30.0, max_age_s=10).state is PrinterState.OFFLINE


@pytest.mark.parametrize(
    ("block", "field", "value"),
    [
        (b"\x14\x00\x00\x00", "drawer_open", True),
        (b"\x18\x00\x00\x00", "online", False),
        (b"\x30\x00\x00\x00", "cover_open", True),
        (b"\x50\x00\x00\x00", "feed_button", True),
        (b"\x10\x01\x00\x00", "online", True),  # waiting for online recovery: still decoded
        (b"\x10\x04\x00\x00", "mechanical_error", True),
        (b"\x10\x08\x00\x00", "cutter_error", True),
        (b"\x10\x20\x00\x00", "unrecoverable_error", True),
        (b"\x10\x40\x00\x00", "auto_recoverable_error", True),
        (b"\x10\x00\x03\x00", "paper", Paper.NEAR_END),
        (b"\x10\x00\x01\x00", "paper", Paper.NEAR_END),
        (b"\x10\x00\x0c\x00", "paper", Paper.OUT),
        (b"\x10\x00\x0f\x00", "paper", Paper.OUT),
    ],
)
def test_each_asb_bit(block: bytes, field: str, value: object) -> None:
    status = decode_status(asb=block, at=AT)
    assert status.source is StatusSource.ASB
    assert getattr(status, field) == value


@pytest.mark.parametrize(
    "block",
    [
        b"\x12\x00\x00\x00",
        b"\x00\x00\x00\x00",
        b"\x90\x00\x00\x00",
        b"\x10\x10\x00\x00",
        b"\x10\x00\x80\x00",
        b"\x10\x00\x00\x10",
        b"\x10\x00\x00",
        b"\x10\x00\x00\x00\x00",
    ],
)
def test_invalid_asb_is_rejected(block: bytes) -> None:
    with pytest.raises(StatusReplyError):
        check_asb(block)
    assert decode_status(asb=block, at=AT).state is PrinterState.OFFLINE


def test_valid_asb_wins_and_invalid_asb_falls_back_to_realtime() -> None:
    assert decode_status(realtime(), asb=b"\x18\x00\x00\x00", at=AT).online is False
    assert decode_status(realtime(), asb=b"\xff", at=AT).state is PrinterState.READY


def test_paper_sensor_reply() -> None:
    assert check_paper_sensor(b"\x00") is Paper.OK
    assert check_paper_sensor(b"\x03") is Paper.NEAR_END
    assert check_paper_sensor(b"\x0c") is Paper.OUT
    for bad in (b"\x12", b"\x80", b"", b"\x00\x00"):
        with pytest.raises(StatusReplyError):
            check_paper_sensor(bad)


def test_since_is_kept_while_the_condition_holds() -> None:
    first = decode_status(realtime(), at=AT)
    again = decode_status(realtime(), at=AT + timedelta(minutes=5), previous=first)
    assert again.since == AT
    changed = decode_status(realtime(n4=0x0C), at=AT + timedelta(minutes=6), previous=first)
    assert changed.since == AT + timedelta(minutes=6)
