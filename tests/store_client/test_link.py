"""The sans-I/O link core: hello/resume, durable-then-ack, close codes."""

from __future__ import annotations

import random

from protocol import CloseCode, StreamPosition
from protocol.messages.store import (
    Ack,
    CancelJob,
    Error,
    JobMessage,
    ReportsAck,
    SnapshotEnd,
    SnapshotPage,
    Welcome,
)
from store_client.backoff import Backoff
from store_client.link import TERMINAL_RETRY_S, Durable, Link, Phase, Reconnect, ReportsDone
from tests.store_client.factories import make_job


def link() -> Link:
    return Link("s-1", "0.1.0", ("kitchen",), backoff=Backoff(rng=random.Random(7)))


def test_hello_resumes_from_spool_position() -> None:
    lk = link()
    hello = lk.connected(StreamPosition(epoch="e", offset=41))
    assert hello.resume == StreamPosition(epoch="e", offset=41)
    assert hello.store_id == "s-1" and hello.printers == ("kitchen",)
    assert lk.phase is Phase.HELLO_SENT


def test_recovered_welcome_keeps_position_until_replay_is_spooled() -> None:
    lk = link()
    lk.connected(StreamPosition(epoch="e", offset=41))
    batch = lk.received(Welcome(epoch="e", offset=50, recovered=True, config=None))
    assert batch == Durable(StreamPosition(epoch="e", offset=41))
    job = make_job(1)
    batch = lk.received(JobMessage(offset=42, job=job))
    assert batch == Durable(StreamPosition(epoch="e", offset=42), jobs=(job,))
    assert lk.durable(batch) == Ack(offset=42)


def test_unrecovered_welcome_is_a_snapshot_at_the_head() -> None:
    lk = link()
    lk.connected(StreamPosition(epoch="old", offset=3))
    job = make_job(1)
    batch = lk.received(Welcome(epoch="new", offset=9, recovered=False, config=None, jobs=(job,)))
    assert isinstance(batch, Durable) and batch.snapshot and batch.jobs == (job,)
    assert batch.live == frozenset({job.job_id})
    assert batch.position == StreamPosition(epoch="new", offset=9)
    assert lk.durable(batch) == Ack(offset=9)


def test_paged_snapshot_spools_pages_then_acks_the_head_with_the_live_set() -> None:
    lk = link()
    lk.connected(None)
    first = lk.received(Welcome(epoch="e", offset=9, recovered=False, config=None, paged=True))
    assert first == Durable(None) and lk.durable(first) is None
    assert lk.phase is Phase.SNAPSHOT
    a, b, c = make_job(1), make_job(2), make_job(3)
    page = lk.received(SnapshotPage(jobs=(a, b)))
    assert page == Durable(None, jobs=(a, b)) and lk.durable(page) is None
    lk.received(SnapshotPage(jobs=(c,)))
    end = lk.received(SnapshotEnd(offset=9, count=3))
    assert isinstance(end, Durable) and lk.phase is Phase.ONLINE
    assert end.live == frozenset({a.job_id, b.job_id, c.job_id})
    assert lk.durable(end) == Ack(offset=9)


def test_an_incomplete_paged_snapshot_drops_nothing() -> None:
    lk = link()
    lk.connected(None)
    lk.received(Welcome(epoch="e", offset=4, recovered=False, config=None, paged=True))
    lk.received(SnapshotPage(jobs=(make_job(1),)))
    end = lk.received(SnapshotEnd(offset=4, count=2))
    assert isinstance(end, Durable) and end.live is None and not end.snapshot
    assert lk.durable(end) == Ack(offset=4)
    assert lk.last_error is not None and "1 jobs" in lk.last_error


def test_reports_ack_is_passed_on() -> None:
    lk = link()
    lk.connected(None)
    assert lk.received(ReportsAck(seq=12)) == ReportsDone(12)


def test_messages_before_welcome_are_ignored() -> None:
    lk = link()
    lk.connected(None)
    assert lk.received(CancelJob(offset=1, job_id="j")) is None
    assert lk.last_error == "cancel before welcome"


