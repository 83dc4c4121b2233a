"""What store clients report: link presence, acks, job states, printer status — and the
fleet views built from them (HQ, ``GET /v1/stores``, ``GET /v1/printers``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel

from broker.orders import now_utc, put, retrying
from broker.records import JobRecord, LinkRecord, PrinterRecord, printer_key
from broker.storage import Kind, Storage, Tx
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
    FleetPrinter,
    FleetStore,
    HqPrinterStatus,
    JobAlert,
    LinkState,
    StoreLink,
)
from protocol.messages.store import JobStateReport
from protocol.rest import PrinterView, StoreView
from protocol.status import PrinterStatus

log = logging.getLogger(__name__)

FLUSH_S = 0.05  # acks and link presence are written in batches this often
ALERT_STATES = frozenset({JobState.HELD, JobState.FAILED, JobState.UNCERTAIN, JobState.EXPIRED})
_S = JobState
#: Steps the broker fills in when a report skips ahead (ack lost, report first).
_IMPLIED = {_S.QUEUED: (_S.SENT, _S.SPOOLED), _S.SENT: (_S.SPOOLED,)}


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
        storage: Storage,
        publish_hq: Callable[[BaseModel], None],
        tasks: asyncio.TaskGroup | None = None,
    ) -> None:
        self.storage = storage
        self.publish_hq = publish_hq
        self.tasks = tasks
        self._acks: dict[str, list[tuple[str, datetime]]] = {}
        self._links: dict[str, LinkRecord] = {}
        self._flushing = False

    def queue_acks(self, store_id: str, done: Sequence[tuple[str, datetime]]) -> None:
        """Acks from every link are written together every ``FLUSH_S``: one group commit
        instead of one per ack (``spooled`` is bookkeeping; the stream already has the job)."""
        self._acks.setdefault(store_id, []).extend(done)
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
            await asyncio.sleep(FLUSH_S)
            acks, self._acks = self._acks, {}
            links, self._links = self._links, {}
        finally:
            self._flushing = False
        writes = [(s, self.acked(s, done)) for s, done in acks.items()]
        writes += [(s, self._write_link(link)) for s, link in links.items()]
        results = await asyncio.gather(*(w for _, w in writes), return_exceptions=True)
        for (store_id, _), result in zip(writes, results, strict=True):
            if isinstance(result, Exception):
                log.warning("store=%s: link/ack state not recorded: %s", store_id, result)

    # -- link presence -------------------------------------------------------------------
    async def set_link(self, store_id: str, online: bool, client_version: str | None) -> None:
        """HQ hears at once; the record is written with the next flush (a reconnect storm
        of 10k store clients is a few group commits, not 10k fsyncs)."""
        link = LinkRecord(
            store_id=store_id, online=online, since=now_utc(), client_version=client_version
        )
        self._links[store_id] = link
        self._schedule_flush()
        log.info("link store=%s online=%s", store_id, online)
        self.publish_hq(
            StoreLink(
                store_id=store_id,
                online=online,
                since=link.since,
                client_version=link.client_version,
            )
        )

    async def _write_link(self, link: LinkRecord) -> None:
        async def attempt() -> None:
            raw = await self.storage.get(Kind.LINK, link.store_id)
            version = (raw.version if raw else 0) + 1
            tx = Tx([put(Kind.LINK, link.store_id, link, version)])
            await self.storage.commit(link.store_id, tx)

        await retrying(attempt)

    async def reset_links(self) -> None:
        """At start of a single node: nobody is connected yet."""
        for raw in await self.storage.scan(None, Kind.LINK, live_only=False):
            link = LinkRecord.model_validate_json(raw.doc)
            if link.online:
                link.online, link.since = False, now_utc()
                put_ = put(Kind.LINK, raw.key, link, raw.version + 1)
                await self.storage.commit(raw.store_id, Tx([put_]))

    # -- job states ----------------------------------------------------------------------
    async def acked(self, store_id: str, sent: Sequence[tuple[str, datetime]]) -> None:
        """Jobs up to an ack are durable at the store: ``sent`` → ``spooled``."""

        async def attempt() -> None:
            now, puts = now_utc(), []
            for job_id, sent_at in sent:
                raw = await self.storage.get(Kind.JOB, job_id)
                if raw is None:
                    continue
                jr = JobRecord.model_validate_json(raw.doc)
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

        async def attempt() -> tuple[str | None, JobRecord | None]:
            raw = await self.storage.get(Kind.JOB, report.job_id)
            if raw is None:
                return f"no job {report.job_id!r}", None
            jr = JobRecord.model_validate_json(raw.doc)
            if jr.store_id != store_id:
                return f"no job {report.job_id!r}", None
            if jr.state is report.state:
                return None, None
            try:
                steps = steps_to(jr.state, report.state)
            except TransitionError as exc:
                if jr.state is not _S.CANCELLED:  # paper wins over a broker-side cancel
                    return str(exc), None
                steps = [report.state]
            for step in steps:
                at = report.at if step is report.state else now_utc()
                reason = report.reason if step is report.state else None
                jr.history.append(
                    JobTransitionRecord(
                        state=step, at=at, reason=reason or None, printer_id=report.printer_id
                    )
                )
            jr.state = report.state
            live = report.state not in TERMINAL_JOB_STATES
            await self.storage.commit(
                store_id, Tx([put(Kind.JOB, report.job_id, jr, raw.version + 1, live)])
            )
            return None, jr

        error, jr = await retrying(attempt)
        if jr is not None and report.state in ALERT_STATES:
            self.publish_hq(
                JobAlert(
                    store_id=store_id,
                    job_id=report.job_id,
                    printer_id=report.printer_id or jr.job.printer_id,
                    state=report.state,
                    reason=report.reason,
                )
            )
        if jr is not None and report.status is not None:
            await self.printer_status(
                store_id, report.printer_id or jr.job.printer_id, report.status
            )
        return error

    # -- printers ------------------------------------------------------------------------
    async def printer_status(self, store_id: str, printer_id: str, status: PrinterStatus) -> None:
        key = printer_key(store_id, printer_id)

        async def attempt() -> bool:
            raw = await self.storage.get(Kind.PRINTER, key)
            if raw is not None:
                old = PrinterRecord.model_validate_json(raw.doc).status
                if old.same_condition(status):
                    return False
            rec = PrinterRecord(store_id=store_id, printer_id=printer_id, status=status)
            version = (raw.version if raw else 0) + 1
            await self.storage.commit(store_id, Tx([put(Kind.PRINTER, key, rec, version)]))
            return True

        if await retrying(attempt):
            log.info("printer store=%s printer=%s state=%s", store_id, printer_id, status.state)
            self.publish_hq(
                HqPrinterStatus(store_id=store_id, printer_id=printer_id, status=status)
            )

    # -- views ---------------------------------------------------------------------------
    async def store_views(self, store_id: str | None = None) -> list[StoreView]:
        configs = await self.storage.scan(store_id, Kind.CONFIG, live_only=False)
        links = {r.store_id: r for r in await self.storage.scan(store_id, Kind.LINK, False)}
        printers: dict[str, dict[str, PrinterStatus]] = {}
        for r in await self.storage.scan(store_id, Kind.PRINTER, live_only=False):
            pr = PrinterRecord.model_validate_json(r.doc)
            printers.setdefault(pr.store_id, {})[pr.printer_id] = pr.status
        counts = await self._job_counts(store_id)
        views = []
        for raw in sorted(configs, key=lambda r: r.store_id):
            config = VersionedStoreConfig.model_validate_json(raw.doc)
            link_raw = links.get(raw.store_id)
            link = LinkRecord.model_validate_json(link_raw.doc) if link_raw else None
            statuses = printers.get(raw.store_id, {})
            queued, held = counts.get(raw.store_id, (0, 0))
            views.append(
                StoreView(
                    store_id=raw.store_id,
                    name=config.name,
                    link=_link_state(link, config),
                    printers=tuple(
                        FleetPrinter(
                            printer_id=p.printer_id, name=p.name, status=statuses.get(p.printer_id)
                        )
                        for p in config.printers
                    ),
                    queued=queued,
                    held=held,
                    config_version=config.version,
                )
            )
        return views

    async def _job_counts(self, store_id: str | None) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for raw in await self.storage.scan(store_id, Kind.JOB, live_only=True):
            jr = JobRecord.model_validate_json(raw.doc)
            queued, held = counts.get(raw.store_id, (0, 0))
            if jr.state is _S.HELD:
                held += 1
            else:
                queued += 1
            counts[raw.store_id] = (queued, held)
        return counts

    async def fleet(self) -> list[FleetStore]:
        return [
            FleetStore(**v.model_dump(exclude={"config_version"})) for v in await self.store_views()
        ]

    async def printer_views(self, state: str | None, store_id: str | None) -> list[PrinterView]:
        out = []
        for view in await self.store_views(store_id):
            for p in view.printers:
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
        return out


def _link_state(link: LinkRecord | None, config: VersionedStoreConfig) -> LinkState:
    if link is None:
        return LinkState(online=False, since=datetime.fromtimestamp(0).astimezone())
    return LinkState(online=link.online, since=link.since, client_version=link.client_version)
