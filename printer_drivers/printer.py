"""The ``Printer`` facade the store client drives: print a job, read the status.

``print_job`` writes the job's bytes followed by an end-of-job barrier (GS r 1, or
GS ( H where the profile has it), which the printer answers only after printing what
came before (DESIGN.md §4). Its outcome is ``printed`` (barrier answered), ``uncertain``
(bytes written, no answer in time) or ``failed`` (nothing written). Printer trouble
never raises: it becomes an outcome and a status. One lock serialises callers, so two
jobs never interleave on one connection, and every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import TypeVar

from printer_drivers import commands as cmd
from printer_drivers.errors import TransportError
from printer_drivers.profile import RESPONSE_BARRIER_PROFILES, Barrier
from printer_drivers.replies import ReplyInbox
from printer_drivers.status import Reply, decode_status, unknown_fields
from printer_drivers.transports.base import READ_CHUNK, Transport, open_transport
from protocol.config import PrinterConfig
from protocol.status import PrinterState, PrinterStatus

log = logging.getLogger(__name__)

_T = TypeVar("_T")
NOT_READY = frozenset({PrinterState.ERROR, PrinterState.OFFLINE})


class PrintResult(StrEnum):
    PRINTED = "printed"  # the barrier was answered: the printer got past the job
    UNCERTAIN = "uncertain"  # bytes written, no confirmation: never reprint automatically
    FAILED = "failed"  # nothing was written


@dataclass(frozen=True, slots=True)
class PrintOutcome:
    result: PrintResult
    status: PrinterStatus
    reason: str | None = None


@dataclass(frozen=True)
class Timeouts:
    """Upper bounds, in seconds, of each wait."""

    connect: float = 3.0
    status: float = 2.0
    """For all four DLE EOT replies of one poll."""
    write: float = 10.0
    barrier: float = 20.0
    """From the end of the write to the barrier's answer: covers printing the job."""
    fence_quiet: float = 1.0
    """After the fence on a new connection: how long no stale answer must arrive."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Printer:
    """One printer's connection owner. Use ``open_printer`` to build one from config."""

    def __init__(
        self,
        transport: Transport,
        *,
        printer_id: str = "printer",
        barrier: Barrier = Barrier.PAPER_SENSOR,
        timeouts: Timeouts | None = None,
        precheck: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.transport = transport
        self.printer_id = printer_id
        self.barrier = barrier
        self.timeouts = timeouts or Timeouts()
        self.precheck = precheck
        self._clock = clock
        self._lock = asyncio.Lock()
        self._inbox = ReplyInbox()
        self._last: PrinterStatus | None = None
        # GS ( H ids start at random: a late answer to an earlier process's request on
        # this printer must not match ours (the ids wrap at 10000).
        self._ids = itertools.count(random.randrange(10000))
        self._fenced = False
        self.job_bytes_sent = False
        """Whether the current (or last) ``print_job`` began writing the job's bytes."""

    async def __aenter__(self) -> Printer:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop_link()

    # --- status ---------------------------------------------------------------------
    async def status(self) -> PrinterStatus:
        """Poll DLE EOT 1-4 now; a printer that does not answer is ``offline``."""
        async with self._lock:
            return await self._guarded(self._status_locked)

    async def _status_locked(self) -> PrinterStatus:
        if not await self._connect():
            return self._unknown(reachable=False)
        return await self._poll()

    def _unknown(self, *, reachable: bool) -> PrinterStatus:
        status = PrinterStatus.model_validate({**unknown_fields(reachable), "since": self._clock()})
        return self._remember(status)

    def _remember(self, status: PrinterStatus) -> PrinterStatus:
        if self._last is not None and self._last.same_condition(status):
            return self._last
        self._last = status
        return status

    async def _connect(self) -> bool:
        if self.transport.connected:
            return True
        self._inbox.clear()
        self._fenced = False
        try:
            await self.transport.connect(self.timeouts.connect)
        except TransportError as exc:
            log.info("printer %s: %s", self.printer_id, exc)
            return False
        return True

    async def _poll(self) -> PrinterStatus:
        """Ask DLE EOT 1-4 one at a time; a reply that does not come ends the poll."""
        if not self.transport.readable:
            return self._unknown(reachable=True)
        deadline = time.monotonic() + self.timeouts.status
        replies: dict[int, Reply | None] = {}
        try:
            for n in cmd.REALTIME_STATUS_KINDS:
                asked = time.monotonic()
                await self.transport.write(cmd.realtime_status(n), self.timeouts.write)
                data = await self._await_reply(self._inbox.pop_realtime, deadline)
                replies[n] = None if data is None else Reply(data, asked, time.monotonic())
                if data is None:
                    await self._drop_link()  # a late answer must not pass for the next one
                    break
        except TransportError as exc:
            log.info("printer %s: status poll: %s", self.printer_id, exc)
            await self._drop_link()
        status = decode_status(replies, at=self._clock(), now=time.monotonic(), previous=self._last)
        return self._remember(status)

    async def _await_reply(self, pop: Callable[[], bytes | None], deadline: float) -> bytes | None:
        while (found := pop()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._inbox.feed(await self.transport.read(READ_CHUNK, remaining))
        return found

    # --- printing -------------------------------------------------------------------
    async def print_job(self, data: bytes) -> PrintOutcome:
        """Print ``data`` (one rendered job, copies included) and confirm it."""
        async with self._lock:
            return await self._guarded(lambda: self._print_locked(data))

    async def _print_locked(self, data: bytes) -> PrintOutcome:
        self.job_bytes_sent = False
        if not await self._connect():
            return self._outcome(
                PrintResult.FAILED, self._unknown(reachable=False), "cannot connect"
            )
        if self.precheck and self.transport.readable:
            status = await self._poll()
            if status.state in NOT_READY:
                reason = f"printer {status.state.value}: {', '.join(status.reasons)}"
                return self._outcome(PrintResult.FAILED, status, reason)
        if not self._fenced and self.transport.readable:
            fenced = await self._fence()
            if fenced is not None:
                return fenced
        request, confirmed = self._barrier()
        self.job_bytes_sent = True
        try:
            await self.transport.write(data + request, self.timeouts.write)
        except TransportError as exc:
            await self._drop_link()
            result = PrintResult.UNCERTAIN if exc.written else PrintResult.FAILED
            return self._outcome(result, self._unknown(reachable=False), str(exc))
        if not self.transport.readable:
            status = self._unknown(reachable=True)
            return self._outcome(PrintResult.UNCERTAIN, status, "this transport cannot confirm")
        return await self._confirm(confirmed)

    async def _fence(self) -> PrintOutcome | None:
        """Before the first job on a new connection: a barrier of our own, then quiet.

        A job an earlier connection (or process) left in the printer's buffer — cut off
        mid-job, cover opened — prints when the printer can, and its end-of-job answer may
        arrive on this connection. GS r answers carry no id, so that answer would confirm
        our job before it printed. The fence's answer comes after everything buffered
        before it; the ones still trickling in are read off for ``fence_quiet`` seconds
        (DESIGN.md §4: "printed" must mean printed). None: fenced, go on; else the job's
        outcome (nothing written)."""
        request, confirmed = self._barrier()
        deadline = time.monotonic() + self.timeouts.barrier
        try:
            await self.transport.write(request, self.timeouts.write)
            answer = await self._await_reply(confirmed, deadline)
            deadline = time.monotonic() + self.timeouts.barrier  # for the stragglers
            while answer is not None and self.barrier is Barrier.PAPER_SENSOR:  # no ids
                self._inbox.clear()
                if time.monotonic() >= deadline:
                    answer = None  # still answering: an earlier job is still printing
                    break
                quiet = min(deadline, time.monotonic() + self.timeouts.fence_quiet)
                if await self._await_reply(self._inbox.pop_paper_sensor, quiet) is None:
                    break
        except TransportError as exc:
            await self._drop_link()
            return self._outcome(PrintResult.FAILED, self._unknown(reachable=False), str(exc))
        if answer is None:
            status = await self._poll()
            await self._drop_link()
            reason = "the printer did not finish what an earlier connection left in it"
            return self._outcome(PrintResult.FAILED, status, reason)
        self._inbox.clear()
        self._fenced = True
        return None

    def _barrier(self) -> tuple[bytes, Callable[[], bytes | None]]:
        """The barrier request and how to recognise its answer."""
        if self.barrier is Barrier.RESPONSE:
            process_id = next(self._ids) % 10000
            return cmd.response_request(
                process_id
            ), lambda: b"ok" if self._inbox.pop_response(process_id) else None
        return cmd.PAPER_SENSOR_STATUS, self._inbox.pop_paper_sensor

    async def _confirm(self, confirmed: Callable[[], bytes | None]) -> PrintOutcome:
        deadline = time.monotonic() + self.timeouts.barrier
        try:
            answer = await self._await_reply(confirmed, deadline)
        except TransportError as exc:
            await self._drop_link()
            return self._outcome(PrintResult.UNCERTAIN, self._unknown(reachable=False), str(exc))
        status = await self._poll()
        if answer is not None:
            return self._outcome(PrintResult.PRINTED, status)
        await self._drop_link()  # its late answer must not confirm a later job
        reason = f"no answer to the end-of-job barrier within {self.timeouts.barrier:g}s"
        if status.state is not PrinterState.READY:
            reason += f" (printer {status.state.value}: {', '.join(status.reasons)})"
        return self._outcome(PrintResult.UNCERTAIN, status, reason)

    def _outcome(
        self, result: PrintResult, status: PrinterStatus, reason: str | None = None
    ) -> PrintOutcome:
        log.info(
            "printer %s: job %s%s", self.printer_id, result.value, f" ({reason})" if reason else ""
        )
        return PrintOutcome(result, status, reason)

    # --- plumbing ---------------------------------------------------------------------
    async def _guarded(self, op: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``op``; if the caller is cancelled mid-way, drop the link (state unknown)."""
        try:
            return await op()
        except asyncio.CancelledError:
            await asyncio.shield(self._drop_link())
            raise

    async def _drop_link(self) -> None:
        self._inbox.clear()
        try:
            await self.transport.close()
        except TransportError as exc:
            log.debug("printer %s: close: %s", self.printer_id, exc)


class _BrokenTransport:
    """Stands in for a transport whose URI could not be used: every connect fails."""

    readable = False
    connected = False

    def __init__(self, uri: str, problem: str) -> None:
        self.uri, self.problem = uri, problem

    async def connect(self, timeout_s: float) -> None:
        raise TransportError(self.problem)

    async def write(self, data: bytes, timeout_s: float) -> None:
        raise TransportError(self.problem)

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        raise TransportError(self.problem)

    async def close(self) -> None:
        return None


def open_printer(
    config: PrinterConfig,
    *,
    connect_timeout: float = Timeouts.connect,
    barrier_timeout: float = Timeouts.barrier,
    status_timeout: float = Timeouts.status,
    write_timeout: float = Timeouts.write,
    precheck: bool = True,
    clock: Callable[[], datetime] = utcnow,
) -> Printer:
    """A ``Printer`` for a store's printer config. Connects lazily; never raises for a
    printer that is down or a transport that cannot work here: those show in its status."""
    try:
        transport: Transport = open_transport(config.transport)
    except TransportError as exc:
        transport = _BrokenTransport(config.transport, str(exc))
    barrier = (
        Barrier.RESPONSE if config.profile in RESPONSE_BARRIER_PROFILES else Barrier.PAPER_SENSOR
    )
    timeouts = Timeouts(connect_timeout, status_timeout, write_timeout, barrier_timeout)
    return Printer(
        transport,
        printer_id=config.printer_id,
        barrier=barrier,
        timeouts=timeouts,
        precheck=precheck,
        clock=clock,
    )
