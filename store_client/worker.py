"""One worker per printer: its ordered queue, its one connection, its status.

A worker prints its spooled jobs oldest first, and only when the printer says it can:
while it is in error or offline the jobs are ``held`` and the status is polled; after
``failover_after_s`` with jobs waiting they move to the backup printer with a
"REROUTED from …" header; jobs past ``expires_at`` become ``expired`` instead of printing
(DESIGN.md §4). A dead printer never delays another: each worker owns its own task.

A job is in ``printing`` only while ``_print`` runs. One found there at any other time was
cut off after its bytes may have left (the worker was restarted by a config change, or
the spool could not record the printer's answer): it becomes ``uncertain`` and is never
handed to print or hold again, so it can neither block the queue nor print twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from printer_drivers import (
    Printer,
    PrintOutcome,
    PrintResult,
    RenderError,
    RenderProfile,
    UnsupportedEncodingError,
    open_printer,
    render,
)
from protocol.config import PrinterConfig, VersionedStoreConfig
from protocol.jobs import JobState
from protocol.status import PrinterState, PrinterStatus
from store_client.errors import SpoolError
from store_client.spool import Spool, SpooledJob
from store_client.transport_policy import TransportNotAllowed, TransportPolicy

log = logging.getLogger(__name__)

#: Jobs a step looks at: the oldest ones. A backlog of thousands (a snapshot after a long
#: outage) must not cost a read of all of them per printed job.
PENDING_WINDOW = 64
WORKER_STOPPED_UNSENT = "the printer's worker stopped before sending it"
PRINTABLE = frozenset({PrinterState.READY, PrinterState.WARNING, PrinterState.UNKNOWN})
#: Reasons of a job settled as ``uncertain`` because its print was cut off.
FOUND_PRINTING = "print interrupted before its outcome was recorded; may be on paper"
WORKER_STOPPED = "print interrupted: the printer's worker stopped (config change or shutdown)"


class WorkerHost(Protocol):
    """What a worker needs from the daemon around it."""

    def config(self) -> VersionedStoreConfig: ...
    def printer_status(self, printer_id: str, status: PrinterStatus) -> None: ...
    def reports_pending(self) -> None: ...
    def wake(self, printer_id: str) -> None: ...


@dataclass(frozen=True)
class WorkerSettings:
    idle_poll_s: float = 2.0
    """Status poll while there is nothing to print."""
    held_poll_s: float = 1.0
    """Status poll while jobs wait for the printer."""
    heartbeat_s: float = 60.0
    """An unchanged status is re-reported this often."""
    connect_timeout_s: float = 3.0
    barrier_timeout_s: float = 10.0
    transports: TransportPolicy = field(default_factory=TransportPolicy)
    """What this PC lets a printer's transport open (``--allow-transport``)."""


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class PrinterWorker:
    def __init__(
        self,
        printer: PrinterConfig,
        spool: Spool,
        host: WorkerHost,
        settings: WorkerSettings | None = None,
        clock: Clock = utcnow,
        expiry_clock: Clock | None = None,
    ) -> None:
        self.config = printer
        self._spool = spool
        self._host = host
        self._settings = settings or WorkerSettings()
        self._clock = clock
        self._expiry_clock = expiry_clock or clock
        """What expiry compares ``expires_at`` with (``SkewedClock.expiry_now``)."""
        self._wake = asyncio.Event()
        self._printer: Printer | None = None
        self.status: PrinterStatus | None = None
        self._reported_at: datetime | None = None
        self._held_since: datetime | None = None
        self.refused: str | None = None
        """Why this PC will not open the printer's transport; None when it may."""

    @property
    def printer_id(self) -> str:
        return self.config.printer_id

    def wake(self) -> None:
        self._wake.set()

    async def open(self) -> None:
        s = self._settings
        try:
            s.transports.check(self.config.transport)
        except TransportNotAllowed as exc:  # never opened, not even tried (DESIGN.md §8.3)
            self.refused = str(exc)
            log.error("printer %s: %s", self.printer_id, exc)
            return
        self._printer = open_printer(
            self.config,
            connect_timeout=s.connect_timeout_s,
            barrier_timeout=s.barrier_timeout_s,
            clock=self._clock,
        )

    async def close(self) -> None:
        if self._printer is not None:
            await self._printer.aclose()
            self._printer = None

    async def run(self) -> None:
        await self.open()
        try:
            while True:
                delay = await self.step()
                if delay:
                    await self._sleep(delay)
        finally:
            await self.close()

    async def step(self) -> float:
        """Do one unit of work; returns how long to wait before the next (0: go on)."""
        window = await self._spool.pending(self.printer_id, PENDING_WINDOW)
        pending = await self._settle_found_printing(window)
        if self.refused is not None:
            await self._refuse(pending, self.refused)
            return 0.0 if len(window) == PENDING_WINDOW else self._settings.idle_poll_s
        pending = await self._expire(pending)
        if not pending and len(window) == PENDING_WINDOW:
            return 0.0  # that window expired: more jobs wait behind it
        if not pending:
            await self._poll()
            self._held_since = None
            return self._settings.idle_poll_s
        if self.status is None or self.status.state not in PRINTABLE:
            # Between jobs of a ready printer no extra poll is needed: print_job checks
            # the status itself before writing and reports what it saw.
            status = await self._poll()
            if status.state not in PRINTABLE:
                await self._hold(pending, status)
                return self._settings.held_poll_s
        self._held_since = None
        await self._print(pending[0])
        return 0.0

    async def _refuse(self, pending: list[SpooledJob], reason: str) -> None:
        """A printer whose transport this PC refuses: offline with the reason (HQ shows
        it), and every job for it ``failed`` with that reason — a config error."""
        self._observe(PrinterStatus(reachable=False, since=self._clock(), detail=reason))
        for item in pending:
            await self._move(item, JobState.FAILED, reason)

    async def _sleep(self, delay: float) -> None:
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def _poll(self) -> PrinterStatus:
        assert self._printer is not None
        self._observe(await self._printer.status())
        assert self.status is not None
        return self.status

    def _observe(self, status: PrinterStatus) -> None:
        """Keep ``since`` of an unchanged condition; report changes and heartbeats."""
        now = self._clock()
        previous = self.status
        if previous is not None and previous.same_condition(status):
            status = previous
        self.status = status
        changed = previous is None or status is not previous
        stale = self._reported_at is None or now - self._reported_at >= timedelta(
            seconds=self._settings.heartbeat_s
        )
        if changed or stale:
            self._reported_at = now
            self._host.printer_status(self.printer_id, status)
            if changed:
                log.info(
                    "printer %s: %s %s", self.printer_id, status.state, ",".join(status.reasons)
                )

    async def _settle_found_printing(self, pending: list[SpooledJob]) -> list[SpooledJob]:
        """Jobs in ``printing`` become ``uncertain``: this worker prints only inside
        ``_print``, so nothing is printing them now (see the module docstring)."""
        waiting = []
        for item in pending:
            if item.state is not JobState.PRINTING:
                waiting.append(item)
            elif await self._spool.settle_interrupted(item.job.job_id, FOUND_PRINTING):
                self._settled(item, FOUND_PRINTING)
        return waiting

    def _settled(self, item: SpooledJob, reason: str) -> None:
        log.warning("job %s on %s: uncertain (%s)", item.job.job_id, self.printer_id, reason)
        self._host.reports_pending()

    async def _expire(self, pending: list[SpooledJob]) -> list[SpooledJob]:
        now, live = self._expiry_clock(), []
        for item in pending:
            if now >= item.job.expires_at:
                await self._move(item, JobState.EXPIRED, f"not printed by {item.job.expires_at}")
            else:
                live.append(item)
        return live

    async def _hold(self, pending: list[SpooledJob], status: PrinterStatus) -> None:
        now = self._clock()
        self._held_since = self._held_since or now
        reason = f"printer {status.state}: {', '.join(status.reasons)}"
        for item in pending:
            if item.state is not JobState.HELD:
                await self._move(item, JobState.HELD, reason, status=status)
        backup = self._backup()
        due = now - self._held_since >= timedelta(seconds=self._host.config().failover_after_s)
        if backup is not None and due:
            for item in pending:
                if item.job.printer_id == self.printer_id:  # never bounce a rerouted job again
                    reason = f"rerouted from {self.config.name} to {backup.name}"
                    await self._move(item, JobState.REROUTED, reason, printer_id=backup.printer_id)
            self._host.wake(backup.printer_id)

    def _backup(self) -> PrinterConfig | None:
        if self.config.backup is None:
            return None
        return self._host.config().printer(self.config.backup)

    async def _print(self, item: SpooledJob) -> None:
        assert self._printer is not None
        job = item.job
        doc = job.doc
        if job.printer_id != self.printer_id and doc.rerouted_from is None:
            original = self._host.config().printer(job.printer_id)
            doc = doc.model_copy(
                update={"rerouted_from": original.name if original else job.printer_id}
            )
        try:
            look = self._host.config().chit
            data = render(doc, RenderProfile.from_config(self.config), look) * job.copies
        except (RenderError, UnsupportedEncodingError) as exc:  # a config or doc problem
            await self._move(item, JobState.FAILED, f"cannot render for {self.printer_id}: {exc}")
            return
        await self._move(item, JobState.PRINTING)
        try:
            outcome = await self._printer.print_job(data)
            self._observe(outcome.status)
            try:
                await self._record(item, outcome)
            except SpoolError as exc:  # the printer answered; the spool cannot say so
                reason = f"print outcome ({outcome.result.value}) could not be recorded: {exc}"
                if await self._spool.settle_interrupted(item.job.job_id, reason):
                    self._settled(item, reason)
        except asyncio.CancelledError:  # e.g. a config change restarts this worker mid-job
            if self._printer.job_bytes_sent:
                await self._settle_cancelled(item)
            else:  # stopped before a byte left: it simply waits for the next worker
                await self._unsent(item)
            raise

    async def _unsent(self, item: SpooledJob) -> None:
        try:
            await asyncio.shield(self._move(item, JobState.HELD, WORKER_STOPPED_UNSENT))
        except SpoolError as exc:
            log.error("job %s on %s: cannot put it back: %s", item.job.job_id, self.printer_id, exc)

    async def _settle_cancelled(self, item: SpooledJob) -> None:
        """Mark the cut-off job ``uncertain`` now, whatever happens to this task; if the
        spool fails, the next worker's first step settles it (``_settle_found_printing``)."""
        try:
            if await asyncio.shield(
                self._spool.settle_interrupted(item.job.job_id, WORKER_STOPPED)
            ):
                self._settled(item, WORKER_STOPPED)
        except SpoolError as exc:
            log.error(
                "job %s on %s: cannot mark it uncertain: %s", item.job.job_id, self.printer_id, exc
            )

    async def _record(self, item: SpooledJob, outcome: PrintOutcome) -> None:
        if outcome.result is PrintResult.PRINTED:
            await self._move(item, JobState.PRINTED, status=outcome.status)
        elif outcome.result is PrintResult.UNCERTAIN:
            await self._move(item, JobState.UNCERTAIN, outcome.reason, status=outcome.status)
        else:  # nothing was written: it waits for the printer like any held job
            await self._move(item, JobState.HELD, outcome.reason, status=outcome.status)

    async def _move(
        self,
        item: SpooledJob,
        state: JobState,
        reason: str | None = None,
        *,
        printer_id: str | None = None,
        status: PrinterStatus | None = None,
    ) -> None:
        await self._spool.transition(
            item.job.job_id, state, reason=reason, printer_id=printer_id, status=status
        )
        log.info("job %s on %s: %s %s", item.job.job_id, self.printer_id, state, reason or "")
        self._host.reports_pending()
