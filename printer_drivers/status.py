"""Decode ESC/POS status replies into ``PrinterStatus`` (DESIGN.md §3). Pure.

Sources, after the Epson ESC/POS reference:

- DLE EOT n, one byte each, fixed bits ``0xx1xx10``:
  n=1 printer: bit 2 drawer connector pin 3 high, bit 3 offline, bit 5 waiting for online
  recovery, bit 6 feed button pressed;
  n=2 offline cause: bit 2 cover open, bit 3 paper fed by the feed button, bit 5 printing
  stopped by paper end, bit 6 error;
  n=3 error cause: bit 2 mechanical (recoverable) error, bit 3 autocutter error, bit 5
  unrecoverable error, bit 6 automatically recoverable error (head overheat);
  n=4 paper sensor: bits 2-3 roll near end, bits 5-6 roll paper end.
- ASB (GS a), four bytes: ``0xx1xx00`` (bit 2 drawer, 3 offline, 5 cover open, 6 feed
  button), ``0xx0xxxx`` (bit 0 waiting for online recovery, 2 mechanical, 3 autocutter,
  5 unrecoverable, 6 auto-recoverable), ``0xx0xxxx`` (bits 0-1 near end, 2-3 paper end),
  ``0xx0xxxx`` (reserved).
- GS r 1 (the end-of-job barrier), ``0xx0xxxx``: bits 0-1 near end, 2-3 paper end.

A reply that fails its fixed bits, has the wrong length, was read before it was asked for
(left over from an earlier request) or is older than ``max_age_s`` is rejected; a status
with nothing valid to go on is ``reachable=False, source=none`` — never "ok".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from printer_drivers.errors import StatusReplyError
from protocol.status import Paper, PrinterStatus, StatusSource

log = logging.getLogger(__name__)

#: DLE EOT replies: bits 0, 1, 4, 7 are fixed to 0, 1, 1, 0.
REALTIME_FIXED_MASK = 0b1001_0011
REALTIME_FIXED_VALUE = 0b0001_0010
#: ASB first byte: bits 0, 1, 4, 7 fixed to 0, 0, 1, 0.
ASB_HEAD_FIXED_VALUE = 0b0001_0000
#: ASB bytes 2-4 and GS r replies: bits 4 and 7 fixed to 0.
TAIL_FIXED_MASK = 0b1001_0000
TAIL_FIXED_VALUE = 0
ASB_LENGTH = 4
#: A reply older than this is not evidence of the printer's present state.
MAX_REPLY_AGE_S = 10.0

# DLE EOT bits
BIT_DRAWER = 0x04
BIT_OFFLINE = 0x08
BIT_WAITING_RECOVERY = 0x20
BIT_FEED_BUTTON = 0x40
BIT_COVER_OPEN = 0x04
BIT_FEEDING = 0x08
BIT_STOPPED_PAPER_END = 0x20
BIT_ERROR = 0x40
BIT_MECHANICAL = 0x04
BIT_CUTTER = 0x08
BIT_UNRECOVERABLE = 0x20
BIT_AUTO_RECOVERABLE = 0x40
BITS_NEAR_END = 0x0C
BITS_PAPER_END = 0x60
# ASB / GS r paper byte
BITS_SENSOR_NEAR_END = 0x03
BITS_SENSOR_PAPER_END = 0x0C
BIT_ASB_COVER = 0x20
BIT_ASB_FEED_BUTTON = 0x40
BIT_ASB_WAITING_RECOVERY = 0x01


@dataclass(frozen=True, slots=True)
class Reply:
    """Bytes a printer sent, with when they were asked for and read (monotonic seconds)."""

    data: bytes
    requested_at: float | None = None
    received_at: float | None = None


RawReply = Reply | bytes | None


def check_realtime(n: int, data: bytes) -> int:
    """The byte of a DLE EOT ``n`` reply, or ``StatusReplyError``."""
    if n not in (1, 2, 3, 4):
        raise StatusReplyError(f"expected DLE EOT n in 1..4, got {n}")
    if len(data) != 1:
        raise StatusReplyError(f"DLE EOT {n}: expected 1 byte, got {len(data)}: {data.hex()}")
    byte = data[0]
    if byte & REALTIME_FIXED_MASK != REALTIME_FIXED_VALUE:
        raise StatusReplyError(f"DLE EOT {n}: fixed bits of {byte:08b} are not 0xx1xx10")
    return byte


def check_asb(data: bytes) -> bytes:
    """A four-byte ASB block, or ``StatusReplyError``."""
    if len(data) != ASB_LENGTH:
        raise StatusReplyError(f"ASB: expected {ASB_LENGTH} bytes, got {len(data)}")
    if data[0] & REALTIME_FIXED_MASK != ASB_HEAD_FIXED_VALUE:
        raise StatusReplyError(f"ASB: fixed bits of byte 1 {data[0]:08b} are not 0xx1xx00")
    for i, byte in enumerate(data[1:], start=2):
        if byte & TAIL_FIXED_MASK != TAIL_FIXED_VALUE:
            raise StatusReplyError(f"ASB: fixed bits of byte {i} {byte:08b} are not 0xx0xxxx")
    return data


def check_paper_sensor(data: bytes) -> Paper:
    """The paper state a GS r 1 reply reports, or ``StatusReplyError``."""
    if len(data) != 1 or data[0] & TAIL_FIXED_MASK != TAIL_FIXED_VALUE:
        raise StatusReplyError(f"GS r 1: expected one byte 0xx0xxxx, got {data.hex()}")
    return _sensor_paper(data[0])


def is_realtime_byte(byte: int) -> bool:
    return byte & REALTIME_FIXED_MASK == REALTIME_FIXED_VALUE


def is_paper_sensor_byte(byte: int) -> bool:
    return byte & TAIL_FIXED_MASK == TAIL_FIXED_VALUE


def _sensor_paper(byte: int) -> Paper:
    if byte & BITS_SENSOR_PAPER_END:
        return Paper.OUT
    if byte & BITS_SENSOR_NEAR_END:
        return Paper.NEAR_END
    return Paper.OK


def _fresh(reply: RawReply, now: float | None, max_age_s: float) -> bytes | None:
    """The reply's bytes, or None when it is missing or stale."""
    if reply is None:
        return None
    if isinstance(reply, bytes):
        return reply
    req, got = reply.requested_at, reply.received_at
    if req is not None and got is not None and got < req:
        log.debug("stale status reply %s: read before it was requested", reply.data.hex())
        return None
    if now is not None and got is not None and now - got > max_age_s:
        log.debug("stale status reply %s: %.1fs old", reply.data.hex(), now - got)
        return None
    return reply.data


