"""Webhooks (DESIGN.md §8.4, docs/webhooks.md): what happens in the kitchen, POSTed to the
chain's other systems — signed, at least once, in order per store, from a durable outbox.

``emit`` is called where a happening is recorded (a job state or printer status a store
client reported, an order becoming ready, a store link coming or going), after that
record is written and before the report is acknowledged. It costs nothing unless a
subscription wants the event; then the event is queued, durably, once per subscription
that wants it. Its id is derived from the happening (a uuid5), so a report that is sent
again after a crash queues nothing new and a receiver can dedupe on it.

The dispatcher is one task on one node (``Outbox.lead``). It hands each queue's oldest
delivery to a sender, at most one per (subscription, store) at a time — that is the per
store order — and at most ``MAX_IN_FLIGHT`` at once, so a slow or dead receiver only
holds its own queues: ingest and delivery to stores never wait for it. A failed attempt
(no 2xx, an error, ``webhook_timeout``) is retried with exponential backoff up to
``webhook_retry_max`` apart; a delivery still failing ``webhook_dead_after`` after it was
queued is dead-lettered (its queue moves on) until ``POST …/replay`` queues it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.clock import Now, system_now
from broker.config import Settings
from broker.errors import StorageError
from broker.metrics import Metrics
from broker.storage.outbox import DEAD, DELIVERED, PENDING, Item, Outbox
from protocol.version import __version__
from protocol.webhooks import (
    Delivery,
    DeliveryStatus,
    EventType,
    ReplayRequest,
    Webhook,
    WebhookCreate,
    WebhookEvent,
    signature,
)

log = logging.getLogger(__name__)

#: Event ids: uuid5 of the happening in this namespace.
NAMESPACE = uuid.UUID("6d7a3c1e-4b8f-5e2a-9c0d-1f2e3a4b5c6d")
MAX_IN_FLIGHT = 32
TICK_S = 1.0  # the dispatcher looks for due deliveries at least this often
LEASE_S = 10.0  # a dispatching node that stops renewing is replaced after this
PRUNE_EVERY_S = 3600.0
RECENT = 4096  # event ids queued lately, remembered to skip repeats without a write
MAX_ERROR = 300
MAX_SUBSCRIPTIONS = 1000


@dataclass(frozen=True, slots=True)
class Subscription:
    webhook_id: str
    url: str
    events: frozenset[str]
    stores: frozenset[str] | None
    secret: str
    created_at: datetime

    def wants(self, type_: str, store_id: str) -> bool:
        return type_ in self.events and (self.stores is None or store_id in self.stores)

    def view(self) -> Webhook:
        return Webhook(
            webhook_id=self.webhook_id,
            url=self.url,
            events=tuple(EventType(e) for e in sorted(self.events)),
            stores=tuple(sorted(self.stores)) if self.stores is not None else None,
            created_at=self.created_at,
        )

    def doc(self) -> str:
        """The stored form: the view and the secret."""
        return _Stored(**self.view().model_dump(), secret=self.secret).model_dump_json()

    @classmethod
    def parse(cls, doc: str) -> Subscription:
        s = _Stored.model_validate_json(doc)
        stores = frozenset(s.stores) if s.stores is not None else None
        events = frozenset(e.value for e in s.events)
        return cls(s.webhook_id, s.url, events, stores, s.secret, s.created_at)


class _Stored(Webhook):
    secret: str


def event_id(type_: EventType, store_id: str, key: str) -> str:
    """The id of one happening: the same report, sent again, gets the same id."""
    return str(uuid.uuid5(NAMESPACE, f"{type_.value}\x1f{store_id}\x1f{key}"))


class Webhooks:
    def __init__(
        self,
        outbox: Outbox,
        node_id: str,
        settings: Settings,
        metrics: Metrics | None = None,
        now: Now = system_now,
    ) -> None:
        self.outbox = outbox
        self.node_id = node_id
        self.timeout = settings.webhook_timeout
        self.retry_max = settings.webhook_retry_max
        self.dead_after = settings.webhook_dead_after
        self.retention = settings.webhook_retention
        self.offline_after = settings.webhook_offline_after
        self.metrics = metrics
        self.now = now
        self._subs: dict[str, Subscription] = {}
        self._mark: str | None = None
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._flight: set[tuple[str, str]] = set()
        self._senders: set[asyncio.Task[None]] = set()
        self._client: Any = None
        self._wake = asyncio.Event()
        self._pruned = 0.0

    async def start(self) -> None:
        await self._refresh()

    # -- emitting --------------------------------------------------------------------------
    def wanted(self, type_: EventType, store_id: str) -> bool:
        """Whether any subscription wants this event (cheap: check before building one)."""
        return any(s.wants(type_.value, store_id) for s in self._subs.values())

    async def emit(
        self, type_: EventType, store_id: str, key: str, at: datetime, data: dict[str, Any]
    ) -> None:
        """Queue the event for every subscription that wants it (``StorageError`` when the
        outbox cannot take it now: the caller does not acknowledge what caused it)."""
        subs = [s for s in self._subs.values() if s.wants(type_.value, store_id)]
        if not subs:
            return
        eid = event_id(type_, store_id, key)
        todo = [s for s in subs if (s.webhook_id, eid) not in self._recent]
        if not todo:
            return
        body = WebhookEvent(
            id=eid, type=type_, created_at=at, store_id=store_id, data=data
        ).model_dump_json()
        now = self.now().timestamp()
        items = [Item(s.webhook_id, eid, store_id, type_.value, body, now) for s in todo]
        await self.outbox.enqueue(items, now)
        for s in todo:
            self._recent[(s.webhook_id, eid)] = None
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        self._wake.set()

    # -- REST --------------------------------------------------------------------------------
    def views(self) -> list[Webhook]:
        return [s.view() for s in sorted(self._subs.values(), key=lambda s: s.created_at)]

    def get(self, webhook_id: str) -> Subscription | None:
        return self._subs.get(webhook_id)

    async def create(self, body: WebhookCreate) -> Webhook:
        await self._refresh()
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            from broker.errors import Conflict

            raise Conflict(f"at most {MAX_SUBSCRIPTIONS} webhooks: delete one first")
        sub = Subscription(
            webhook_id="wh_" + secrets.token_hex(8),
            url=body.url,
            events=frozenset(e.value for e in body.events),
            stores=frozenset(body.stores) if body.stores is not None else None,
            secret=body.secret,
            created_at=self.now().astimezone(UTC),
        )
        await self.outbox.put_subscription(sub.webhook_id, sub.doc())
        self._subs[sub.webhook_id] = sub
        log.info("webhook %s added: %s for %s", sub.webhook_id, sub.url, sorted(sub.events))
        return sub.view()

    async def delete(self, webhook_id: str) -> bool:
        found = await self.outbox.delete_subscription(webhook_id)
        self._subs.pop(webhook_id, None)
        return found

    async def deliveries(self, webhook_id: str, limit: int) -> list[Delivery]:
        return [_delivery(i) for i in await self.outbox.log(webhook_id, limit)]

    async def replay(self, webhook_id: str, req: ReplayRequest) -> int:
        since = req.from_.timestamp() if req.from_ is not None else None
        n = await self.outbox.replay(webhook_id, since, req.event_ids, self.now().timestamp())
        self._wake.set()
        return n

    # -- the dispatcher ------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_S):
                        await self._wake.wait()
                self._wake.clear()
                try:
                    await self._turn()
                except StorageError as exc:
                    log.warning("webhook dispatch waits for storage: %s", exc.detail)
        finally:
            for task in list(self._senders):
                task.cancel()
            if self._client is not None:
                await self._client.aclose()

    def _http(self) -> Any:
        """The HTTP client, made when the first delivery is due: a broker without webhooks
        never imports httpx (1.3 MB of its memory)."""
        if self._client is None:
            import httpx

            limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=8)
            self._client = httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, limits=limits, trust_env=False
            )
        return self._client

    async def _turn(self) -> None:
        await self._refresh()
        if not self._subs or not await self.outbox.lead(self.node_id, LEASE_S):
            return
        now = self.now().timestamp()
        if now - self._pruned > PRUNE_EVERY_S:
            self._pruned = now
            await self.outbox.prune(now - self.retention)
        free = MAX_IN_FLIGHT - len(self._senders)
        if free <= 0:
            return
        for item in await self.outbox.due(now, free, set(self._flight)):
            self._flight.add(item.queue)
            task = asyncio.get_running_loop().create_task(self._send(self._http(), item))
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    async def _send(self, client: Any, item: Item) -> None:
        import httpx

        try:
            sub = self._subs.get(item.sub_id)
            if sub is None:
                return  # deleted meanwhile, with its deliveries
            stamp = int(self.now().timestamp())
            body = item.body.encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"passline-webhooks/{__version__}",
                "Passline-Event-Id": item.event_id,
                "Passline-Timestamp": str(stamp),
                "Passline-Signature": signature(sub.secret, stamp, body),
            }
            error: str | None = None
            try:
                answer = await client.post(sub.url, content=body, headers=headers)
                if not 200 <= answer.status_code < 300:
                    error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[
                    :MAX_ERROR
                ]
            self._outcome(item, error)
            try:
                await self.outbox.finish(item, self.now().timestamp())
            except StorageError as exc:  # it stays pending: sent again (at least once)
                log.warning("webhook %s: outcome not recorded: %s", item.event_id, exc.detail)
        finally:
            self._flight.discard(item.queue)
            self._wake.set()

    def _outcome(self, item: Item, error: str | None) -> None:
        now = self.now().timestamp()
        item.attempts += 1
        item.last_error = error
        if error is None:
            item.status = DELIVERED
        elif now - item.created_at >= self.dead_after:
            item.status = DEAD
            log.warning("webhook %s: event %s dead-lettered: %s", item.sub_id, item.event_id, error)
        else:
            item.status = PENDING
            item.next_at = now + self.backoff(item.attempts)
            log.info(
                "webhook %s: event %s attempt %d failed: %s",
                item.sub_id,
                item.event_id,
                item.attempts,
                error,
            )
        if self.metrics is not None:
            outcome = "failed" if item.status == PENDING else item.status
            self.metrics.webhooks.labels(outcome).inc()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: 1, 2, 4, … up to ``webhook_retry_max``, with
        up to 20 % jitter (many stores' events do not come back in one burst)."""
        base = min(self.retry_max, 2.0 ** min(attempts - 1, 30))
        return float(base * random.uniform(1.0, 1.2))

    async def _refresh(self) -> None:
        """Subscriptions as stored: another node (redis) may have added or deleted one."""
        mark = await self.outbox.mark()
        if mark == self._mark:
            return
        docs = await self.outbox.subscriptions()
        self._subs = {k: Subscription.parse(v) for k, v in docs.items()}
        self._mark = mark


def _delivery(i: Item) -> Delivery:
    event = WebhookEvent.model_validate_json(i.body)
    return Delivery(
        event_id=i.event_id,
        type=event.type,
        store_id=i.store_id,
        status=DeliveryStatus(i.status),
        attempts=i.attempts,
        last_error=i.last_error,
        created_at=datetime.fromtimestamp(i.created_at, UTC),
        updated_at=datetime.fromtimestamp(i.updated_at or i.created_at, UTC),
        next_attempt_at=(datetime.fromtimestamp(i.next_at, UTC) if i.status == PENDING else None),
    )
