"""The store link's opening (``session_store.Opening``, ``StreamWalk``), without sockets:
replay or snapshot, the welcome, and the one walk over the stream that serves both."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgpack
import pytest

from broker.errors import BrokerError
from broker.session_store import (
    HISTORY_MOVED,
    Frames,
    Opening,
    Refusal,
    Resume,
    StreamWalk,
)
from broker.storage import Entry, EntryKind, MemoryStorage, NewEntry, Tx
from broker.storage.leases import Holder
from protocol.close_codes import CloseCode
from protocol.messages.store import Hello

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def hello(**kw: object) -> Hello:
    return Hello.model_validate({"store_id": "s1", "client_version": "x", **kw})


def job(offset: int, job_id: str) -> Entry:
    return Entry(offset, EntryKind.JOB, json.dumps({"job_id": job_id}), job_id)


def stream() -> list[Entry]:
    """Offsets 1-8 of a store's stream, every kind the store link sees or skips."""
    return [
        job(1, "j1"),
        Entry(2, EntryKind.TICKET, "{}", "grill"),
        job(3, "j3"),
        Entry(4, EntryKind.ORDER, "{}", "expo"),
        Entry(5, EntryKind.CANCEL, json.dumps({"job_id": "j1"})),
        Entry(6, EntryKind.CONFIG, json.dumps({"version": 2, "timezone": None})),
        job(7, "j7"),
        job(8, "j8"),
    ]


def after(entries: list[Entry], offset: int, limit: int = 500) -> list[Entry]:
    """What ``storage.read(store, offset, limit)`` answers from ``entries``."""
    return [e for e in entries if e.offset > offset][:limit]


def sent(step: Frames | Refusal) -> list[tuple[int, str, dict[str, object]]]:
    """(entry offset, frame type, frame) of each frame a page asks to send."""
    assert isinstance(step, Frames), step
    out = []
    for entry, frame in step.sends:
        msg = msgpack.unpackb(frame)
        assert msg["offset"] == entry.offset  # each frame with the entry it encodes
        out.append((entry.offset, msg["type"], msg))
    return out


# -- replay ---------------------------------------------------------------------------


def test_replay_sends_the_store_entries_after_the_clients_offset_and_stops_at_the_head() -> None:
    entries = stream()
    walk = StreamWalk.replay(after=2, head=6, timezone="Europe/Paris")
    assert walk.after == 2
    step = walk.page_read(after(entries, 2))  # the page runs past the head: 7 and 8
    got = sent(step)
    assert [(o, t) for o, t, _ in got] == [(3, "job"), (5, "cancel"), (6, "config")]
    assert got[2][2]["config"]["timezone"] == "Europe/Paris"  # the default where none
    assert walk.after is None  # done: 7 and 8 come through the hub


def test_replay_pages_until_the_head() -> None:
    entries = stream()
    walk = StreamWalk.replay(after=0, head=7, timezone="UTC")
    offsets = []
    reads = []
    while walk.after is not None:
        reads.append(walk.after)
        offsets += [o for o, _, _ in sent(walk.page_read(after(entries, walk.after, limit=3)))]
    assert reads == [0, 3, 6]  # where each page was read after
    assert offsets == [1, 3, 5, 6, 7]


def test_replay_from_the_head_reads_nothing() -> None:
    assert StreamWalk.replay(after=6, head=6, timezone="UTC").after is None


@pytest.mark.parametrize("page", [[job(4, "j4"), job(5, "j5")], []], ids=["gap", "empty"])
def test_a_replay_that_finds_history_gone_refuses(page: list[Entry]) -> None:
    walk = StreamWalk.replay(after=2, head=6, timezone="UTC")
    step = walk.page_read(page)
    assert step == Refusal(CloseCode.TRY_AGAIN_LATER, "history moved: reconnect")
    assert step is HISTORY_MOVED
    assert walk.after is None
    with pytest.raises(BrokerError):
        walk.page_read(page)  # nothing more to read once it refused


# -- scan (for the snapshot's order) --------------------------------------------------


def test_the_scan_reads_past_the_head_and_keeps_only_where_jobs_are() -> None:
    entries = stream()
    walk = StreamWalk.scan(head=4, wanted=3)
    reads = []
    while walk.after is not None:
        reads.append(walk.after)
        assert walk.page_read(after(entries, walk.after, limit=3)) == Frames()  # sends nothing
    assert reads == [0, 3, 6, 8]  # past the head (4) until a page comes back empty
    assert walk.job_offsets == {"j1": 1, "j3": 3, "j7": 7, "j8": 8}


def test_a_scan_for_no_live_jobs_reads_nothing() -> None:
    assert StreamWalk.scan(head=4, wanted=0).after is None


# -- the opening: replay or snapshot, and the welcome ----------------------------------


def opened(
    resume: dict[str, object] | None,
    previous: Holder | None = None,
    client_id: str | None = "pc-1",
    first: int = 3,
) -> Opening:
    opening = Opening.after_takeover(hello(resume=resume, client_id=client_id), previous)
    opening.attached("e1", head=6, first=first)
    return opening


