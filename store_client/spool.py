"""The durable spool: SQLite on the cashier PC (survives kill -9 and reboot).

Every job the broker sends is written here before it is acknowledged; every state change
of a job and the report that tells the broker about it are written in one transaction (an
outbox), so a report can be late after a crash but is never lost. Jobs are deduplicated by
``job_id``: a replayed job that is already here changes nothing, so nothing prints twice.

All SQLite work runs on one dedicated thread, in order; the event loop never blocks on
``fsync``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from protocol.base import StreamPosition
from protocol.codec import encode_msgpack
from protocol.config import VersionedStoreConfig
from protocol.jobs import TERMINAL_JOB_STATES, Job, JobState, clip_job_reason, job_transition
from protocol.messages.store import (
    OUTBOX,
    EdgeKdsAction,
    JobStateReport,
    LanAmend,
    LanCancel,
    LanOrder,
)
from protocol.orders import Order
from protocol.rest import SubmitResult
from protocol.status import PrinterStatus
from store_client.clock import ClockReading, system_clock
from store_client.errors import SpoolError

T = TypeVar("T")
#: Terminal jobs kept for the local status page and for dedupe of late replays.
DEFAULT_HISTORY = 5000
_LIVE = tuple(s.value for s in JobState if s not in TERMINAL_JOB_STATES)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    printer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_printer ON jobs (printer_id, state, seq);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lan_orders (
    order_id TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    offline INTEGER NOT NULL DEFAULT 0,
    told INTEGER NOT NULL DEFAULT 0,
    state TEXT
);
"""


@dataclass(frozen=True, slots=True)
class SpooledJob:
    seq: int
    job: Job
    printer_id: str
    """Where it prints now: the job's own printer, or the backup after a reroute."""
    state: JobState
    reason: str | None


