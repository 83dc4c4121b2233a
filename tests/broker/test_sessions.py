"""The per-connection cores, without sockets or clocks."""

from __future__ import annotations

from datetime import UTC, datetime

import msgpack
import pytest

from broker.fleet import steps_to
from broker.session_kds import KdsSession, all_day
from broker.session_store import Resume, StoreSession, check_hello, recovery, store_frame
from broker.storage import Entry, EntryKind, StreamSlice
from kitchen.routing import plan_submit
from protocol.close_codes import CloseCode
from protocol.config import StoreConfig
from protocol.errors import TransitionError
from protocol.jobs import JobState
from protocol.messages.store import Hello
from protocol.orders import Order
from protocol.tickets import LineState, TicketState
from tests.broker.helpers import order, store_config

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def hello(**kw: object) -> Hello:
    return Hello.model_validate({"store_id": "s1", "client_version": "x", **kw})


def test_hello_checks_and_recovery_rule() -> None:
    assert check_hello(hello(), "s1") is None
    refused = check_hello(hello(protocol=9), "s1")
    assert refused is not None and refused.code is CloseCode.PROTOCOL_UNSUPPORTED
    refused = check_hello(hello(), "s2")
    assert refused is not None and refused.code is CloseCode.POLICY
    stream = StreamSlice("e1", first=10, head=20, entries=[])
    assert recovery(hello(resume={"epoch": "e1", "offset": 9}), stream) is Resume.REPLAY
    assert recovery(hello(resume={"epoch": "e1", "offset": 20}), stream) is Resume.REPLAY
    assert (
        recovery(hello(resume={"epoch": "e1", "offset": 8}), stream) is Resume.SNAPSHOT
    )  # trimmed
    assert recovery(hello(resume={"epoch": "e1", "offset": 21}), stream) is Resume.SNAPSHOT
    assert recovery(hello(resume={"epoch": "e0", "offset": 12}), stream) is Resume.SNAPSHOT
    assert recovery(hello(), stream) is Resume.SNAPSHOT


def test_store_frames_and_cumulative_acks() -> None:
    job = Entry(3, EntryKind.JOB, '{"job_id":"j1"}', "j1")
    frame = store_frame(job, "UTC")
    assert frame is not None and msgpack.unpackb(frame) == {
        "type": "job",
        "offset": 3,
        "job": {"job_id": "j1"},
    }
    assert store_frame(job, "UTC") is frame  # encoded once
    assert store_frame(Entry(4, EntryKind.TICKET, "{}", "grill"), "UTC") is None
    cancel = store_frame(Entry(5, EntryKind.CANCEL, '{"job_id":"j1"}'), "UTC")
    assert cancel is not None and msgpack.unpackb(cancel)["type"] == "cancel"
    s = StoreSession("s1")
    s.sent(job, T0)
    s.sent(Entry(7, EntryKind.JOB, "{}", "j2"), T0)
    assert s.ack(5) == [("j1", T0)]
    assert s.ack(5) == [] and s.ack(4) == []
    assert s.ack(7) == [("j2", T0)]


def test_job_report_steps() -> None:
    assert steps_to(JobState.SPOOLED, JobState.PRINTING) == [JobState.PRINTING]
    assert steps_to(JobState.QUEUED, JobState.PRINTING) == [
        JobState.SENT,
        JobState.SPOOLED,
        JobState.PRINTING,
    ]
    assert steps_to(JobState.SENT, JobState.HELD) == [JobState.SPOOLED, JobState.HELD]
    assert steps_to(JobState.QUEUED, JobState.FAILED) == [JobState.FAILED]
    with pytest.raises(TransitionError):
        steps_to(JobState.PRINTED, JobState.PRINTING)
    with pytest.raises(TransitionError):
        steps_to(JobState.QUEUED, JobState.PRINTED)


def test_kds_session_filters_and_counts() -> None:
    cfg = StoreConfig.model_validate(store_config())
    plan = plan_submit(Order.model_validate(order()), "o-1", cfg, T0)
    grill_ticket = plan.tickets[0]
    session = KdsSession("s-001", cfg.stations[0])
    session.load([])
    entry = Entry(5, EntryKind.TICKET, grill_ticket.model_dump_json(), "grill")
    frames = session.frames(entry)
    assert [f.split('"type":"')[1].split('"')[0] for f in frames] == ["ticket", "all_day"]
    assert session.frames(entry) == []  # same version again: nothing
    assert (
        session.frames(Entry(6, EntryKind.TICKET, plan.tickets[1].model_dump_json(), "bar")) == []
    )
    done = grill_ticket.model_copy(
        update={
            "version": 2,
            "state": TicketState.READY,
            "lines": tuple(
                ln.model_copy(update={"state": LineState.READY}) for ln in grill_ticket.lines
            ),
        }
    )
    frames = session.frames(Entry(7, EntryKind.TICKET, done.model_dump_json(), "grill"))
    assert '"ticket_removed"' in frames[0] and '"counts":{}' in frames[1]
    assert all_day(plan.tickets) == {"Double cheeseburger": 2, "宫保鸡丁": 1, "Iced lemon tea": 2}
    snap = session.snapshot("e", 7)
    assert snap.tickets == () and snap.all_day == {}


def test_snapshot_order_puts_jobs_the_stream_read_missed_by_their_age() -> None:
    """A job committed while the snapshot read the stream is in the record scan but not
    at an offset yet: it goes after the ones that are, not first (found in CI by
    test_kill_9_with_50_jobs_spooled); one trimmed from the stream goes before them."""
    import json

    from broker.session_store import snapshot_jobs

    def doc(job_id: str, minute: int) -> str:
        job = {"job_id": job_id, "created_at": f"2026-11-29T12:{minute:02d}:00+00:00"}
        return json.dumps({"job": job, "state": "spooled"})

    docs = [doc("new", 30), doc("b", 20), doc("a", 10), doc("trimmed", 5)]
    ordered = snapshot_jobs(docs, {"a": 7, "b": 8})
    assert [j.job_id for j in ordered] == ["trimmed", "a", "b", "new"]
