"""The hub's catch-up: wake-ups without entries (redis) while a read is under way."""

from __future__ import annotations

import asyncio

import pytest

from broker.errors import StorageError
from broker.hub import Hub
from broker.storage import Entry, EntryKind, MemoryStorage, NewEntry, StreamSlice, Tx


class SlowReads(MemoryStorage):
    """Memory storage whose reads wait for ``gate`` (a slow Redis round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reads = 0

    async def read(self, store_id: str, after: int, limit: int) -> StreamSlice:
        got = await super().read(store_id, after, limit)  # the state when the read was sent
        if limit:
            self.reads += 1
            await self.gate.wait()
        return got


class Peer:
    store_id = "s1"

    def __init__(self) -> None:
        self.offsets: list[int] = []

    def deliver(self, entry: Entry) -> None:
        self.offsets.append(entry.offset)

    def reset(self) -> None:
        raise AssertionError("no reset expected")


async def test_a_wake_up_during_a_catch_up_read_is_not_dropped() -> None:
    storage = SlowReads()
    hub = Hub(storage)
    peer = Peer()
    await hub.attach(peer)
    job = NewEntry(EntryKind.JOB, "{}", "j")
    storage.listen(lambda *args: None)  # commits land unseen, as on another node
    c1 = await storage.commit("s1", Tx([], [job]))
    hub.on_commit("s1", c1.epoch, c1.head, [])  # wake-up 1: a read starts
    await asyncio.sleep(0)
    assert storage.reads == 1
    c2 = await storage.commit("s1", Tx([], [job, job]))
    hub.on_commit("s1", c2.epoch, c2.head, [])  # wake-up 2 while read 1 is on its way
    storage.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert peer.offsets == [1, 2, 3]


# -- a feed that was replaced never touches its replacement (issue 12 #8) -----------------


class Gated(MemoryStorage):
    """Memory storage with fault injection: the next read of a kind (``fail_catch_up``:
    a catch-up read; ``fail_head``: a head read) waits for ``gate``, then raises as a lost
    Redis connection would. ``hold_head`` holds head reads at ``gate`` without failing."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.failed = asyncio.Event()
        self.fail_catch_up = False
        self.fail_head = False
        self.hold_head = False

    async def read(self, store_id: str, after: int, limit: int) -> StreamSlice:
        if (limit and self.fail_catch_up) or (not limit and self.fail_head):
            self.fail_catch_up = self.fail_head = False
            await self.gate.wait()
            self.failed.set()
            raise StorageError("injected: redis connection lost")
        got = await super().read(store_id, after, limit)
        if not limit and self.hold_head:
            await self.gate.wait()
        return got


class Link:
    """A peer that remembers what it got, and whether it was told to reconnect."""

    store_id = "s1"

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.resets = 0

    def deliver(self, entry: Entry) -> None:
        self.offsets.append(entry.offset)

    def reset(self) -> None:
        self.resets += 1


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def commit_unseen(storage: MemoryStorage, n: int = 1) -> tuple[str, int]:
    """Commit ``n`` jobs as another node would: the hub hears only a wake-up."""
    c = await storage.commit("s1", Tx([], [NewEntry(EntryKind.JOB, "{}", "j")] * n))
    return c.epoch, c.head


async def test_a_failing_catch_up_of_a_detached_feed_leaves_the_new_feed_alone() -> None:
    storage = Gated()
    hub = Hub(storage)
    storage.listen(lambda *args: None)
    old = Link()
    await hub.attach(old)
    storage.fail_catch_up = True
    epoch, head = await commit_unseen(storage)
    hub.on_commit("s1", epoch, head, [])  # the old feed starts reading; the read hangs
    await settle()
    await hub.detach(old)  # the link went away ...
    new = Link()
    assert await hub.attach(new) == (epoch, 1)  # ... and came back: a new feed
    storage.gate.set()  # the old feed's read fails now
    await storage.failed.wait()
    await settle()
    epoch, head = await commit_unseen(storage)
    hub.on_commit("s1", epoch, head, [])
    await settle()
    assert new.offsets == [2] and new.resets == 0


async def test_a_peer_of_a_reset_feed_leaving_late_does_not_drop_the_new_feed() -> None:
    storage = Gated()
    hub = Hub(storage)
    storage.listen(lambda *args: None)
    old = Link()
    epoch, _ = await hub.attach(old)
    hub.on_commit("s1", "another-epoch", 7, [])  # the stream was recreated: reset
    assert old.resets == 1
    storage.hold_head = True
    leaving = Link()
    first = asyncio.create_task(hub.attach(leaving))  # reads the head (held) ...
    await settle()
    late = Link()
    second = asyncio.create_task(hub.attach(late))  # ... while this one waits for it
    await settle()
    storage.gate.set()
    await asyncio.sleep(0)  # the first attach completes and wakes the second ...
    assert first.done()
    await hub.detach(leaving)  # ... but its link drops before the second resumes
    await hub.detach(old)  # and the reset link's handler finishes late
    await asyncio.wait_for(second, 1)
    epoch, head = await commit_unseen(storage)
    hub.on_commit("s1", epoch, head, [])
    await settle()
    assert late.offsets == [head] and late.resets == 0


async def test_a_failed_head_read_does_not_stall_the_next_link() -> None:
    storage = Gated()
    hub = Hub(storage)
    storage.fail_head = True
    first = asyncio.create_task(hub.attach(Link()))
    await settle()
    second = asyncio.create_task(hub.attach(Link()))
    await settle()
    storage.gate.set()
    with pytest.raises(StorageError):
        await first
    _, head = await asyncio.wait_for(second, 1.0)  # it reads the head itself
    assert head == 0


async def test_a_catch_up_read_that_fails_while_storage_is_away_keeps_the_links() -> None:
    """Redis goes down just as a wake-up comes: the link stays up and gets the entries once
    the read succeeds again (it was reset, closing the store link, before)."""
    storage = Gated()
    hub = Hub(storage)
    storage.listen(lambda *args: None)
    link = Link()
    await hub.attach(link)
    storage.fail_catch_up = True
    epoch, head = await commit_unseen(storage, 2)
    hub.on_commit("s1", epoch, head, [])  # the catch-up read starts and hangs ...
    await settle()
    storage.gate.set()  # ... then fails as a lost connection does
    await storage.failed.wait()
    epoch, head = await commit_unseen(storage)  # a wake-up while the read waits to retry
    hub.on_commit("s1", epoch, head, [])
    for _ in range(100):
        if link.offsets == [1, 2, 3]:
            break
        await asyncio.sleep(0.01)
    assert link.offsets == [1, 2, 3] and link.resets == 0
