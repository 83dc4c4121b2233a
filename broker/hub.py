"""Fan-out: committed stream entries to the peers of a store, HQ deltas to HQ screens.

One ``Feed`` per store with peers on this node. Storage tells the hub about every commit
(in commit order); a feed hands each new entry to each of its peers, which encode and
enqueue it without waiting (a full queue closes that peer with 4001; see ``ws.Peer``).
When the listener reports a gap (a Redis wake-up that carries no entries, or a lost one)
the feed reads the missing range from the stream before going on.

A store's feed can be replaced while work of the old one is still under way (its last
link left and a new one came, or it was reset): whatever the old feed does then — a
catch-up read that fails or finds a new epoch, a late ``detach`` of one of its peers —
touches that feed only, never its replacement: else a link could be left attached to
a feed that nobody feeds any more (it answers pings and gets nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from broker.errors import StorageError
from broker.storage import Backend, Entry, EntryKind

log = logging.getLogger(__name__)

CATCH_UP_BATCH = 500
ATTACH_TIMEOUT_S = 10.0
CATCH_UP_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)


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


class ConfigWatcher(Protocol):
    """Told what the feeds learn about store configs (``config_cache.ConfigCache``), so a
    link's welcome never carries a config older than one in the stream up to the offset it
    announces (docs/scale-out.md, "Config versions")."""

    def head_read(self, store_id: str) -> None:
        """A feed read the stream head: a config cached from an earlier read may be older
        than a config entry at or below that head."""
        ...

    def committed(self, store_id: str, payload: str) -> None:
        """A config entry went by (JSON of ``VersionedStoreConfig``)."""
        ...


@dataclass(eq=False, slots=True)
class Feed:
    store_id: str
    epoch: str = ""
    position: int = -1  # -1: still reading the head
    peers: set[Subscriber] = field(default_factory=set)
    early: list[Entry] = field(default_factory=list)  # commits seen while reading the head
    early_head: int = 0  # the highest head a wake-up without entries told of meanwhile
    wanted: int = 0  # the highest head told of while a catch-up read was under way
    catching_up: bool = False
    opened: bool = False
    """The head is read, or reading it failed: attaches waiting for it may go on."""
    _opening: asyncio.Future[None] | None = None
    """Made only when an attach has to wait (an ``asyncio.Event`` per feed, made whether
    anyone waits or not, was 0.8 KiB of every idle link: ``bench/link_memory.py``)."""

    async def wait_open(self) -> None:
        if self.opened:
            return
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._opening)  # one waiter's timeout leaves the others be

    def open(self) -> None:
        self.opened = True
        if self._opening is not None and not self._opening.done():
            self._opening.set_result(None)


class Hub:
    def __init__(
        self,
        storage: Backend,
        tasks: asyncio.TaskGroup | None = None,
        configs: ConfigWatcher | None = None,
    ) -> None:
        self.storage = storage
        self.tasks = tasks
        self.configs = configs
        self.feeds: dict[str, Feed] = {}
        self.hq: set[HqSubscriber] = set()
        self.delivered = 0
        storage.listen(self.on_commit)
        storage.listen_hq(self._deliver_hq)

    # -- store feeds ---------------------------------------------------------------------
    async def attach(self, peer: Subscriber) -> tuple[str, int]:
        """Subscribe ``peer``; it receives every entry after the returned (epoch, offset)."""
        while True:
            feed = self.feeds.get(peer.store_id)
            if feed is None:
                feed = await self._open(peer.store_id)
            elif not feed.opened:
                async with asyncio.timeout(ATTACH_TIMEOUT_S):  # another attach reads the head
                    await feed.wait_open()
            if self.feeds.get(peer.store_id) is feed:  # else it was dropped while we waited
                feed.peers.add(peer)
                return feed.epoch, feed.position

    async def _open(self, store_id: str) -> Feed:
        """A new feed for the store: subscribe, then read the head."""
        feed = self.feeds[store_id] = Feed(store_id)
        try:
            await self.storage.watch(store_id)
            head = await self.storage.read(store_id, 0, 0)
        except BaseException:
            self._drop(feed)
            feed.open()  # attaches waiting for this feed try again by themselves
            raise
        if self.configs is not None:
            self.configs.head_read(store_id)
        feed.epoch, feed.position = head.epoch, head.head
        early, feed.early = feed.early, []
        self._dispatch(feed, [e for e in early if e.offset > feed.position])
        if feed.early_head > feed.position:
            self._catch_up(feed)  # woken (redis) for a commit the head read missed
        feed.open()
        return feed

    async def detach(self, peer: Subscriber) -> None:
        feed = self.feeds.get(peer.store_id)
        if feed is None or peer not in feed.peers:
            return  # its feed was reset and dropped: the store's feed now is another one
        feed.peers.discard(peer)
        if not feed.peers:
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
            if entry.kind is EntryKind.CONFIG and self.configs is not None:
                self.configs.committed(feed.store_id, entry.payload)
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
        self._drop(feed)

    def _drop(self, feed: Feed) -> None:
        """Forget ``feed``, unless another feed has taken its place already."""
        if self.feeds.get(feed.store_id) is feed:
            del self.feeds[feed.store_id]
            self._spawn(self._unwatch_unused(feed.store_id))

    async def _unwatch_unused(self, store_id: str) -> None:
        if store_id not in self.feeds:  # no new feed came meanwhile (it watches for itself)
            await self.storage.unwatch(store_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self.tasks is None:
            asyncio.get_running_loop().create_task(coro)
            return
        try:
            self.tasks.create_task(coro)
        except RuntimeError:  # the broker is stopping: nothing more to read or unwatch
            coro.close()

    def _catch_up(self, feed: Feed) -> None:
        if feed.catching_up:
            return
        feed.catching_up = True
        self._spawn(self._read_gap(feed))

    async def _read_gap(self, feed: Feed) -> None:
        failures = 0
        try:
            while True:
                try:
                    got = await self.storage.read(feed.store_id, feed.position, CATCH_UP_BATCH)
                except StorageError as exc:
                    # Storage is away (redis restarting): its peers keep their links and
                    # the read goes on once it is back. (Resetting them here closed every
                    # link of a store that was woken just as redis went down.)
                    if self.feeds.get(feed.store_id) is not feed:
                        return
                    delay = CATCH_UP_RETRY_S[min(failures, len(CATCH_UP_RETRY_S) - 1)]
                    log.warning("catch-up store=%s: %s; again in %.1f s", feed.store_id, exc, delay)
                    failures += 1
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                if self.feeds.get(feed.store_id) is not feed:
                    return  # dropped meanwhile: it has no peers, and its successor reads itself
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
            if self.feeds.get(feed.store_id) is feed:
                log.exception("catch-up failed store=%s", feed.store_id)
                self._reset(feed, feed.epoch, feed.position)  # its peers resume afresh
            else:
                log.info("catch-up of a dropped feed failed store=%s", feed.store_id)
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