def realtime_fields(replies: Mapping[int, bytes]) -> dict[str, Any]:
    """Status fields from validated DLE EOT 1-4 bytes (all four must be present)."""
    b1, b2, b3, b4 = (check_realtime(n, replies[n]) for n in (1, 2, 3, 4))
    paper = Paper.OK
    if b4 & BITS_PAPER_END or b2 & BIT_STOPPED_PAPER_END:
        paper = Paper.OUT
    elif b4 & BITS_NEAR_END:
        paper = Paper.NEAR_END
    return {
        "reachable": True,
        "online": not b1 & BIT_OFFLINE,
        "paper": paper,
        "cover_open": bool(b2 & BIT_COVER_OPEN),
        "cutter_error": bool(b3 & BIT_CUTTER),
        "mechanical_error": bool(b3 & BIT_MECHANICAL),
        "unrecoverable_error": bool(b3 & BIT_UNRECOVERABLE),
        "auto_recoverable_error": bool(b3 & BIT_AUTO_RECOVERABLE),
        "drawer_open": bool(b1 & BIT_DRAWER),
        "feed_button": bool(b1 & BIT_FEED_BUTTON or b2 & BIT_FEEDING),
        "source": StatusSource.REALTIME,
    }


def asb_fields(block: bytes) -> dict[str, Any]:
    """Status fields from a validated four-byte ASB block."""
    b1, b2, b3, _ = check_asb(block)
    return {
        "reachable": True,
        "online": not b1 & BIT_OFFLINE,
        "paper": _sensor_paper(b3),
        "cover_open": bool(b1 & BIT_ASB_COVER),
        "cutter_error": bool(b2 & BIT_CUTTER),
        "mechanical_error": bool(b2 & BIT_MECHANICAL),
        "unrecoverable_error": bool(b2 & BIT_UNRECOVERABLE),
        "auto_recoverable_error": bool(b2 & BIT_AUTO_RECOVERABLE),
        "drawer_open": bool(b1 & BIT_DRAWER),
        "feed_button": bool(b1 & BIT_ASB_FEED_BUTTON),
        "source": StatusSource.ASB,
    }


def unknown_fields(reachable: bool) -> dict[str, Any]:
    """Nothing valid was read: not "ok", just not known."""
    return {"reachable": reachable, "online": False, "source": StatusSource.NONE}


def decode_status(
    realtime: Mapping[int, RawReply] | None = None,
    *,
    asb: RawReply = None,
    at: datetime,
    now: float | None = None,
    max_age_s: float = MAX_REPLY_AGE_S,
    previous: PrinterStatus | None = None,
    link_up: bool = False,
) -> PrinterStatus:
    """A ``PrinterStatus`` from DLE EOT 1-4 replies and/or an ASB block.

    A fresh valid ASB block wins; else all four DLE EOT replies must be present and
    valid. Otherwise nothing is known: ``reachable`` is ``link_up`` (set it only for a
    transport that cannot read, whose link is up: state ``unknown``), else the printer is
    ``offline`` — a printer that does not answer is never reported "ok".
    ``since`` is kept from ``previous`` while the condition is unchanged.
    """
    fields = _asb_or_none(asb, now, max_age_s)
    if fields is None:
        fields = _realtime_or_none(realtime or {}, now, max_age_s)
    if fields is None:
        fields = unknown_fields(link_up)
    status = PrinterStatus.model_validate({**fields, "since": at})
    if previous is not None and previous.same_condition(status):
        return previous
    return status


def _asb_or_none(asb: RawReply, now: float | None, max_age_s: float) -> dict[str, Any] | None:
    data = _fresh(asb, now, max_age_s)
    if data is None:
        return None
    try:
        return asb_fields(data)
    except StatusReplyError as exc:
        log.warning("rejected ASB block: %s", exc)
        return None


def _realtime_or_none(
    replies: Mapping[int, RawReply], now: float | None, max_age_s: float
) -> dict[str, Any] | None:
    fresh = {n: _fresh(r, now, max_age_s) for n, r in replies.items()}
    valid = {n: data for n, data in fresh.items() if data is not None}
    if set(valid) != {1, 2, 3, 4}:
        return None
    try:
        return realtime_fields(valid)
    except StatusReplyError as exc:
        log.warning("rejected status reply: %s", exc)
        return None