def test_a_client_resuming_within_the_history_is_replayed_to() -> None:
    opening = opened({"epoch": "e1", "offset": 2})
    assert opening.mode is Resume.REPLAY and opening.recovered
    welcome = opening.welcome(None, T0)
    assert (welcome.epoch, welcome.offset, welcome.recovered, welcome.paged) == (
        "e1",
        6,
        True,
        False,
    )
    assert welcome.now == T0 and welcome.jobs == ()
    walk = opening.replay("UTC")
    assert (walk.after, walk.head) == (2, 6)
    assert [o for o, _, _ in sent(walk.page_read(after(stream(), 2)))] == [3, 5, 6]


def test_the_same_client_holding_the_store_last_is_replayed_to() -> None:
    same = Holder("node-a", "link-1", "pc-1", live=False)
    assert opened({"epoch": "e1", "offset": 2}, same).mode is Resume.REPLAY
    unknown = Holder("node-a", "link-1", None)  # an older client sent no id
    assert opened({"epoch": "e1", "offset": 2}, unknown).mode is Resume.REPLAY


@pytest.mark.parametrize(
    ("resume", "first"),
    [
        (None, 1),  # a new spool
        ({"epoch": "e0", "offset": 2}, 1),  # another epoch: the stream was recreated
        ({"epoch": "e1", "offset": 1}, 3),  # trimmed: 2 is gone
        ({"epoch": "e1", "offset": 7}, 1),  # ahead of the head
    ],
    ids=["no-resume", "other-epoch", "trimmed", "ahead"],
)
def test_an_unrecoverable_resume_gets_a_paged_snapshot(
    resume: dict[str, object] | None, first: int
) -> None:
    opening = opened(resume, first=first)
    assert opening.mode is Resume.SNAPSHOT and not opening.recovered
    welcome = opening.welcome(None, T0)
    assert (welcome.offset, welcome.recovered, welcome.paged) == (6, False, True)
    with pytest.raises(BrokerError):
        opening.replay("UTC")


def test_another_client_gets_a_snapshot_whatever_its_resume() -> None:
    other = Holder("node-a", "link-1", "pc-2")
    opening = opened({"epoch": "e1", "offset": 2}, other, client_id="pc-1")
    assert opening.foreign and opening.mode is Resume.SNAPSHOT


def live(job_id: str, state: str, minute: int) -> str:
    created = f"2026-11-21T12:{minute:02d}:00+00:00"
    return json.dumps({"job": {"job_id": job_id, "created_at": created}, "state": state})


@pytest.mark.parametrize("resume", [None, {"epoch": "e0", "offset": 4}], ids=["new", "old"])
def test_the_snapshot_sends_live_jobs_in_stream_order_but_never_ones_printing(
    resume: dict[str, object] | None,
) -> None:
    opening = opened(resume)
    docs = [live("j8", "spooled", 8), live("j3", "printing", 3), live("j1", "queued", 1)]
    scan = opening.scan(len(docs))
    while scan.after is not None:
        scan.page_read(after(stream(), scan.after))
    snap = opening.snapshot(docs, scan)
    assert [j.job_id for j in snap.jobs] == ["j1", "j8"]
    # only a client with an empty spool cannot tell how what it was printing ended
    assert [j.job_id for j in snap.lost] == (["j3"] if resume is None else [])


# -- over a real stream ---------------------------------------------------------------


async def test_walks_over_a_memory_stream_trimmed_while_the_link_opens() -> None:
    storage = MemoryStorage(stream_max_len=6)
    try:
        j, t, c = EntryKind.JOB, EntryKind.TICKET, EntryKind.CANCEL
        kinds = [j, t, c, j, t, c, j, j, t]  # offsets 1-9
        news = [
            NewEntry(k, json.dumps({"job_id": f"j{n}"}), f"j{n}") for n, k in enumerate(kinds, 1)
        ]
        committed = await storage.commit("s1", Tx(entries=news[:7]))
        epoch, head = committed.epoch, committed.head
        first = (await storage.read("s1", head, 0)).first
        assert (head, first) == (7, 2)  # 1 is trimmed already
        opening = Opening.after_takeover(hello(resume={"epoch": epoch, "offset": 1}), None)
        assert opening.attached(epoch, head, first) is Resume.REPLAY
        await storage.commit("s1", Tx(entries=news[7:]))  # past the head; trims 2 and 3

        replay = opening.replay("UTC")
        assert replay.after == 1
        got = await storage.read("s1", replay.after, 2)
        assert replay.page_read(got.entries) is HISTORY_MOVED  # 2 went while it opened

        scan = opening.scan(wanted=1)
        while scan.after is not None:
            got = await storage.read("s1", scan.after, 2)
            scan.page_read(got.entries)
        assert scan.job_offsets == {"j4": 4, "j7": 7, "j8": 8}  # 8: past the head
    finally:
        await storage.aclose()