class Spool:
    """Async facade over one SQLite file; use ``await Spool.open(path)``."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._clock = clock
        """Stamps reports and rows: the broker's time as this PC best knows it."""

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], datetime] = system_clock) -> Spool:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, path)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise SpoolError(f"cannot open spool {path}: {exc}") from exc
        return cls(conn, executor, clock)

    async def aclose(self) -> None:
        await self._run(self._conn.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool write failed: {exc}") from exc

    # -- stream position and config ------------------------------------------------------

    async def position(self) -> StreamPosition | None:
        def read() -> StreamPosition | None:
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
            if "epoch" not in meta:
                return None
            return StreamPosition(epoch=meta["epoch"], offset=int(meta["offset"]))

        return await self._run(read)

    async def client_id(self) -> str:
        """This spool's random identity (made once): a new PC or a wiped spool has
        another, so the broker knows not to replay another client's stream to it."""

        def read_or_make() -> str:
            row = self._conn.execute("SELECT value FROM meta WHERE key='client_id'").fetchone()
            if row:
                return str(row[0])
            made = "c-" + secrets.token_hex(8)
            with _tx(self._conn):
                self._set_meta("client_id", made)
            return made

        return await self._run(read_or_make)

    async def config(self) -> VersionedStoreConfig | None:
        def read() -> VersionedStoreConfig | None:
            row = self._conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()
            return VersionedStoreConfig.model_validate_json(row[0]) if row else None

        return await self._run(read)

    async def clock_reading(self) -> ClockReading | None:
        """The last measured offset of this PC's clock to the broker's (``store_client.clock``)."""

        def read() -> ClockReading | None:
            row = self._conn.execute("SELECT value FROM meta WHERE key='clock'").fetchone()
            if not row:
                return None
            saved = json.loads(row[0])
            return ClockReading(
                float(saved["offset_s"]),
                datetime.fromisoformat(saved["at"]),
                saved.get("mono"),
                saved.get("boot"),
            )

        return await self._run(read)

    async def save_clock_reading(self, reading: ClockReading) -> None:
        value = json.dumps(
            {
                "offset_s": reading.offset_s,
                "at": reading.measured_at.isoformat(),
                "mono": reading.mono,
                "boot": reading.boot,
            }
        )

        def write() -> None:
            with _tx(self._conn):
                self._set_meta("clock", value)

        await self._run(write)

    async def apply(
        self,
        *,
        position: StreamPosition | None = None,
        jobs: Iterable[Job] = (),
        cancels: Iterable[str] = (),
        config: VersionedStoreConfig | None = None,
        live: frozenset[str] | None = None,
        now: datetime | None = None,
    ) -> list[Job]:
        """Take a batch of stream messages durably in one transaction; returns new jobs.

        Jobs already spooled are skipped (dedupe by ``job_id``). ``position`` is the
        stream offset covered by the batch: it is what the client then acks. ``live``
        ends a snapshot: waiting jobs the broker no longer has live are dropped.
        """
        at = _iso(now or self._clock())
        jobs, cancels = list(jobs), list(cancels)

        def write() -> list[Job]:
            with _tx(self._conn):
                fresh = [job for job in jobs if self._insert(job, at)]
                for job_id in cancels:
                    self._cancel(job_id, at)
                if live is not None:
                    self._drop_absent(live, at)
                if config is not None and config.version >= self._config_version():
                    self._set_meta("config", config.model_dump_json())  # never an older one
                if position is not None:
                    self._set_meta("epoch", position.epoch)
                    self._set_meta("offset", str(position.offset))
            return fresh

        return await self._run(write)

    # -- jobs ------------------------------------------------------------------------------

    async def pending(self, printer_id: str, limit: int = -1) -> list[SpooledJob]:
        """Live jobs that print on ``printer_id`` now, oldest first (at most ``limit``;
        -1: all)."""

        def read() -> list[SpooledJob]:
            marks = ",".join("?" * len(_LIVE))
            rows = self._conn.execute(
                "SELECT seq, body, printer_id, state, reason FROM jobs "
                f"WHERE printer_id=? AND state IN ({marks}) ORDER BY seq LIMIT ?",
                (printer_id, *_LIVE, limit),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._run(read)

    async def get(self, job_id: str) -> SpooledJob | None:
        def read() -> SpooledJob | None:
            row = self._conn.execute(
                "SELECT seq, body, printer_id, state, reason FROM jobs WHERE job_id=?", (job_id,)
            ).fetchone()
            return _row(row) if row else None

        return await self._run(read)

    async def transition(
        self,
        job_id: str,
        state: JobState,
        *,
        reason: str | None = None,
        printer_id: str | None = None,
        status: PrinterStatus | None = None,
        now: datetime | None = None,
    ) -> None:
        """Move a job to ``state`` and queue the report for the broker, atomically.

        Raises ``TransitionError`` for a move the job state machine does not allow. The
        reason is clipped here, the one place every report passes (``clip_job_reason``).
        """
        at, reason = now or self._clock(), clip_job_reason(reason)
        await self._run(
            lambda: self._transition(
                job_id, state, at, reason, printer_id=printer_id, status=status
            )
        )

    async def settle_interrupted(self, job_id: str, reason: str) -> bool:
        """``printing`` → ``uncertain``: its bytes may be on paper, so it is never printed
        again automatically (DESIGN.md §3); staff can reprint. False, and nothing changes,
        when the job is no longer ``printing`` (it was settled meanwhile)."""
        at, clipped = self._clock(), clip_job_reason(reason)
        return await self._run(
            lambda: self._transition(
                job_id, JobState.UNCERTAIN, at, clipped, only_from=JobState.PRINTING
            )
        )

    async def recover_interrupted(self) -> list[str]:
        """After a crash: jobs caught in ``printing`` become ``uncertain``."""

        def ids() -> list[str]:
            rows = self._conn.execute("SELECT job_id FROM jobs WHERE state='printing'")
            return [r[0] for r in rows.fetchall()]

        interrupted = await self._run(ids)
        for job_id in interrupted:
            await self.settle_interrupted(job_id, "store client stopped while printing")
        return interrupted

    async def counts(self) -> dict[str, dict[str, int]]:
        """printer_id -> state -> number of jobs (for the local status page)."""

        def read() -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            rows = self._conn.execute(
                "SELECT printer_id, state, count(*) FROM jobs GROUP BY printer_id, state"
            )
            for printer_id, state, n in rows.fetchall():
                out.setdefault(printer_id, {})[state] = n
            return out

        return await self._run(read)

    async def prune(self, keep: int = DEFAULT_HISTORY) -> int:
        """Forget terminal jobs beyond the newest ``keep``; returns how many went."""

        def write() -> int:
            marks = ",".join("?" * len(_LIVE))
            with _tx(self._conn):
                cur = self._conn.execute(
                    f"DELETE FROM jobs WHERE state NOT IN ({marks}) AND seq NOT IN (SELECT seq "
                    f"FROM jobs WHERE state NOT IN ({marks}) ORDER BY seq DESC LIMIT ?)",
                    (*_LIVE, *_LIVE, keep),
                )
            return cur.rowcount

        return await self._run(write)

    # -- orders taken by the LAN edge ------------------------------------------------------

    async def take_lan_order(
        self,
        order: Order,
        result: SubmitResult,
        jobs: list[Job],
        now: datetime | None = None,
        offline: bool = False,
        state: str | None = None,
    ) -> tuple[bool, SubmitResult, list[Job]]:
        """An order the LAN edge planned: its jobs spooled, it recorded, and its forward to
        the broker queued in the outbox, in one transaction (DESIGN.md §8.6).

        Returns (taken, answer, fresh jobs). A repeat of an order the edge took gets its
        first answer again, with ``duplicate``. Jobs already spooled (the broker sent them:
        the same order came from another channel first) are not spooled twice; when every
        job was here already, the answer says ``duplicate`` as the broker's would.
        ``offline``: taken while the link was down (counted for HQ, ``offline_orders``).
        ``state``: what the edge keeps to amend or cancel it later (``EdgeOrder`` JSON).
        """
        at = now or self._clock()
        forward = LanOrder(order=order, taken_at=at).model_dump_json()

        def write() -> tuple[bool, SubmitResult, list[Job]]:
            with _tx(self._conn):
                row = self._conn.execute(
                    "SELECT result FROM lan_orders WHERE order_id=?", (result.order_id,)
                ).fetchone()
                if row is not None:
                    first = SubmitResult.model_validate_json(row[0])
                    return False, first.model_copy(update={"duplicate": True}), []
                fresh = [job for job in jobs if self._insert(job, at.isoformat())]
                answer = result
                if jobs and not fresh:
                    answer = result.model_copy(update={"duplicate": True})
                self._conn.execute(
                    "INSERT INTO lan_orders (order_id, result, taken_at, offline, state) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        result.order_id,
                        result.model_dump_json(),
                        at.isoformat(),
                        int(offline),
                        state,
                    ),
                )
                self._conn.execute("INSERT INTO outbox (body) VALUES (?)", (forward,))
            return True, answer, fresh

        return await self._run(write)

    async def recent_lan_order_states(self, limit: int) -> list[str]:
        """The edge's state of the ``limit`` orders it took last (``EdgeOrder`` JSON)."""

        def read() -> list[str]:
            rows = self._conn.execute(
                "SELECT state FROM lan_orders WHERE state IS NOT NULL ORDER BY rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [str(r[0]) for r in reversed(rows)]

        return await self._run(read)

    async def meta(self, key: str) -> str | None:
        def read() -> str | None:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return str(row[0]) if row else None

        return await self._run(read)

    async def set_meta(self, key: str, value: str) -> None:
        def write() -> None:
            with _tx(self._conn):
                self._set_meta(key, value)

        await self._run(write)

    async def lan_order_state(self, order_id: str) -> str | None:
        """The edge's state of an order it took (``EdgeOrder`` JSON), if it took it."""

        def read() -> str | None:
            row = self._conn.execute(
                "SELECT state FROM lan_orders WHERE order_id=?", (order_id,)
            ).fetchone()
            return str(row[0]) if row and row[0] else None

        return await self._run(read)

    async def change_lan_order(
        self,
        order_id: str,
        state: str,
        jobs: list[Job],
        forward: LanAmend | LanCancel,
        stop: Iterable[str] = (),
    ) -> list[Job]:
        """An amendment or cancel of a LAN order, in one transaction: its new jobs (delta or
        void chits) spooled, the jobs in ``stop`` no longer printed if they have not
        started, its state kept, and the forward queued in the outbox. Returns new jobs."""
        at = _iso(self._clock())
        body = forward.model_dump_json()
        stop = list(stop)

        def write() -> list[Job]:
            with _tx(self._conn):
                fresh = [job for job in jobs if self._insert(job, at)]
                for job_id in stop:
                    self._cancel(job_id, at)
                self._conn.execute(
                    "UPDATE lan_orders SET state=? WHERE order_id=?", (state, order_id)
                )
                self._conn.execute("INSERT INTO outbox (body) VALUES (?)", (body,))
            return fresh

        return await self._run(write)

    async def forward(self, message: EdgeKdsAction) -> None:
        """Queue a change made on the edge (a screen's action) for the broker, in order."""
        body = message.model_dump_json()

        def write() -> None:
            with _tx(self._conn):
                self._conn.execute("INSERT INTO outbox (body) VALUES (?)", (body,))

        await self._run(write)

    async def offline_orders(self) -> tuple[int, int]:
        """(count, last rowid) of LAN orders taken offline that no broker was told of."""

        def read() -> tuple[int, int]:
            n, last = self._conn.execute(
                "SELECT count(*), coalesce(max(rowid), 0) FROM lan_orders "
                "WHERE offline=1 AND told=0"
            ).fetchone()
            return int(n), int(last)

        return await self._run(read)

    async def offline_orders_told(self, upto_rowid: int) -> None:
        """A broker welcomed a hello that counted them: they are not counted again."""

        def write() -> None:
            with _tx(self._conn):
                self._conn.execute(
                    "UPDATE lan_orders SET told=1 WHERE offline=1 AND told=0 AND rowid<=?",
                    (upto_rowid,),
                )

        await self._run(write)

    async def lan_orders(self) -> int:
        """How many orders the LAN edge has taken (the local status page shows it)."""
        return await self._run(
            lambda: int(self._conn.execute("SELECT count(*) FROM lan_orders").fetchone()[0])
        )

    # -- the outbox: job_state reports and LAN orders, in order ------------------------------

    async def outbox(self, after: int = 0, limit: int = 100) -> list[tuple[int, bytes]]:
        """The oldest reports after id ``after`` as (id, msgpack frame); the id is the
        report's ``seq``, which the broker acknowledges (``outbox_done``)."""

        def read() -> list[tuple[int, bytes]]:
            rows = self._conn.execute(
                "SELECT id, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
            return [(i, _report_frame(i, body)) for i, body in rows]

        return await self._run(read)

    async def outbox_size(self) -> int:
        """Reports and LAN orders not yet acknowledged by the broker."""
        return await self._run(
            lambda: int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        )

    async def outbox_done(self, upto_id: int) -> None:
        def write() -> None:
            with _tx(self._conn):
                self._conn.execute("DELETE FROM outbox WHERE id <= ?", (upto_id,))

        await self._run(write)

    # -- helpers (spool thread only) -------------------------------------------------------

    def _insert(self, job: Job, at: str) -> bool:
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO jobs (job_id, printer_id, state, body, updated_at) "
            "VALUES (?, ?, 'spooled', ?, ?)",
            (job.job_id, job.printer_id, job.model_dump_json(), at),
        )
        return cur.rowcount == 1

    def _cancel(self, job_id: str, at: str) -> None:
        # Only jobs that have not started printing can still be stopped.
        self._conn.execute(
            "UPDATE jobs SET state='cancelled', updated_at=? "
            "WHERE job_id=? AND state IN ('spooled', 'held', 'rerouted')",
            (at, job_id),
        )

    def _drop_absent(self, live: frozenset[str], at: str) -> None:
        """After a snapshot: waiting jobs the broker no longer has live were cancelled
        (or settled) while this client was away; they must not print now."""
        rows = self._conn.execute(
            "SELECT job_id FROM jobs WHERE state IN ('spooled', 'held', 'rerouted')"
        ).fetchall()
        for (job_id,) in rows:
            if job_id not in live:
                self._conn.execute(
                    "UPDATE jobs SET state='cancelled', reason=?, updated_at=? WHERE job_id=?",
                    ("no longer live at the broker (cancelled while offline)", at, job_id),
                )

    def _transition(
        self,
        job_id: str,
        state: JobState,
        at: datetime,
        reason: str | None,
        *,
        printer_id: str | None = None,
        status: PrinterStatus | None = None,
        only_from: JobState | None = None,
    ) -> bool:
        row = self._conn.execute(
            "SELECT state, printer_id FROM jobs WHERE job_id=?", (job_id,)
        ).fetchone()
        if row is None:
            raise SpoolError(f"job {job_id} is not in the spool")
        if only_from is not None and row[0] != only_from.value:
            return False
        job_transition(JobState(row[0]), state)
        target = printer_id or row[1]
        report = JobStateReport(
            job_id=job_id, state=state, reason=reason, at=at, printer_id=target, status=status
        )
        with _tx(self._conn):
            self._conn.execute(
                "UPDATE jobs SET state=?, reason=?, printer_id=?, updated_at=? WHERE job_id=?",
                (state.value, reason, target, at.isoformat(), job_id),
            )
            self._conn.execute("INSERT INTO outbox (body) VALUES (?)", (report.model_dump_json(),))
        return True

    def _config_version(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()
        return VersionedStoreConfig.model_validate_json(row[0]).version if row else 0

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[None]:
    """One explicit transaction (the connection is in autocommit mode)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a job acked to the broker survives power loss, not only a process crash.
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    return conn


def _row(row: tuple[int, str, str, str, str | None]) -> SpooledJob:
    seq, body, printer_id, state, reason = row
    return SpooledJob(seq, Job.model_validate_json(body), printer_id, JobState(state), reason)


def _report_frame(seq: int, body: str) -> bytes:
    report = OUTBOX.validate_json(body)
    return encode_msgpack(report.model_copy(update={"seq": seq}))


def _iso(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat()
