"""Fan-out: committed stream entries to the peers of a store, HQ deltas to HQ screens.

One ``Feed`` per store with peers on this node. Storage tells the hub about every commit
(in commit order); a feed hands each new entry to each of its peers, which encode and
enqueue it without waiting (a full queue closes that peer with 4001; see ``ws.Peer``).
When the listener reports a gap (a Redis wake-up that carries no entries, or a lost one)
the feed reads the missing range from the stream before going on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from broker.storage import Backend, Entry

log = logging.getLogger(__name__)

CATCH_UP_BATCH = 500
ATTACH_TIMEOUT_S = 10.0


class Subscriber(Protocol):
    store_id: str

    def deliver(self, entry: Entry) -> None:
        """Take one entry (offset order, no gaps, no repeats) without blocking."""
        ...

    def reset(self) -> None:
        """The store's stream was recreated: close so the client resumes afresh."""
        ...


class HqSubscriber(Protocol):
    def deliver_hq(self, frame: str) -> None: ...


@dataclass(eq=False)
class Feed:
    store_id: str
    epoch: str = ""
    position: int = -1  # -1: still reading the head
    peers: set[Subscriber] = field(default_factory=set)
    early: list[Entry] = field(default_factory=list)  # commits seen while reading the head
    early_head: int = 0  # the highest head a wake-up without entries told of meanwhile
    wanted: int = 0  # the highest head told of while a catch-up read was under way
    catching_up: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(self, storage: Backend, tasks: asyncio.TaskGroup | None = None) -> None:
        self.storage = storage
        self.tasks = tasks
        self.feeds: dict[str, Feed] = {}
        self.hq: set[HqSubscriber] = set()
        self.delivered = 0
        storage.listen(self.on_commit)
        storage.listen_hq(self._deliver_hq)

    # -- store feeds ---------------------------------------------------------------------
    async def attach(self, peer: Subscriber) -> tuple[str, int]:
        """Subscribe ``peer``; it receives every entry after the returned (epoch, offset)."""
        feed = self.feeds.get(peer.store_id)
        if feed is None:
            feed = self.feeds[peer.store_id] = Feed(peer.store_id)
            try:
                await self.storage.watch(peer.store_id)
                head = await self.storage.read(peer.store_id, 0, 0)
            except BaseException:
                self.feeds.pop(peer.store_id, None)
                raise
            feed.epoch, feed.position = head.epoch, head.head
            early, feed.early = feed.early, []
            self._dispatch(feed, [e for e in early if e.offset > feed.position])
            if feed.early_head > feed.position:
                self._catch_up(feed)  # woken (redis) for a commit the head read missed
            feed.ready.set()
        async with asyncio.timeout(ATTACH_TIMEOUT_S):  # another attach is reading the head
            await feed.ready.wait()
        feed.peers.add(peer)
        return feed.epoch, feed.position

    async def detach(self, peer: Subscriber) -> None:
        feed = self.feeds.get(peer.store_id)
        if feed is None:
            return
        feed.peers.discard(peer)
        if not feed.peers and feed.position >= 0:
            del self.feeds[peer.store_id]
            await self.storage.unwatch(peer.store_id)

    def on_commit(self, store_id: str, epoch: str, head: int, entries: Sequence[Entry]) -> None:
        feed = self.feeds.get(store_id)
        if feed is None:
            return
        if feed.position < 0:
            feed.early.extend(entries)
            feed.early_head = max(feed.early_head, head)
            return
        if epoch != feed.epoch:
            self._reset(feed, epoch, head)
            return
        if head <= feed.position:
            return
        if entries and entries[0].offset <= feed.position + 1 and not feed.catching_up:
            self._dispatch(feed, [e for e in entries if e.offset > feed.position])
        else:
            feed.wanted = max(feed.wanted, head)  # a read under way goes on up to here
            self._catch_up(feed)

    def _dispatch(self, feed: Feed, entries: Sequence[Entry]) -> None:
        for entry in entries:
            feed.position = entry.offset
            for peer in list(feed.peers):
                peer.deliver(entry)
            self.delivered += len(feed.peers)

    def _reset(self, feed: Feed, epoch: str, head: int) -> None:
        if feed.position == 0 or feed.epoch == "unborn":
            log.info("stream born store=%s epoch=%s", feed.store_id, epoch)
        else:
            log.warning("stream reset store=%s epoch %s -> %s", feed.store_id, feed.epoch, epoch)
        for peer in list(feed.peers):
            peer.reset()
        feed.peers.clear()
        self.feeds.pop(feed.store_id, None)

    def _catch_up(self, feed: Feed) -> None:
        if feed.catching_up:
            return
        feed.catching_up = True
        coro = self._read_gap(feed)
        if self.tasks is not None:
            self.tasks.create_task(coro)
        else:
            asyncio.get_running_loop().create_task(coro)

    async def _read_gap(self, feed: Feed) -> None:
        try:
            while True:
                got = await self.storage.read(feed.store_id, feed.position, CATCH_UP_BATCH)
                if got.epoch != feed.epoch:
                    self._reset(feed, got.epoch, got.head)
                    return
                if got.entries and got.entries[0].offset > feed.position + 1:
                    self._reset(feed, got.epoch, got.head)  # history trimmed under us
                    return
                self._dispatch(feed, got.entries)
                if not got.entries or feed.position >= max(got.head, feed.wanted):
                    return
        except Exception:
            log.exception("catch-up failed store=%s", feed.store_id)
            self._reset(feed, feed.epoch, feed.position)
        finally:
            feed.catching_up = False

    # -- HQ --------------------------------------------------------------------------------
    def attach_hq(self, peer: HqSubscriber) -> None:
        self.hq.add(peer)
        self.storage.watch_hq(True)

    def detach_hq(self, peer: HqSubscriber) -> None:
        self.hq.discard(peer)
        if not self.hq:
            self.storage.watch_hq(False)

    def publish_hq(self, message: BaseModel) -> None:
        """To the HQ screens of every node sharing the storage (this one's included)."""
        if not self.hq and not self.storage.shared:
            return
        self.storage.publish_hq(message.model_dump_json())

    def _deliver_hq(self, frame: str) -> None:
        for peer in list(self.hq):
            peer.deliver_hq(frame)

    def peers(self) -> int:
        return sum(len(f.peers) for f in self.feeds.values())
