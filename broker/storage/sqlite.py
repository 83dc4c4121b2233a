"""``sqlite:///path``: the embedded default backend (DESIGN.md §5.5).

One writer task owns the only writing connection and does group commit: it takes every
commit request waiting, checks each request's versions and applies it (a version conflict
skips that request only), COMMITs once, and only then resolves the requests' futures and
tells the listener — so an acknowledged submit is on disk. The statements run on the event
loop (microseconds each; a writer *thread* spent most of its time waiting for the GIL
behind the busy loop); only COMMIT, which waits for fsync, runs in a worker thread while
the next group gathers. WAL journal; by default
``synchronous=FULL`` (fsync per group commit: durable against power loss too). With
``?synchronous=normal`` a commit survives kill -9 of the process (the WAL is written
before COMMIT returns) but the last group commits may be lost on power loss.

Reads use a second connection on the event loop thread: WAL readers never wait for the
writer, and point reads by primary key cost microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from broker.errors import StorageError, VersionConflict
from broker.storage.base import (
    DEFAULT_STREAM_MAX_LEN,
    GROUP_WAIT_S,
    Committed,
    Entry,
    EntryKind,
    Gathering,
    InProcess,
    Kind,
    Listener,
    Put,
    Record,
    StreamSlice,
    Tx,
    notify,
    of_store,
    settle,
)
from broker.storage.denylist import SQLITE_SCHEMA as DENYLIST_SCHEMA
from broker.storage.denylist import DenyList, MemoryDenyList, SqliteDenyList
from broker.storage.memory import new_epoch
from broker.storage.outbox import Outbox, SqliteOutbox

log = logging.getLogger(__name__)

MAX_GROUP = 512  # commit requests per transaction
RECENT = 2048  # records kept as last committed (``_Recent``)
VERSION_CHUNK = 400  # records per version query (SQLite allows 32,766 variables)
CHECKPOINT_EVERY_S = 1.0
CACHE_KIB = 2 * 1024  # per connection (writer, reader); see docs/broker.md
MMAP_BYTES = 0
UNBORN_EPOCH = "unborn"  # what a reader sees before a store's first commit: never matches
COMMIT_TIMEOUT_S = 30.0
OVERDUE_CHECK_S = 1.0
CLOSE_TIMEOUT_S = 30.0
SYNCHRONOUS = ("full", "normal", "extra")

#: Records and stream entries are rowid tables with a unique key, not WITHOUT ROWID
#: tables keyed by it: their rows (a kilobyte or more of JSON) then sit in insertion
#: order, so a group commit's new rows share the table's last pages and only the small
#: key index takes scattered writes. Keyed by (kind, key), every order dirtied a random
#: leaf page per record and per entry: about ten 4 KiB pages per order, all written to
#: the WAL and then again to the database (docs/benchmarks.md, issue 13).
TABLES = """
CREATE TABLE IF NOT EXISTS records (
  kind TEXT NOT NULL, key TEXT NOT NULL, store_id TEXT NOT NULL,
  version INTEGER NOT NULL, live INTEGER NOT NULL, doc TEXT NOT NULL,
  UNIQUE (kind, key));
CREATE TABLE IF NOT EXISTS entries (
  store_id TEXT NOT NULL, pos INTEGER NOT NULL, kind TEXT NOT NULL, tag TEXT NOT NULL,
  payload TEXT NOT NULL, UNIQUE (store_id, pos));
"""
SCHEMA = (
    TABLES
    + """
