"""The sans-I/O link core: hello/resume, durable-then-ack, close codes."""

from __future__ import annotations

import random

from protocol import CloseCode, StreamPosition
from protocol.messages.store import Ack, CancelJob, Error, JobMessage, Welcome
from store_client.backoff import Backoff
from store_client.link import Durable, Link, Phase, Reconnect, Stop
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
    assert batch is not None and batch.snapshot and batch.jobs == (job,)
    assert batch.position == StreamPosition(epoch="new", offset=9)
    assert lk.durable(batch) == Ack(offset=9)


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


def test_close_codes() -> None:
    lk = link()
    for code in (CloseCode.TAKEN_OVER, CloseCode.TOKEN_REVOKED, CloseCode.POLICY, 4502):
        assert isinstance(lk.closed(code, "x"), Stop)
    assert lk.phase is Phase.STOPPED
    for code in (None, 1006, CloseCode.SLOW_CONSUMER, 1011, 4000):
        assert isinstance(lk.closed(code), Reconnect)
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