def test_error_message_is_kept_not_fatal() -> None:
    lk = link()
    lk.connected(None)
    lk.received(Welcome(epoch="e", offset=0, recovered=False, config=None))
    assert lk.received(Error(code="bad_request", message="nope")) is None
    assert lk.phase is Phase.ONLINE and lk.last_error == "bad_request: nope"


def test_no_close_code_stops_the_client_for_good() -> None:
    lk = link()
    for code in (CloseCode.TOKEN_REVOKED, CloseCode.POLICY, 4502, CloseCode.TOO_BIG):
        decision = lk.closed(code, "x")
        assert isinstance(decision, Reconnect) and decision.code == code
        assert decision.delay_s >= TERMINAL_RETRY_S / 2 or code == CloseCode.TOO_BIG
        assert not decision.standby and lk.phase is Phase.DISCONNECTED
    taken = lk.closed(CloseCode.TAKEN_OVER, "another store client took over")
    assert taken.standby and lk.phase is Phase.STANDBY
    assert taken.reason == "another store client took over"
    for code in (None, 1006, CloseCode.SLOW_CONSUMER, 1011, 4000):
        decision = lk.closed(code)
        assert decision.delay_s <= 30.0 and not decision.standby
    drain = lk.closed(CloseCode.SERVER_RESTART)
    assert isinstance(drain, Reconnect) and drain.delay_s <= 1.0


def test_backoff_grows_with_jitter_and_resets_on_welcome() -> None:
    lk = link()
    ceilings = []
    for _ in range(8):
        lk.closed(None)
        ceilings.append(min(lk.backoff.cap_s, lk.backoff.base_s * 2 ** (lk.backoff.attempts - 1)))
    assert ceilings == sorted(ceilings) and ceilings[-1] == 30.0
    lk.connected(None)
    lk.received(Welcome(epoch="e", offset=0, recovered=False, config=None))
    assert lk.backoff.attempts == 0
    delays = [Backoff(rng=random.Random(i)).next_delay() for i in range(50)]
    assert len(set(delays)) > 1 and max(delays) <= 0.5


def test_several_broker_urls_are_taken_in_turn() -> None:
    from pathlib import Path

    from store_client.daemon import ClientSettings

    s = ClientSettings(
        broker="ws://a:1, wss://b:2/ ,ws://c:3/custom", store_id="s", token="t", spool_dir=Path()
    )
    assert s.urls() == ["ws://a:1/v1/ws/store", "wss://b:2/v1/ws/store", "ws://c:3/custom"]
    assert [s.url(i) for i in range(4)] == [*s.urls(), "ws://a:1/v1/ws/store"]
    assert (
        ClientSettings(broker="ws://a:1", store_id="s", token="t").url(5).endswith(":1/v1/ws/store")
    )


def test_a_retry_after_from_the_broker_is_waited_out_with_a_little_jitter() -> None:
    waits = [
        Link("s-1", "0.1.0", (), backoff=Backoff(rng=random.Random(i)))
        .closed(None, retry_after_s=20)
        .delay_s
        for i in range(20)
    ]
    assert all(20 <= w <= 24 for w in waits) and len(set(waits)) > 1
    lk = link()
    assert lk.closed(None, retry_after_s=10_000).delay_s <= 300 * 1.2  # capped
    quick = lk.closed(None, retry_after_s=0.001)  # the backoff is not shortened by it
    assert quick.delay_s >= 0.001 and quick.code is None


def test_a_broker_that_refuses_the_protocol_gets_the_previous_one_at_once() -> None:
    link = Link("s-001", "0.2.0", ())
    assert link.connected(None).protocol == 2
    again = link.closed(CloseCode.PROTOCOL_UNSUPPORTED, "protocol 2 unsupported")
    assert again.delay_s < 1.0 and link.protocol == 1
    assert link.connected(None).protocol == 1
    # the oldest version refused too: no lower one; retried like any refusal
    later = link.closed(CloseCode.PROTOCOL_UNSUPPORTED, "protocol 1 unsupported")
    assert link.protocol == 1 and later.delay_s > 1.0
    # too old a client is not a protocol question: the version stays
    newer = Link("s-001", "0.2.0", ())
    newer.closed(CloseCode.PROTOCOL_UNSUPPORTED, "store client 0.2.0 is older than 9.0")
    assert newer.protocol == 2