CREATE INDEX IF NOT EXISTS records_store ON records (store_id, kind, live);
CREATE TABLE IF NOT EXISTS streams (
  store_id TEXT PRIMARY KEY, epoch TEXT NOT NULL, head INTEGER NOT NULL,
  first INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tallies (
  store_id TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL, marks TEXT NOT NULL,
  PRIMARY KEY (store_id, key, field)) WITHOUT ROWID;
"""
    + DENYLIST_SCHEMA
    + ";\n"
)
#: A database made before TABLES: both tables moved over in one transaction on open.
MIGRATE_KEYED_TABLES = (
    """
BEGIN IMMEDIATE;
DROP INDEX IF EXISTS records_store;
DROP INDEX IF EXISTS records_pstate;
ALTER TABLE records RENAME TO records_keyed;
ALTER TABLE entries RENAME TO entries_keyed;
"""
    + TABLES
    + """
INSERT INTO records (kind, key, store_id, version, live, doc)
  SELECT kind, key, store_id, version, live, doc FROM records_keyed;
INSERT INTO entries (store_id, pos, kind, tag, payload)
  SELECT store_id, pos, kind, tag, payload FROM entries_keyed ORDER BY store_id, pos;
DROP TABLE records_keyed;
DROP TABLE entries_keyed;
COMMIT;
"""
)


@dataclass(slots=True)
class _Head:
    epoch: str
    head: int
    first: int


@dataclass(slots=True)
class _Request:
    store_id: str
    tx: Tx
    future: asyncio.Future[Committed]
    due: float  # loop time after which its caller gets "timed out" (``_overdue``)


#: A record row as the group writes it: kind, key, store_id, version, live, doc.
_Row = tuple[str, str, str, int, int, str]


@dataclass(slots=True)
class _Outcome:
    request: _Request
    result: Committed | BaseException
    entries: list[Entry]
    first: int = 1


class SqliteStorage(InProcess):
    def __init__(
        self,
        path: str | Path,
        stream_max_len: int = DEFAULT_STREAM_MAX_LEN,
        synchronous: str = "full",
        group_wait_s: float = GROUP_WAIT_S,
    ) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
        self._path = str(path)
        self._max_len = stream_max_len
        self._sync = synchronous
        self._gathering = Gathering(group_wait_s)
        self._pending: deque[_Request] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._heads: dict[str, _Head] = {}  # committed heads, as readers may see them
        self._writer_heads: dict[str, _Head] = {}  # including the group being written
        self._recent = _Recent(RECENT)
        self._listener: Listener | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._writing: list[_Request] = []  # the group being written
        self._closed = False
        self.denylist: DenyList = (
            MemoryDenyList() if self._path == ":memory:" else SqliteDenyList(self._path)
        )
        self.outbox: Outbox = SqliteOutbox(self._path, synchronous)
        self.group_sizes: list[int] = []  # recent group commit sizes, for tests
        self.stats = {
            "groups": 0.0,
            "commits": 0.0,
            "busy_s": 0.0,
            "sync_s": 0.0,
            "checkpoint_s": 0.0,
            "wal_pending": 0.0,
        }

    async def start(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        _migrate_keyed_tables(self._writer)
        self._writer.executescript(SCHEMA)
        _add_printer_state_index(self._writer)
        rows = self._writer.execute("SELECT store_id, epoch, head, first FROM streams").fetchall()
        self._heads = {r[0]: _Head(r[1], r[2], r[3]) for r in rows}
        self._writer_heads = {k: _Head(h.epoch, h.head, h.first) for k, h in self._heads.items()}
        self._writer.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoints
        self._reader = self._connect()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="sqlite-writer")
        self._checkpointer = loop.create_task(self._checkpoints(), name="sqlite-checkpoint")
        self._watchdog = loop.create_task(self._overdue(), name="sqlite-overdue")

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync.upper()}")
            conn.execute("PRAGMA busy_timeout=5000")
            # Reads run on the event loop: keep the hot pages in this process, not behind
            # a read() that may wait for a busy disk.
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open sqlite database {self._path}: {exc}") from None
        return conn

    # -- Storage -------------------------------------------------------------------------
    async def commit(self, store_id: str, tx: Tx) -> Committed:
        self._check_open()
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        due = future.get_loop().time() + COMMIT_TIMEOUT_S
        self._pending.append(_Request(store_id, tx, future, due))
        self._wake.set()
        return await future  # cancelling the caller does not stop the commit

    async def get(self, kind: Kind, key: str, store_id: str | None = None) -> Record | None:
        self._check_open()
        known = self._recent.get((kind.value, key))
        if known is not None:
            return of_store(known, store_id)
        row = self._read_rows(
            "SELECT kind, key, store_id, version, doc, live FROM records WHERE kind=? AND key=?",
            (kind.value, key),
        )
        return of_store(_record(row[0]), store_id) if row else None

    async def scan(self, store_id: str | None, kind: Kind, live_only: bool = True) -> list[Record]:
        sql = "SELECT kind, key, store_id, version, doc, live FROM records WHERE kind=?"
        args: list[object] = [kind.value]
        if store_id is not None:
            sql += " AND store_id=?"
            args.append(store_id)
        if live_only:
            sql += " AND live=1"
        return [_record(r) for r in self._read_rows(sql, tuple(args))]

    async def store_ids(self) -> list[str]:
        rows = self._read_rows(
            "SELECT key FROM records WHERE kind=? ORDER BY key", (Kind.CONFIG.value,)
        )
        return [str(r[0]) for r in rows]

    async def printer_keys_in_state(self, state: str) -> list[str] | None:
        rows = self._read_rows("SELECT key FROM records WHERE pstate=?", (state,))
        return [str(r[0]) for r in rows]

    async def read(self, store_id: str, after: int, limit: int) -> StreamSlice:
        head = self._heads.get(store_id)
        if head is None:
            return StreamSlice(UNBORN_EPOCH, 1, 0, [])
        start = max(after, head.first - 1)
        rows = self._read_rows(
            "SELECT pos, kind, payload, tag FROM entries WHERE store_id=? AND pos>? AND pos<=? "
            "ORDER BY pos LIMIT ?",
            (store_id, start, head.head, limit),
        )
        entries = [Entry(int(str(r[0])), EntryKind(str(r[1])), str(r[2]), str(r[3])) for r in rows]
        return StreamSlice(head.epoch, head.first, head.head, entries)

    async def tallies(self, store_id: str, keys: Sequence[str]) -> list[dict[str, str]]:
        found: dict[str, dict[str, str]] = {k: {} for k in keys}
        unique = list(found)
        for i in range(0, len(unique), VERSION_CHUNK):
            chunk = unique[i : i + VERSION_CHUNK]
            rows = self._read_rows(
                "SELECT key, field, marks FROM tallies WHERE store_id=? AND key IN "
                f"({','.join('?' for _ in chunk)})",
                (store_id, *chunk),
            )
            for key, name, marks in rows:
                found[str(key)][str(name)] = str(marks)
        return [dict(found[k]) for k in keys]

    async def aclose(self) -> None:
        """Finish every commit already asked for, then close."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._stop.set()
        if self._checkpointer is not None:
            await self._checkpointer  # at most one checkpoint still running
        if self._task is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._task
            except TimeoutError:
                log.error("sqlite writer did not finish in %.0fs", CLOSE_TIMEOUT_S)
                self._task.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        await self.denylist.close()
        await self.outbox.close()

    # -- Wakeups -------------------------------------------------------------------------
    async def ping(self) -> None:
        self._check_open()
        self._read_rows("SELECT 1", ())
        if self._task is None or self._task.done():
            raise StorageError("sqlite writer is not running")

    # -- reads -----------------------------------------------------------------------------
    def _read_rows(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        self._check_open()
        assert self._reader is not None
        try:
            return self._reader.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("storage is closed")

    async def _checkpoints(self) -> None:
        """Copy the WAL into the database in the background, off the commit path.

        SQLite's automatic checkpoint runs inside a COMMIT: with synchronous=FULL it writes
        and fsyncs the database file while every waiting commit waits too (seconds-long
        stalls were measured with 10k stores). A PASSIVE checkpoint on its own connection,
        in a thread, never blocks the writer.
        """
        conn = self._connect()
        try:
            while not self._closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CHECKPOINT_EVERY_S):
                        await self._stop.wait()
                t0 = time.perf_counter()
                try:
                    row = await asyncio.to_thread(self._checkpoint, conn)
                except sqlite3.Error as exc:
                    log.warning("sqlite checkpoint failed: %s", exc)
                    continue
                self.stats["checkpoint_s"] += time.perf_counter() - t0
                self.stats["wal_pending"] = float(max(0, row[1] - row[2])) if row else 0.0
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int] | None:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row else None

    # -- the writer task -------------------------------------------------------------------
    async def _run(self) -> None:
        """Group commit. Under load (the previous group began less than ``BUSY_GAP_S``
        ago) a group first gathers for ``group_wait_s``: a group costs the loop about half
        a millisecond whatever its size (the statements, the thread hop for COMMIT, the
        wake-ups), and at a few hundred orders a second groups of one or two were the
        rule. A lone commit after a quiet spell is written at once."""
        assert self._writer is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._gathering.pause(self._closed)
                batch = [self._pending.popleft() for _ in range(min(MAX_GROUP, len(self._pending)))]
                await self._group(batch)
            if self._closed and not self._pending:
                return

    async def _overdue(self) -> None:
        """A commit not written within ``COMMIT_TIMEOUT_S`` (a disk that stopped
        answering) gets ``StorageError`` (it may still be written later). One check a
        second for every waiting commit, instead of a timer per commit."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(OVERDUE_CHECK_S)
            now = loop.time()
            for req in (*self._writing, *self._pending):
                if req.due <= now and not req.future.done():
                    req.future.set_exception(StorageError("sqlite commit timed out"))

    async def _group(self, batch: list[_Request]) -> None:
        assert self._writer is not None
        self._writing = batch
        t0 = time.perf_counter()
        group = _GroupCommit(self._writer, self._writer_heads, self._max_len, self._recent)
        outcomes = group.write(batch)
        t1 = time.perf_counter()
        if group.open:
            try:
                if self._sync == "normal":  # no fsync at COMMIT in WAL mode: microseconds
                    self._writer.execute("COMMIT")
                else:  # fsync happens here: in a thread, so the loop goes on meanwhile
                    await asyncio.to_thread(self._writer.execute, "COMMIT")
            except sqlite3.Error as exc:
                outcomes = group.failed(batch, exc)
        self.group_sizes = [*self.group_sizes[-63:], len(batch)]
        t2 = time.perf_counter()
        self._count(len(batch), t2 - t0, t2 - t1)
        self._writing = []
        self._deliver(outcomes)

    def _count(self, size: int, busy: float, sync: float) -> None:
        st = self.stats
        st["groups"] += 1
        st["commits"] += size
        st["busy_s"] += busy
        st["sync_s"] += sync

    def _deliver(self, outcomes: list[_Outcome]) -> None:
        """In commit order: heads, listener, then the waiting callers."""
        for out in outcomes:
            req, result = out.request, out.result
            if isinstance(result, Committed):
                self._heads[req.store_id] = _Head(result.epoch, result.head, out.first)
                self._recent.committed(req.store_id, req.tx.puts)
                notify(self._listener, req.store_id, result, out.entries)
            settle(req.future, result)


class _Recent:
    """The last ``size`` records committed, as committed: point reads and the group
    commit's version checks find them without a query. Exact, not a guess: this
    connection is the database's only writer and records are never deleted, so what
    was last committed is what the table holds (and a rolled-back group adds nothing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        # (kind, key) -> (store, the put): a Record is built only for a read. (An
        # OrderedDict: a plain dict's oldest key is found by scanning the slots freed
        # before it, 2.5 against 0.6 us per eviction.)
        self.puts: OrderedDict[tuple[str, str], tuple[str, Put]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> Record | None:
        known = self.puts.get(key)
        if known is None:
            return None
        store_id, p = known
        return Record(p.kind, p.key, store_id, p.version, p.doc, p.live)

    def stored(self, key: tuple[str, str]) -> tuple[int, str, bool] | None:
        """(version, store, live) of a recent record."""
        known = self.puts.get(key)
        return None if known is None else (known[1].version, known[0], known[1].live)

    def committed(self, store_id: str, puts: Sequence[Put]) -> None:
        known = self.puts
        for p in puts:
            k = (p.kind.value, p.key)
            known.pop(k, None)
            known[k] = (store_id, p)
        while len(known) > self.size:
            known.popitem(last=False)


class _GroupCommit:
    """One transaction for a batch of requests: every request's versions are checked
    against the database and the requests before it, then the whole group is written
    with a handful of statements (one per table), whatever its size. A request whose
    versions do not match is skipped; the rest of the group goes on."""

    def __init__(
        self, conn: sqlite3.Connection, heads: dict[str, _Head], max_len: int, recent: _Recent
    ) -> None:
        self.conn = conn
        self.heads = heads
        self.max_len = max_len
        self.recent = recent
        self.saved: dict[str, _Head | None] = {}  # heads before this transaction
        # (store, live) of each record the group puts, as it stands before the group
        self.stored: dict[tuple[str, str], tuple[str, bool]] = {}
        self.open = False

    def write(self, batch: Sequence[_Request]) -> list[_Outcome]:
        """BEGIN and the group's statements; the caller COMMITs (``open`` is then True)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.open = True
            versions = self._versions(batch)
            records: list[_Row] = []
            entries: list[tuple[object, ...]] = []
            tallies: list[tuple[object, ...]] = []
            outcomes = [self._one(req, versions, records, entries, tallies) for req in batch]
            self._flush(records, entries, tallies)
            return outcomes
        except sqlite3.Error as exc:
            return self.failed(batch, exc)

    def failed(self, batch: Sequence[_Request], exc: sqlite3.Error) -> list[_Outcome]:
        """Roll the whole group back: every request gets ``StorageError``."""
        log.error("sqlite group commit of %d failed: %s", len(batch), exc)
        if self.open:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
        self.open = False
        for store_id, old in self.saved.items():
            if old is None:
                self.heads.pop(store_id, None)
            else:
                self.heads[store_id] = old
        error = StorageError(f"sqlite commit failed: {exc}")
        return [_Outcome(req, error, []) for req in batch]

    def _versions(self, batch: Sequence[_Request]) -> dict[tuple[str, str], int]:
        """The stored version of every record the group puts (absent: not in the dict);
        a record committed lately is not read again (an ack's job record). Also fills
        ``stored``."""
        found: dict[tuple[str, str], int] = {}
        stored = self.stored
        keys = []
        for k in {(p.kind.value, p.key) for req in batch for p in req.tx.puts}:
            known = self.recent.stored(k)
            if known is None:
                keys.append(k)
            else:
                found[k], store_id, live = known
                stored[k] = (store_id, live)
        for i in range(0, len(keys), VERSION_CHUNK):
            chunk = keys[i : i + VERSION_CHUNK]
            values = ",".join("(?,?)" for _ in chunk)
            rows = self.conn.execute(  # a join on the primary key (row-value IN would scan)
                f"SELECT r.kind, r.key, r.version, r.store_id, r.live FROM (VALUES {values}) v "
                "JOIN records r ON r.kind = v.column1 AND r.key = v.column2",
                [x for k in chunk for x in k],
            ).fetchall()
            for r in rows:
                k = (str(r[0]), str(r[1]))
                found[k] = int(r[2])
                stored[k] = (str(r[3]), bool(r[4]))
        return found

    def _one(
        self,
        req: _Request,
        versions: dict[tuple[str, str], int],
        records: list[_Row],
        rows: list[tuple[object, ...]],
        tallies: list[tuple[object, ...]],
    ) -> _Outcome:
        store_id, tx = req.store_id, req.tx
        for put in tx.puts:  # all checked before any is taken: a conflict writes nothing
            actual = versions.get((put.kind.value, put.key), 0)
            if actual != put.expect:
                return _Outcome(
                    req, VersionConflict(put.kind.value, put.key, put.expect, actual), []
                )
        for p in tx.puts:
            versions[(p.kind.value, p.key)] = p.version
            records.append((p.kind.value, p.key, store_id, p.version, int(p.live), p.doc))
        tallies.extend((store_id, t.key, t.field, t.mark) for t in tx.tallies)
        head = self.heads.get(store_id)
        if store_id not in self.saved:
            self.saved[store_id] = _Head(head.epoch, head.head, head.first) if head else None
        if head is None:
            head = self.heads[store_id] = _Head(new_epoch(), 0, 1)
        if not tx.entries:
            return _Outcome(req, Committed(head.epoch, head.head, ()), [], head.first)
        entries = [
            Entry(head.head + i + 1, n.kind, n.payload, n.tag) for i, n in enumerate(tx.entries)
        ]
        rows.extend((store_id, e.offset, e.kind.value, e.tag, e.payload) for e in entries)
        head.head = entries[-1].offset
        if head.head - head.first + 1 > self.max_len + max(16, self.max_len // 10):
            head.first = head.head - self.max_len + 1
        offsets = tuple(e.offset for e in entries)
        return _Outcome(req, Committed(head.epoch, head.head, offsets), entries, head.first)

    def _flush(
        self,
        records: list[_Row],
        entries: list[tuple[object, ...]],
        tallies: list[tuple[object, ...]],
    ) -> None:
        """The group's rows, in request order (a record put twice: the later one stays;
        a tally field appended to twice: it gets both marks).

        Only what changed is written. A record whose store and liveness stay as they were
        (an ack's job, a ticket's next state) gets its version and document and nothing
        else: an upsert that sets the indexed columns deletes and re-inserts their index
        entries even when the values are the same, which dirties a page of
        ``records_store`` per record, written to the WAL and again by the checkpoint (at
        500 orders/s: 98 KiB written per order before, 86 after). A stream whose head
        and first offset stay (a commit without entries) is not updated either (SQLite
        would not rewrite the unchanged row's page, but the statement is work)."""
        many = self.conn.executemany
        if tallies:  # (most groups have none: submits and acks)
            many(
                "INSERT INTO tallies (store_id, key, field, marks) VALUES (?,?,?,?) "
                "ON CONFLICT (store_id, key, field) DO UPDATE SET marks = marks || excluded.marks",
                tallies,
            )
        last: dict[tuple[str, str], _Row] = {}
        for row in records:
            last[(row[0], row[1])] = row
        same, other = [], []
        for key, row in last.items():
            if self.stored.get(key) == (row[2], bool(row[4])):
                same.append((row[3], row[5], row[0], row[1]))
            else:
                other.append(row)
        many("UPDATE records SET version=?, doc=? WHERE kind=? AND key=?", same)
        many(
            "INSERT INTO records (kind, key, store_id, version, live, doc) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (kind, key) DO UPDATE SET store_id=excluded.store_id, "
            "version=excluded.version, live=excluded.live, doc=excluded.doc",
            other,
        )
        many("INSERT INTO entries (store_id, pos, kind, tag, payload) VALUES (?,?,?,?,?)", entries)
        born = [sid for sid, old in self.saved.items() if old is None]
        many(
            "INSERT INTO streams VALUES (?,?,?,?)",
            [(sid, self.heads[sid].epoch, 0, 1) for sid in born],
        )
        moved = [(sid, self.heads[sid], old) for sid, old in self.saved.items()]
        many(
            "DELETE FROM entries WHERE store_id=? AND pos<?",
            [(sid, h.first) for sid, h, old in moved if h.first > (old.first if old else 1)],
        )
        many(
            "UPDATE streams SET head=?, first=? WHERE store_id=?",
            [
                (h.head, h.first, sid)
                for sid, h, old in moved
                if old is None or (h.head, h.first) != (old.head, old.first)
            ],
        )


def _migrate_keyed_tables(conn: sqlite3.Connection) -> None:
    """Move a database whose records and entries are WITHOUT ROWID tables (before
    ``TABLES``) to the rowid tables; nothing to do for a new or already moved one."""
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name IN ('records', 'entries')"
    ).fetchall()
    if any("WITHOUT ROWID" in str(r[0]).upper() for r in rows):
        log.info("sqlite: moving records and entries to rowid tables (once)")
        conn.executescript(MIGRATE_KEYED_TABLES)


def _add_printer_state_index(conn: sqlite3.Connection) -> None:
    """Printer records by state, so "which printers are in error" reads those rows only:
    a generated column (computed from the record, never written) and a partial index on
    it; added to a database made before it, too."""
    columns = {str(r[1]) for r in conn.execute("PRAGMA table_xinfo(records)")}
    if "pstate" not in columns:
        conn.execute(
            "ALTER TABLE records ADD COLUMN pstate TEXT GENERATED ALWAYS AS "
            f"(CASE WHEN kind='{Kind.PRINTER.value}' THEN json_extract(doc, '$.status.state') END) "
            "VIRTUAL"
        )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS records_pstate ON records (pstate) WHERE pstate IS NOT NULL"
    )


def _record(row: tuple[object, ...]) -> Record:
    kind, key, store_id, version, doc, live = row
    return Record(Kind(str(kind)), str(key), str(store_id), int(str(version)), str(doc), bool(live))
