"""Sorting a printer's answers (printer_drivers/replies.py): the GS ( H end-of-job barrier
is confirmed only by the answer carrying its own process id, wherever that answer falls in
the byte stream it shares with DLE EOT, GS r and ASB replies (DESIGN.md §4)."""

from __future__ import annotations

from printer_drivers.replies import ReplyInbox

ONLINE = b"\x12"  # a DLE EOT reply: fixed bits 0xx1xx10, nothing wrong
PAPER_OK = b"\x00"  # a GS r 1 reply: fixed bits 0xx0xxxx, paper present
ASB = b"\x10\x00\x00\x00"  # an ASB block: head 0xx1xx00, then three 0xx0xxxx bytes


def answer(process_id: int) -> bytes:
    """The printer's answer to GS ( H fn=48 (Epson ESC/POS reference, GS ( H):
    header 37h, identifier 22h, the four id digits d1..d4, NUL."""
    return b"\x37\x22" + f"{process_id:04d}".encode("ascii") + b"\x00"


def test_own_answer_confirms_once() -> None:
    inbox = ReplyInbox()
    assert inbox.pop_response(7) is False  # nothing yet
    inbox.feed(answer(7))
    assert inbox.pop_response(7) is True
    assert inbox.pop_response(7) is False  # consumed: cannot confirm a second wait


def test_a_strangers_answer_never_confirms() -> None:
    inbox = ReplyInbox()
    inbox.feed(answer(9999))
    assert inbox.pop_response(1) is False
    inbox.feed(answer(2))  # another id still
    assert inbox.pop_response(1) is False
    inbox.feed(answer(1))
    assert inbox.pop_response(1) is True


def test_own_answer_behind_a_strangers_in_one_read() -> None:
    inbox = ReplyInbox()
    inbox.feed(answer(41) + answer(42))
    assert inbox.pop_response(42) is True


def test_stranger_does_not_eat_the_own_answer_that_follows() -> None:
    """The stranger is dropped whole, not byte by byte: its NUL never looks like a GS r reply
    and the own answer right behind it is found."""
    inbox = ReplyInbox()
    inbox.feed(answer(5) + answer(6))
    assert inbox.pop_response(6) is True


def test_answer_split_across_reads() -> None:
    whole = answer(1234)
    for cut in range(1, len(whole)):
        inbox = ReplyInbox()
        inbox.feed(whole[:cut])
        assert inbox.pop_response(1234) is False, cut
        inbox.feed(whole[cut:])
        assert inbox.pop_response(1234) is True, cut


def test_a_strangers_answer_split_across_reads_never_confirms() -> None:
    inbox = ReplyInbox()
    stranger = answer(8)
    inbox.feed(stranger[:3])
    assert inbox.pop_response(9) is False
    inbox.feed(stranger[3:])
    assert inbox.pop_response(9) is False
    inbox.feed(answer(9))
    assert inbox.pop_response(9) is True


def test_status_replies_around_the_answer() -> None:
    inbox = ReplyInbox()
    inbox.feed(ONLINE + ASB + answer(3) + ONLINE)
    assert inbox.pop_response(3) is True
    assert inbox.asb == ASB  # an ASB block met on the way is kept, not lost
    assert inbox.pop_realtime() == ONLINE  # what came after the answer is still there


def test_an_answer_never_passes_for_a_status_reply() -> None:
    """Its last byte (NUL) has the shape of a GS r reply "paper present": it must not
    confirm a GS r barrier, and no byte of it is a DLE EOT reply."""
    inbox = ReplyInbox()
    inbox.feed(answer(10))
    assert inbox.pop_paper_sensor() is None
    inbox.feed(answer(11))
    assert inbox.pop_realtime() is None
    inbox.feed(answer(12)[:4])  # half an answer, then the rest and a real GS r reply
    assert inbox.pop_paper_sensor() is None
    inbox.feed(answer(12)[4:] + PAPER_OK)
    assert inbox.pop_paper_sensor() == PAPER_OK


def test_process_id_is_taken_modulo_10000() -> None:
    """GS ( H carries four digits: the facade's counter wraps (printer.py ``_barrier``)."""
    inbox = ReplyInbox()
    inbox.feed(answer(5))
    assert inbox.pop_response(10_005) is True
    inbox.feed(answer(0))
    assert inbox.pop_response(10_000) is True


def test_clear_forgets_a_late_answer() -> None:
    """A dropped link clears the inbox: an answer that arrived before cannot confirm later."""
    inbox = ReplyInbox()
    inbox.feed(answer(4))
    inbox.clear()
    assert inbox.pop_response(4) is False
