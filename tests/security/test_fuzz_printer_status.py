"""Fuzz what a printer sends back (printer_drivers/status.py, replies.py): a LAN printer, a
broken one or something posing as one at its address can answer anything. Random
replies decode to a status without an exception, never "ready" from bytes that fail their
checks; random byte streams through ``ReplyInbox`` in any reads give only replies of the
right shape, cost time in proportion to their length, never hang."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from printer_drivers import commands as cmd
from printer_drivers.errors import StatusReplyError
from printer_drivers.replies import ReplyInbox
from printer_drivers.status import Reply, check_asb, check_realtime, decode_status
from protocol.status import PrinterState, StatusSource
from tests.security.fuzzing import fuzz, never_hangs

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ONLINE = b"\x12"  # a healthy DLE EOT reply
#: Bytes that look like replies (DLE EOT, GS r, ASB heads, the GS ( H header) and others.
SHAPED = st.sampled_from([0x12, 0x16, 0x1A, 0x32, 0x00, 0x03, 0x0C, 0x10, 0x14, 0x37, 0x22, 0x30])
BYTES = st.one_of(st.integers(0, 255), SHAPED)
times = st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False))
raw_replies = st.one_of(
    st.none(),
    st.binary(max_size=6),
    st.builds(Reply, st.binary(max_size=6), times, times),
)


@contextmanager
def quiet() -> Iterator[None]:
    """decode_status logs every rejected reply at WARNING: thousands here."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def passes(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except StatusReplyError:
        return False
    return True


def data_of(reply: Reply | bytes | None) -> bytes | None:
    return reply.data if isinstance(reply, Reply) else reply


@fuzz(weight=2.0)
@given(
    st.dictionaries(st.integers(-1, 6), raw_replies, max_size=6),
    raw_replies,
    times,
    st.booleans(),
)
@example({n: b"\x12" for n in (1, 2, 3, 4)}, b"\x10\x00\x00", None, False)  # short ASB
@example({1: b"\x12", 2: b"\x12", 3: b"\x12", 4: b""}, None, None, True)
def test_any_replies_decode_to_a_status(
    realtime: dict[int, Reply | bytes | None],
    asb: Reply | bytes | None,
    now: float | None,
    link_up: bool,
) -> None:
    with quiet():
        status = decode_status(realtime, asb=asb, at=AT, now=now, link_up=link_up)
    if status.source is StatusSource.ASB:
        assert passes(check_asb, data_of(asb))
    elif status.source is StatusSource.REALTIME:
        assert all(passes(check_realtime, n, data_of(realtime[n])) for n in (1, 2, 3, 4))
    else:  # nothing valid: not "ready", just not known
        assert status.reachable is link_up and not status.online
        assert status.state is not PrinterState.READY


@st.composite
def conversations(draw: st.DrawFn) -> list[tuple[str, bytes | int]]:
    """Reads from the printer interleaved with what the driver pops."""
    steps: list[tuple[str, bytes | int]] = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["random", "answer"]))
            if kind == "answer":
                data = cmd.response_reply(f"{draw(st.integers(0, 9999)):04d}".encode())
            else:
                data = bytes(draw(st.lists(BYTES, max_size=64)))
            steps.append(("read", data))
        else:
            what = draw(st.sampled_from(["realtime", "paper_sensor", "response", "clear"]))
            steps.append((what, draw(st.integers(0, 9999))))
    return steps


@fuzz(weight=2.0)
@given(conversations())
def test_any_stream_gives_only_well_shaped_replies(steps: list[tuple[str, bytes | int]]) -> None:
    inbox, sent = ReplyInbox(), b""
    with never_hangs(f"{len(steps)} steps"):
        for what, arg in steps:
            if what == "read":
                assert isinstance(arg, bytes)
                inbox.feed(arg)
                sent += arg
            elif what == "realtime":
                got = inbox.pop_realtime()
                assert got is None or passes(check_realtime, 1, got)
            elif what == "paper_sensor":
                got = inbox.pop_paper_sensor()
                assert got is None or (len(got) == 1 and got[0] & 0x90 == 0)
            elif what == "response":
                assert isinstance(arg, int)
                if inbox.pop_response(arg):
                    assert cmd.response_reply(f"{arg:04d}".encode()) in sent
            else:
                inbox.clear()
            if inbox.asb is not None:
                assert len(inbox.asb) == 4 and inbox.asb in sent


@pytest.mark.parametrize("reads", [256])
def test_a_chattering_printer_does_not_stall_the_next_answer(reads: int) -> None:
    """A printer that keeps sending reply-shaped bytes: the driver takes one reply per read,
    the rest stays. Before, the inbox kept all of it (1 MiB here) and then dropped it one
    byte at a time from the front: the next end-of-job answer took minutes to find."""
    inbox = ReplyInbox()
    with never_hangs(f"{reads} reads of chatter"):
        for _ in range(reads):
            inbox.feed(ONLINE * 4096)  # one read, as a status poll makes it
            assert inbox.pop_realtime() == ONLINE
        inbox.feed(cmd.response_reply(b"0007"))
        assert inbox.pop_response(7) is True
