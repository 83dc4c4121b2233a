"""Fires held (scheduled) orders at their fire time (docs/kds.md#scheduled-orders).

One task per broker node with a heap of ``(fire_at, order_id, store_id)``, fed by this
node's submits and amends (``Orders.listen_held``) and, at start, by the live ``schedule``
records of every store, so a restart loses nothing. On shared storage (redis) the node
also reads those records again every ``RESCAN_S``: an order taken by a node that died
fires on another one. Two nodes firing one order is harmless: the commit that moves the
order record from held to fired checks the record's version, so one wins and the other
finds the order fired (``Orders.fire``).

Fire times are the broker's clock (``Now``, ``broker/clock.py``). The task sleeps until
the next fire time, waking at least every ``TICK_S`` while anything is queued, so a
clock that jumps (NTP, a test's fake clock) is followed within a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from datetime import datetime

from broker.clock import Now, system_now
from broker.errors import Conflict, NotFound, StorageError
from broker.orders import Orders
from broker.records import Scheduled
from broker.storage import Kind, Storage

log = logging.getLogger(__name__)

TICK_S = 1.0
RESCAN_S = 30.0
RETRY_S = 2.0


class Scheduler:
    def __init__(
        self, storage: Storage, orders: Orders, now: Now = system_now, shared: bool = False
    ) -> None:
        self.storage = storage
        self.orders = orders
        self.now = now
        self.shared = shared
        self.heap: list[tuple[datetime, str, str]] = []
        self.queued: dict[str, datetime] = {}
        """order_id -> the fire time its live heap entry has (older entries are skipped)."""
        self.wake = asyncio.Event()
        self.stalled = False
        """Storage failed a fire: the task waits ``RETRY_S`` before the next try."""
        orders.listen_held(self.add)

    def add(self, order_id: str, store_id: str, fire_at: datetime) -> None:
        """Fire ``order_id`` at ``fire_at`` (again: the latest time told wins)."""
        if self.queued.get(order_id) == fire_at:
            return
        self.queued[order_id] = fire_at
        heapq.heappush(self.heap, (fire_at, order_id, store_id))
        self.wake.set()

    async def load(self) -> int:
        """Queue every order the storage holds; how many it holds."""
        records = await self.storage.scan(None, Kind.SCHEDULE, live_only=True)
        for raw in records:
            s = Scheduled.model_validate_json(raw.doc)
            self.add(s.order_id, s.store_id, s.fire_at)
        return len(records)

    async def run_due(self) -> list[str]:
        """Fire every queued order whose time has come; the ids of those this call fired."""
        fired: list[str] = []
        self.stalled = False
        while self.heap and self.heap[0][0] <= self.now():
            fire_at, order_id, store_id = heapq.heappop(self.heap)
            if self.queued.get(order_id) != fire_at:
                continue  # a later ``add`` moved it
            del self.queued[order_id]
            try:
                done, result = await self.orders.fire(order_id, due_only=True)
            except (NotFound, Conflict):
                continue  # cancelled, or gone
            except StorageError as exc:
                log.warning("fire order=%s store=%s: %s; again soon", order_id, store_id, exc)
                self.add(order_id, store_id, fire_at)
                self.stalled = True
                break
            except Exception:
                log.exception("fire order=%s store=%s failed", order_id, store_id)
                continue  # kept in storage: the next start (or rescan) tries again
            if done:
                fired.append(order_id)
            elif result.fire_at is not None:  # amended on another node: held until later
                self.add(order_id, store_id, result.fire_at)
        return fired

    async def run(self) -> None:
        """The node's scheduler, until cancelled."""
        await self._load_until_done()
        loop = asyncio.get_running_loop()
        next_scan = loop.time() + RESCAN_S
        while True:
            self.wake.clear()  # before firing: an add made meanwhile wakes the wait below
            await self.run_due()
            wait = RETRY_S if self.stalled else self._sleep_s()
            if self.shared:
                until_scan = max(0.0, next_scan - loop.time())
                wait = until_scan if wait is None else min(wait, until_scan)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.wake.wait()
            if self.shared and loop.time() >= next_scan:
                next_scan = loop.time() + RESCAN_S
                with contextlib.suppress(StorageError):  # read again at the next scan
                    await self.load()

    def _sleep_s(self) -> float | None:
        if not self.heap:
            return None  # until an order is held (``add`` wakes the task)
        ahead = (self.heap[0][0] - self.now()).total_seconds()
        return min(max(ahead, 0.0), TICK_S)

    async def _load_until_done(self) -> None:
        while True:
            try:
                n = await self.load()
            except StorageError as exc:
                log.warning("scheduled orders not read: %s; again in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            if n:
                log.info("scheduled orders queued: %d", n)
            return
