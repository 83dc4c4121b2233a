"""What store clients report: link presence, acks, job states, printer status — and the
fleet views built from them (HQ, ``GET /v1/stores``, ``GET /v1/printers``)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from broker.clock import Now, system_now
from broker.errors import StorageError
from broker.orders import put, retrying
from broker.records import JobProgress, LinkRecord, PrinterRecord, printer_key
from broker.storage import Backend, Kind, Tx
from protocol.config import VersionedStoreConfig
from protocol.errors import TransitionError
from protocol.jobs import (
    JOB_TRANSITIONS,
    TERMINAL_JOB_STATES,
    JobState,
    JobTransitionRecord,
    job_transition,
)
from protocol.messages.hq import (
    Fleet,
    FleetPrinter,
    FleetStore,
    HqPrinterStatus,
    JobAlert,
    LinkState,
    Outage,
    StoreLink,
)
from protocol.messages.store import JobStateReport
from protocol.rest import PrinterView, StoreView
from protocol.status import PrinterState, PrinterStatus
from protocol.webhooks import EventType

if TYPE_CHECKING:
    from broker.webhooks import Webhooks

log = logging.getLogger(__name__)

FLUSH_S = 0.05  # acks and link presence are written in batches this often
RETRY_S = (FLUSH_S, 0.25, 0.5, 1.0, 2.0)  # the same while storage is failing
MAX_DEFERRED = 100_000
PAGE_STORES = 100  # fleet views: stores read and built between two turns of the loop
REAP_S = 5.0
MAX_HISTORY = 64  # transitions kept per job record
HISTORY_HEAD = 8  # of which the first ones (queued, sent, spooled, first attempt)
ALERT_STATES = frozenset({JobState.HELD, JobState.FAILED, JobState.UNCERTAIN, JobState.EXPIRED})
_S = JobState
#: Printer states a ``printer.alert`` is sent for.
PROBLEM_STATES = frozenset({PrinterState.WARNING, PrinterState.ERROR, PrinterState.OFFLINE})
#: Steps the broker fills in when a report skips ahead (ack lost, report first).
_IMPLIED = {_S.QUEUED: (_S.SENT, _S.SPOOLED), _S.SENT: (_S.SPOOLED,)}


def capped(history: list[JobTransitionRecord]) -> list[JobTransitionRecord]:
    """A job's history keeps its first ``HISTORY_HEAD`` and last steps, ``MAX_HISTORY``
    in all: a client alternating ``printing``/``held`` forever cannot grow a record."""
    if len(history) <= MAX_HISTORY:
        return history
    return history[:HISTORY_HEAD] + history[len(history) - (MAX_HISTORY - HISTORY_HEAD) :]


def steps_to(current: JobState, target: JobState) -> list[JobState]:
    """The states to record to get from ``current`` to ``target`` (``TransitionError``).

    A report may skip ``sent``/``spooled`` (its ack was lost or is still on the way):
    those steps are recorded first, as DESIGN.md §3 wants every transition visible.
    """
    if target in JOB_TRANSITIONS[current]:
        return [target]
    steps: list[JobState] = []
    for implied in _IMPLIED.get(current, ()):
        steps.append(implied)
        if target in JOB_TRANSITIONS[implied]:
            return [*steps, target]
    job_transition(current, target)  # raises the "expected X, got Y" error
    raise AssertionError("unreachable")


class FleetState:
    def __init__(
        self,
        storage: Backend,
        publish_hq: Callable[[BaseModel], None],
        tasks: asyncio.TaskGroup | None = None,
        now: Now = system_now,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.storage = storage
        self.publish_hq = publish_hq
        self.tasks = tasks
        self.now = now
        self.webhooks = webhooks
        self._acks: dict[str, list[tuple[str, datetime]]] = {}
        self._links: dict[str, LinkRecord] = {}
        self._deferred: deque[Callable[[], Awaitable[object]]] = deque(maxlen=MAX_DEFERRED)
        self._flushing = False
        self._failures = 0
        self._timers: set[asyncio.Task[None]] = set()  # store.offline waits (webhooks)

    def queue_acks(self, store_id: str, done: Sequence[tuple[str, datetime]]) -> None:
        """Acks from every link are written together every ``FLUSH_S``: one group commit
        instead of one per ack (``spooled`` is bookkeeping; the stream already has the job)."""
        self._acks.setdefault(store_id, []).extend(done)
        self._schedule_flush()

    def defer(self, write: Callable[[], Awaitable[object]]) -> None:
        """A store client's report that storage could not take now (redis down): it is
        written with the next successful flush, so the link itself stays up."""
        if len(self._deferred) == self._deferred.maxlen:
            log.error("more than %d reports waiting for storage: dropping the oldest", MAX_DEFERRED)
        self._deferred.append(write)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flushing:
            return
        self._flushing = True
        coro = self._flush()
        if self.tasks is not None:
            self.tasks.create_task(coro)
        else:
            asyncio.get_running_loop().create_task(coro)

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(RETRY_S[min(self._failures, len(RETRY_S) - 1)])
            acks, self._acks = self._acks, {}
            links, self._links = self._links, {}
            deferred = list(self._deferred)
            self._deferred.clear()
        finally:
            self._flushing = False
        ack_items, link_items = list(acks.items()), list(links.values())
        results = await asyncio.gather(
            *(self.acked(store_id, done) for store_id, done in ack_items),
            *(self._write_link(link) for link in link_items),
            return_exceptions=True,
        )
        failed = False
        for (store_id, done), result in zip(ack_items, results, strict=False):
            if isinstance(result, StorageError):
                failed = True
                self._acks[store_id] = [*done, *self._acks.get(store_id, [])]
            if isinstance(result, Exception):
                log.warning("store=%s: acks not recorded: %s", store_id, result)
        for link, result in zip(link_items, results[len(ack_items) :], strict=True):
            if isinstance(result, StorageError):
                failed = True
                self._links.setdefault(link.store_id, link)
            if isinstance(result, Exception):
                log.warning("store=%s: link state not recorded: %s", link.store_id, result)
            elif result is True:
                self._publish_link(link)  # HQ hears of presence once it is written
                if not link.online or _outage_ended(link):
                    self._queue_link_event(link)
        for i, write in enumerate(deferred):
            try:
                await write()
            except StorageError:
                failed = True
                self._deferred.extendleft(reversed(deferred[i:]))
                break
        self._failures = self._failures + 1 if failed else 0
        if failed or self._acks or self._links or self._deferred:
            self._schedule_flush()

    # -- link presence -------------------------------------------------------------------
    async def set_link(
        self,
        store_id: str,
        online: bool,
        client_version: str | None,
        session: str | None = None,
        offline_orders: int = 0,
    ) -> None:
        """The record is written with the next flush (a reconnect storm of 10k store clients
        is a few group commits, not 10k fsyncs). HQ hears of it once it is written, up or
        down: an HQ screen's fleet is read from storage, so a link-up told before its write
        was lost to a screen that attached in between (it showed the store offline until
        its next change), and a link-down may be refused (another connection, maybe on
        another node, has the store by then)."""
        link = LinkRecord(
            store_id=store_id,
            online=online,
            since=self.now(),
            client_version=client_version,
            node=self.storage.node_id,
            session=session,
            offline_orders=offline_orders,
        )
        self._links[store_id] = link
        self._schedule_flush()
        log.info("link store=%s online=%s", store_id, online)

    def _publish_link(self, link: LinkRecord) -> None:
        self.publish_hq(
            StoreLink(
                store_id=link.store_id,
                online=link.online,
                since=link.since,
                client_version=link.client_version,
                last_outage=link.last_outage,
            )
        )

    def _queue_link_event(self, link: LinkRecord) -> None:
        """``store.offline`` once a link has been down ``webhook_offline_after``, and
        ``store.online`` when it comes back from such an outage (docs/webhooks.md): a
        reconnect blip sends neither. Queued with the next flush (which retries it while
        storage is away), and only when a subscription wants it."""
        type_ = EventType.STORE_ONLINE if link.online else EventType.STORE_OFFLINE
        if self.webhooks is None or not self.webhooks.wanted(type_, link.store_id):
            return
        grace = self.webhooks.offline_after
        if link.online:
            outage = link.last_outage
            if outage is None or (outage.ended - outage.started).total_seconds() < grace:
                return  # a blip: its store.offline was never sent either
        elif grace > 0:
            task = asyncio.get_running_loop().create_task(self._offline_after(link, grace))
            self._timers.add(task)
            task.add_done_callback(self._timers.discard)
            return
        self.defer(functools.partial(self._link_event, link, type_))

    async def _offline_after(self, link: LinkRecord, grace: float) -> None:
        """``store.offline`` if the store is still down from the same outage after
        ``grace`` seconds (another link, here or on another node, ends it)."""
        await asyncio.sleep(grace)
        current: LinkRecord | None = link  # storage away: cannot tell, so say it
        with contextlib.suppress(StorageError):
            raw = await self.storage.get(Kind.LINK, link.store_id)
            current = LinkRecord.model_validate_json(raw.doc) if raw is not None else None
        if current is not None and not current.online and current.since == link.since:
            self.defer(functools.partial(self._link_event, link, EventType.STORE_OFFLINE))

    async def _link_event(self, link: LinkRecord, type_: EventType) -> None:
        assert self.webhooks is not None
        data: dict[str, Any] = {"since": link.since}
        if link.online:
            data["client_version"] = link.client_version
            if link.last_outage is not None:
                data["outage"] = link.last_outage.model_dump(mode="json")
        key = f"{link.online}\x1f{link.since.isoformat()}"
        await self.webhooks.emit(type_, link.store_id, key, link.since, data)

    async def _write_link(self, link: LinkRecord, dead_node: str | None = None) -> bool:
        """Write ``link``; an offline one only over the same session's (or a dead node's)."""

        async def attempt() -> bool:
            raw = await self.storage.get(Kind.LINK, link.store_id)
            current = LinkRecord.model_validate_json(raw.doc) if raw is not None else None
            if current is not None:
                link.last_outage = _outage(current, link)
            if current is not None and not link.online:
                if not current.online:
                    return False
                if dead_node is not None and current.node != dead_node:
                    return False
                if dead_node is None and current.session != link.session:
                    return False  # another connection (maybe on another node) took over
            version = (raw.version if raw else 0) + 1
            tx = Tx([put(Kind.LINK, link.store_id, link, version)])
            await self.storage.commit(link.store_id, tx)
            return True

        return await retrying(attempt)

    async def reset_links(self) -> None:
        """At start of a single node: nobody is connected yet."""
        if self.storage.shared:
            return  # other nodes hold links; a dead node's are freed by reap_dead_nodes
        for raw in await self.storage.scan(None, Kind.LINK, live_only=False):
            link = LinkRecord.model_validate_json(raw.doc)
            if link.online:
                link.online, link.since = False, self.now()
                put_ = put(Kind.LINK, raw.key, link, raw.version + 1)
                await self.storage.commit(raw.store_id, Tx([put_]))

    async def reap_dead_nodes(self) -> None:
        """Shared storage: links held by a node that died (kill -9, lost host) go offline."""
        if not self.storage.shared:
            return
        while True:
            await asyncio.sleep(REAP_S)
            try:
                for node in await self.storage.claim_dead_nodes():
                    await self._reap(node)
            except StorageError as exc:
                log.debug("dead node check skipped: %s", exc.detail)

    async def _reap(self, node: str) -> None:
        links = await self.storage.scan(None, Kind.LINK, live_only=False)
        held = [LinkRecord.model_validate_json(r.doc) for r in links]
        held = [ln for ln in held if ln.online and ln.node == node]
        log.warning("broker node %s stopped without draining: %d links offline", node, len(held))
        for old in held:
            link = old.model_copy(update={"online": False, "since": self.now()})
            if await self._write_link(link, dead_node=node):
                self._publish_link(link)
                self._queue_link_event(link)

    # -- job states ----------------------------------------------------------------------
    async def acked(self, store_id: str, sent: Sequence[tuple[str, datetime]]) -> None:
        """Jobs up to an ack are durable at the store: ``sent`` → ``spooled``."""

        async def attempt() -> None:
            now, puts = self.now(), []
            raws = await self.storage.get_many(Kind.JOB, [j for j, _ in sent], store_id)
            for (job_id, sent_at), raw in zip(sent, raws, strict=True):
                if raw is None:
                    continue
                jr = JobProgress.model_validate_json(raw.doc)
                if jr.state not in (_S.QUEUED, _S.SENT):
                    continue
                if jr.state is _S.QUEUED:
                    jr.history.append(JobTransitionRecord(state=_S.SENT, at=sent_at))
                jr.history.append(JobTransitionRecord(state=_S.SPOOLED, at=now))
                jr.state = _S.SPOOLED
                puts.append(put(Kind.JOB, job_id, jr, raw.version + 1))
            if puts:
                await self.storage.commit(store_id, Tx(puts))

        await retrying(attempt)

    async def job_state(self, store_id: str, report: JobStateReport) -> str | None:
        """Record a store client's report; an error text when it cannot be applied."""

        async def attempt() -> tuple[str | None, JobProgress | None, bool]:
            raw = await self.storage.get(Kind.JOB, report.job_id, store_id)
            if raw is None:
                return f"no job {report.job_id!r}", None, False
            jr = JobProgress.model_validate_json(raw.doc)
            if jr.store_id != store_id:
                return f"no job {report.job_id!r}", None, False
            if jr.state is report.state:
                return None, jr, False  # sent again: its event (if any) was queued
            try:
                steps = steps_to(jr.state, report.state)
            except TransitionError as exc:
                if jr.state is not _S.CANCELLED:  # paper wins over a broker-side cancel
                    return str(exc), None, False
                steps = [report.state]
            for step in steps:
                # an implied step happened before the reported one, never after it
                at = report.at if step is report.state else min(self.now(), report.at)
                reason = report.reason if step is report.state else None
                jr.history.append(
                    JobTransitionRecord(
                        state=step, at=at, reason=reason or None, printer_id=report.printer_id
                    )
                )
            jr.history = capped(jr.history)
            jr.state = report.state
            live = report.state not in TERMINAL_JOB_STATES
            await self.storage.commit(
                store_id, Tx([put(Kind.JOB, report.job_id, jr, raw.version + 1, live)])
            )
            return None, jr, True

        error, jr, changed = await retrying(attempt)
        if jr is not None:
            await self._job_event(store_id, report, jr)
        if not changed:
            return error
        assert jr is not None
        if report.state in ALERT_STATES:
            self.publish_hq(
                JobAlert(
                    store_id=store_id,
                    job_id=report.job_id,
                    printer_id=report.printer_id or str(jr.job["printer_id"]),
                    state=report.state,
                    reason=report.reason,
                )
            )
        if report.status is not None:
            await self.printer_status(
                store_id, report.printer_id or str(jr.job["printer_id"]), report.status
            )
        return error

    async def _job_event(self, store_id: str, report: JobStateReport, jr: JobProgress) -> None:
        """``job.state`` for a state a store client reported (the same report sent again
        makes the same event id)."""
        type_ = EventType.JOB_STATE
        if self.webhooks is None or not self.webhooks.wanted(type_, store_id):
            return
        job = jr.job
        data = {
            "job_id": report.job_id,
            "order_id": job.get("order_id"),
            "printer_id": report.printer_id or job.get("printer_id"),
            "kind": job.get("kind"),
            "state": report.state.value,
            "reason": report.reason,
            "at": report.at,
        }
        key = f"{report.job_id}\x1f{report.state.value}\x1f{report.at.isoformat()}"
        await self.webhooks.emit(type_, store_id, key, report.at, data)

    # -- printers ------------------------------------------------------------------------
    async def printer_status(self, store_id: str, printer_id: str, status: PrinterStatus) -> None:
        key = printer_key(store_id, printer_id)

        async def attempt() -> tuple[bool, PrinterStatus | None, PrinterStatus | None]:
            """(written, the status before, the status now recorded)"""
            raw = await self.storage.get(Kind.PRINTER, key)
            old: PrinterStatus | None = None
            if raw is not None:
                old = PrinterRecord.model_validate_json(raw.doc).status
                if old.same_condition(status):
                    return False, None, old
            elif not await self._configured(store_id, printer_id):
                log.info("store=%s: status of unknown printer %r ignored", store_id, printer_id)
                return False, None, None
            rec = PrinterRecord(store_id=store_id, printer_id=printer_id, status=status)
            version = (raw.version if raw else 0) + 1
            await self.storage.commit(store_id, Tx([put(Kind.PRINTER, key, rec, version)]))
            return True, old, status

        written, old, current = await retrying(attempt)
        if current is not None:
            await self._printer_event(store_id, printer_id, written, old, current)
        if written:
            log.info("printer store=%s printer=%s state=%s", store_id, printer_id, status.state)
            self.publish_hq(
                HqPrinterStatus(store_id=store_id, printer_id=printer_id, status=status)
            )

    async def _printer_event(
        self,
        store_id: str,
        printer_id: str,
        written: bool,
        old: PrinterStatus | None,
        new: PrinterStatus,
    ) -> None:
        """``printer.alert`` when a printer gets into a problem state (or another one),
        ``printer.recovered`` when it is ready again after one. A status sent again (no
        change) queues its alert again under the same id: kept once."""
        if self.webhooks is None:
            return
        problem = new.state in PROBLEM_STATES
        if problem and (not written or old is None or not old.same_condition(new)):
            type_ = EventType.PRINTER_ALERT
        elif written and new.state is PrinterState.READY and old is not None:
            if old.state not in PROBLEM_STATES:
                return
            type_ = EventType.PRINTER_RECOVERED
        else:
            return
        if not self.webhooks.wanted(type_, store_id):
            return
        data: dict[str, Any] = {
            "printer_id": printer_id,
            "state": new.state.value,
            "reasons": list(new.reasons),
            "detail": new.detail,
            "since": new.since,
        }
        if type_ is EventType.PRINTER_RECOVERED and old is not None:
            data["previous_state"] = old.state.value
            data["previous_reasons"] = list(old.reasons)
        key = f"{printer_id}\x1f{new.state.value}\x1f{new.since.isoformat()}"
        await self.webhooks.emit(type_, store_id, key, new.since, data)

    async def _configured(self, store_id: str, printer_id: str) -> bool:
        """A store token may only report printers its config names: another id would
        create records and HQ deltas at will (the first report of a printer pays this)."""
        raw = await self.storage.get(Kind.CONFIG, store_id, store_id)
        if raw is None:
            return False
        config = VersionedStoreConfig.model_validate_json(raw.doc)
        return config.printer(printer_id) is not None

    # -- views ---------------------------------------------------------------------------
    async def store_views(
        self,
        store_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        from_store: str | None = None,
    ) -> list[StoreView]:
        """Stores by id: after ``after`` (or from ``from_store`` on), at most ``limit``."""
        views: list[StoreView] = []
        async for page in self.store_pages(store_id, after, from_store):
            views += page
            if limit is not None and len(views) >= limit:
                return views[:limit]
        return views

    async def store_pages(
        self, store_id: str | None = None, after: str | None = None, from_store: str | None = None
    ) -> AsyncIterator[list[StoreView]]:
        """The fleet's store views, ``PAGE_STORES`` stores at a time, by store id. Each page
        reads only its own stores' records, and the loop turns between pages: at chain
        scale (16,000 stores, 48,000 printers) the whole fleet is seconds of CPU, which no
        link or request may wait for."""
        ids = [store_id] if store_id is not None else await self.storage.store_ids()
        if after is not None:
            ids = ids[bisect.bisect_right(ids, after) :]
        elif from_store is not None:
            ids = ids[bisect.bisect_left(ids, from_store) :]
        for i in range(0, len(ids), PAGE_STORES):
            if i:
                await asyncio.sleep(0)
            page = await self._views_of(ids[i : i + PAGE_STORES])
            if page:
                yield page

    async def _views_of(self, ids: list[str]) -> list[StoreView]:
        storage = self.storage
        configs = [
            VersionedStoreConfig.model_validate_json(r.doc)
            for r in await storage.get_many(Kind.CONFIG, ids)
            if r is not None
        ]
        ids = [c.store_id for c in configs]
        links = await storage.get_many(Kind.LINK, ids)
        keys = [printer_key(c.store_id, p.printer_id) for c in configs for p in c.printers]
        statuses = {
            r.key: PrinterRecord.model_validate_json(r.doc).status
            for r in await storage.get_many(Kind.PRINTER, keys)
            if r is not None
        }
        views = []
        for config, link_raw in zip(configs, links, strict=True):
            jobs = await storage.scan(config.store_id, Kind.JOB, live_only=True)
            held = sum(1 for r in jobs if JobProgress.model_validate_json(r.doc).state is _S.HELD)
            link = LinkRecord.model_validate_json(link_raw.doc) if link_raw else None
            sid = config.store_id
            views.append(
                StoreView(
                    store_id=sid,
                    name=config.name,
                    link=_link_state(link, config),
                    printers=tuple(
                        FleetPrinter(
                            printer_id=p.printer_id,
                            name=p.name,
                            status=statuses.get(printer_key(sid, p.printer_id)),
                        )
                        for p in config.printers
                    ),
                    queued=len(jobs) - held,
                    held=held,
                    config_version=config.version,
                    ring=config.ring,
                    releases=config.releases,
                )
            )
        return views

    async def fleet_fragments(self) -> AsyncIterator[str]:
        """The HQ screen's ``fleet`` message in fragments, a page of stores each (sent as
        one fragmented websocket message: one ``model_dump_json`` of 16,000 stores, 20 MB,
        held the loop for seconds)."""
        head = Fleet(stores=()).model_dump_json()  # '{"type":"fleet","stores":[]}'
        assert head.endswith("[]}")
        sep = ""
        async for page in self.store_pages():
            yield (head[:-2] if not sep else sep) + ",".join(
                _fleet_store(v).model_dump_json() for v in page
            )
            sep = ","
        yield (head[:-2] if not sep else "") + "]}"

    async def printer_views(
        self,
        state: str | None,
        store_id: str | None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[PrinterView]:
        """Printers by (store id, printer id), filtered by state; ``after`` is the last
        ``store_id/printer_id`` of the previous page."""
        after_store, _, after_printer = (after or "").partition("/")
        if state is not None and state != "unknown":  # ("unknown" includes never reported)
            indexed = await self.storage.printer_keys_in_state(state)
            if indexed is not None:
                return await self._indexed_printers(indexed, state, store_id, after, limit)
        out: list[PrinterView] = []
        # the cursor's store may still hold printers after the cursor's printer
        async for page in self.store_pages(store_id, from_store=after_store or None):
            for view in page:
                for p in sorted(view.printers, key=lambda p: p.printer_id):
                    if after and (view.store_id, p.printer_id) <= (after_store, after_printer):
                        continue
                    if state is not None and (p.status is None or p.status.state.value != state):
                        if not (state == "unknown" and p.status is None):
                            continue
                    out.append(
                        PrinterView(
                            store_id=view.store_id,
                            printer_id=p.printer_id,
                            name=p.name,
                            status=p.status,
                        )
                    )
                    if limit is not None and len(out) >= limit:
                        return out
        return out

    async def _indexed_printers(
        self,
        keys: list[str],
        state: str,
        store_id: str | None,
        after: str | None,
        limit: int | None,
    ) -> list[PrinterView]:
        """``printer_views`` from the backend's index of printers by state: only those
        records are read, a page of stores at a time."""
        cursor = tuple((after or "").partition("/")[::2])
        wanted = sorted(
            k for k in (tuple(key.partition("/")[::2]) for key in keys)
            if (store_id is None or k[0] == store_id) and (not after or k > cursor)
        )  # fmt: skip
        out: list[PrinterView] = []
        for i in range(0, len(wanted), PAGE_STORES):
            if i:
                await asyncio.sleep(0)
            page = wanted[i : i + PAGE_STORES]
            stores = sorted({sid for sid, _ in page})
            configs = {
                c.store_id: c
                for c in (
                    VersionedStoreConfig.model_validate_json(r.doc)
                    for r in await self.storage.get_many(Kind.CONFIG, stores)
                    if r is not None
                )
            }
            records = await self.storage.get_many(Kind.PRINTER, [f"{s}/{p}" for s, p in page])
            for (sid, pid), raw in zip(page, records, strict=True):
                config = configs.get(sid)
                printer = config.printer(pid) if config is not None else None
                if raw is None or printer is None:
                    continue  # gone meanwhile, or no longer configured
                status = PrinterRecord.model_validate_json(raw.doc).status
                if status.state.value != state:
                    continue  # changed since the index was read
                out.append(
                    PrinterView(store_id=sid, printer_id=pid, name=printer.name, status=status)
                )
                if limit is not None and len(out) >= limit:
                    return out
        return out


def _fleet_store(view: StoreView) -> FleetStore:
    return FleetStore(**view.model_dump(exclude={"config_version"}))


def _outage(current: LinkRecord, new: LinkRecord) -> Outage | None:
    """The outage ``new`` records: the one ending now when an offline link comes back,
    else the last one, carried over."""
    if new.online and not current.online and current.since.timestamp() > 0:
        return Outage(started=current.since, ended=new.since, lan_orders=new.offline_orders)
    return current.last_outage


def _outage_ended(link: LinkRecord) -> bool:
    return link.last_outage is not None and link.last_outage.ended == link.since


def _link_state(link: LinkRecord | None, config: VersionedStoreConfig) -> LinkState:
    if link is None:
        return LinkState(online=False, since=datetime.fromtimestamp(0).astimezone())
    return LinkState(
        online=link.online,
        since=link.since,
        client_version=link.client_version,
        last_outage=link.last_outage,
    )
