"""The hub's catch-up: wake-ups without entries (redis) while a read is under way."""

from __future__ import annotations

import asyncio

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
