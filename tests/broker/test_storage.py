"""The storage interface, for every backend (DESIGN.md §5.5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from broker.errors import ConfigError, StorageError, VersionConflict
from broker.storage import (
    Backend,
    Entry,
    EntryKind,
    Kind,
    NewEntry,
    Put,
    SqliteStorage,
    Tally,
    Tx,
    open_storage,
)
from tests.broker.conftest import STORAGES, storage_url


@pytest.fixture(params=STORAGES)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    b = await open_storage(storage_url(request.param, tmp_path, redis), stream_max_len=50)
    yield b
    await b.aclose()


def entry(n: int) -> NewEntry:
    return NewEntry(EntryKind.JOB, f'{{"n":{n}}}', f"j{n}")


async def test_commit_is_atomic_with_versions(backend: Backend) -> None:
    seen: list[tuple[str, int, list[int]]] = []

    def listener(store: str, epoch: str, head: int, entries: Sequence[Entry]) -> None:
        seen.append((store, head, [e.offset for e in entries]))

    backend.listen(listener)
    c = await backend.commit("s1", Tx([Put(Kind.ORDER, "o1", "{}", 1, 0)], [entry(1), entry(2)]))
    assert c.offsets == (1, 2) and c.head == 2
    with pytest.raises(VersionConflict):  # second put conflicts: nothing of this tx lands
        await backend.commit(
            "s1",
            Tx([Put(Kind.ORDER, "o2", "{}", 1, 0), Put(Kind.ORDER, "o1", "{}", 1, 0)], [entry(3)]),
        )
    assert await backend.get(Kind.ORDER, "o2") is None
    assert (await backend.read("s1", 0, 10)).head == 2
    await backend.commit("s1", Tx([Put(Kind.ORDER, "o1", '{"v":2}', 2, 1, live=False)], [entry(3)]))
    rec = await backend.get(Kind.ORDER, "o1")
    assert rec is not None and rec.version == 2 and rec.doc == '{"v":2}' and rec.store_id == "s1"
    assert seen == [("s1", 2, [1, 2]), ("s1", 3, [3])]


async def test_tally_marks_land_with_their_commit_and_only_with_it(backend: Backend) -> None:
    """Marks a commit appends to a tally (docs/reports.md): appended with the Tx, per
    store, not at all when the Tx conflicts; two commits in one group both count."""
    await backend.commit(
        "s1", Tx([Put(Kind.TICKET, "t1", "{}", 1, 0)], tallies=[Tally("d", "a", "1,")])
    )
    await asyncio.gather(  # likely one group commit (sqlite) or one pipeline (redis)
        backend.commit("s1", Tx(tallies=[Tally("d", "a", "2,"), Tally("d", "b", "9,")])),
        backend.commit("s1", Tx(tallies=[Tally("d", "a", "3+,")])),
        backend.commit("s2", Tx(tallies=[Tally("d", "a", "100,")])),
    )
    with pytest.raises(VersionConflict):
        await backend.commit(
            "s1", Tx([Put(Kind.TICKET, "t1", "{}", 1, 0)], tallies=[Tally("d", "a", "1000,")])
        )
    got = await backend.tallies("s1", ["d", "none", "d"])
    assert sorted(got[0]["a"].split(",")) == ["", "1", "2", "3+"] and got[0]["b"] == "9,"
    assert got[1] == {} and got[2] == got[0]
    assert await backend.tallies("s2", ["d"]) == [{"a": "100,"}]
    assert await backend.tallies("s1", []) == []


async def test_scan_live_and_fleet_records(backend: Backend) -> None:
    two = [Put(Kind.TICKET, "t1", "{}", 1, 0), Put(Kind.TICKET, "t2", "{}", 1, 0)]
    await backend.commit("s1", Tx(two))
    await backend.commit("s1", Tx([Put(Kind.TICKET, "t1", "{}", 2, 1, live=False)]))
    assert [r.key for r in await backend.scan("s1", Kind.TICKET)] == ["t2"]
    assert [r.key for r in await backend.scan(None, Kind.TICKET)] == ["t2"]
    assert await backend.scan("s2", Kind.TICKET) == []
    await backend.commit("s1", Tx([Put(Kind.CONFIG, "s1", "{}", 1, 0)]))
    await backend.commit("s2", Tx([Put(Kind.CONFIG, "s2", "{}", 1, 0, live=False)]))
    await backend.commit("s2", Tx([Put(Kind.PRINTER, "s2/p1", '{"p":1}', 1, 0)]))
    configs = await backend.scan(None, Kind.CONFIG, live_only=False)
    assert sorted((r.store_id, r.key) for r in configs) == [("s1", "s1"), ("s2", "s2")]
    printer = await backend.get(Kind.PRINTER, "s2/p1")
    assert printer is not None and printer.store_id == "s2" and printer.doc == '{"p":1}'


async def test_read_and_trim(backend: Backend) -> None:
    for i in range(300):  # redis trims whole nodes of 100 entries (MAXLEN ~)
        await backend.commit("s1", Tx([], [entry(i)]))
    got = await backend.read("s1", 260, 5)
    assert [e.offset for e in got.entries] == [261, 262, 263, 264, 265] and got.head == 300
    assert got.first > 1 and got.first <= 300 - 50 + 1  # history beyond max_len is trimmed
    assert (await backend.read("s1", got.first - 1, 1)).entries[0].offset == got.first
    other = await backend.read("s2", 0, 5)
    assert other.entries == [] and other.head == 0


async def test_concurrent_commits_keep_offsets_gap_free(backend: Backend) -> None:
    results = await asyncio.gather(
        *(backend.commit("s1", Tx([], [entry(i), entry(i)])) for i in range(200))
    )
    offsets = sorted(o for r in results for o in r.offsets)
    assert offsets == list(range(1, 401))
    if isinstance(backend, SqliteStorage):
        assert max(backend.group_sizes) > 1  # group commit batched them


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    b = await open_storage(url)
    c = await b.commit("s1", Tx([Put(Kind.JOB, "j", "{}", 1, 0)], [entry(1)]))
    await b.aclose()
    b = await open_storage(url)
    got = await b.read("s1", 0, 10)
    assert got.epoch == c.epoch and [e.payload for e in got.entries] == ['{"n":1}']
    assert (await b.get(Kind.JOB, "j")) is not None
    await b.aclose()


async def test_get_many_and_the_store_hint(backend: Backend) -> None:
    await backend.commit("s1", Tx([Put(Kind.JOB, "j1", '{"j":1}', 1, 0)]))
    await backend.commit("s2", Tx([Put(Kind.JOB, "j2", '{"j":2}', 1, 0)]))
    got = await backend.get_many(Kind.JOB, ["j1", "nope", "j2"])
    assert [r.doc if r else None for r in got] == ['{"j":1}', None, '{"j":2}']
    hinted = await backend.get_many(Kind.JOB, ["j1", "j2"], "s1")
    assert [r.store_id if r else None for r in hinted] == ["s1", None]  # j2 is another store's
    assert await backend.get(Kind.JOB, "j2", "s2") is not None
    assert await backend.get(Kind.JOB, "j2", "s1") is None
    assert await backend.get_many(Kind.JOB, []) == []


async def test_one_group_checks_each_commit_against_those_before_it(backend: Backend) -> None:
    """Commits sent together (one group commit in sqlite, one pipeline in redis) are
    checked in order: a later one sees what an earlier one of the same group wrote."""
    o = Kind.ORDER
    results = await asyncio.gather(
        backend.commit("s1", Tx([Put(o, "o1", '{"v":1}', 1, 0)], [entry(1)])),
        backend.commit("s1", Tx([Put(o, "o1", '{"v":2}', 2, 1)], [entry(2)])),
        backend.commit("s1", Tx([Put(o, "o1", '{"dup":1}', 1, 0)], [entry(3)])),  # conflict
        backend.commit("s2", Tx([Put(o, "o2", '{"v":1}', 1, 0)], [entry(1)] * 300)),  # trims
        backend.commit("s1", Tx([Put(o, "o1", '{"v":3}', 3, 2), Put(o, "o3", "{}", 1, 0)])),
        return_exceptions=True,
    )
    assert isinstance(results[2], VersionConflict)
    assert [getattr(r, "offsets", None) for r in (results[0], results[1])] == [(1,), (2,)]
    rec = await backend.get(o, "o1")
    assert rec is not None and (rec.version, rec.doc) == (3, '{"v":3}')
    assert await backend.get(o, "o3") is not None
    s1 = await backend.read("s1", 0, 10)
    assert [e.payload for e in s1.entries] == ['{"n":1}', '{"n":2}'] and s1.head == 2
    s2 = await backend.read("s2", 0, 400)
    assert s2.head == 300 and s2.first > 1 and s2.entries[0].offset == s2.first


async def test_store_ids_list_the_configured_stores_in_order(backend: Backend) -> None:
    for sid in ("s-b", "s-c", "s-a"):
        await backend.commit(sid, Tx([Put(Kind.CONFIG, sid, "{}", 1, 0)]))
    await backend.commit("s-z", Tx([], [entry(1)]))  # a stream without a config
    ids = await backend.store_ids()
    assert [s for s in ids if s != "s-z"] == ["s-a", "s-b", "s-c"]  # redis: any store
    assert ids == sorted(ids)


async def test_sqlite_indexes_printers_by_state_in_an_older_database_too(tmp_path: Path) -> None:
    """A database made before the index gets it on open; the index follows every write."""
    import sqlite3

    from broker.storage.sqlite import SCHEMA

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)  # the schema as it was: no generated column
    doc = '{"store_id":"s1","printer_id":"p1","status":{"state":"error"}}'
    conn.execute("INSERT INTO records VALUES ('printer','s1/p1','s1',1,1,?)", (doc,))
    conn.commit()
    conn.close()
    b = await open_storage(f"sqlite:///{path}")
    assert await b.printer_keys_in_state("error") == ["s1/p1"]
    ready = doc.replace("error", "ready")
    await b.commit("s1", Tx([Put(Kind.PRINTER, "s1/p1", ready, 2, 1)]))
    assert await b.printer_keys_in_state("error") == []
    assert await b.printer_keys_in_state("ready") == ["s1/p1"]
    await b.commit("s1", Tx([Put(Kind.CONFIG, "s1", '{"status":{"state":"error"}}', 1, 0)]))
    assert await b.printer_keys_in_state("error") == []  # only printer records count
    await b.aclose()


KEYED_SCHEMA = """
CREATE TABLE records (
  kind TEXT NOT NULL, key TEXT NOT NULL, store_id TEXT NOT NULL,
  version INTEGER NOT NULL, live INTEGER NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE INDEX records_store ON records (store_id, kind, live);
CREATE TABLE streams (
  store_id TEXT PRIMARY KEY, epoch TEXT NOT NULL, head INTEGER NOT NULL,
  first INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE entries (
  store_id TEXT NOT NULL, pos INTEGER NOT NULL, kind TEXT NOT NULL, tag TEXT NOT NULL,
  payload TEXT NOT NULL, PRIMARY KEY (store_id, pos)) WITHOUT ROWID;
"""


async def test_sqlite_moves_a_database_with_keyed_tables_and_keeps_everything(
    tmp_path: Path,
) -> None:
    """A database written before records and entries became rowid tables opens with its
    records, its streams and their entries, and goes on from its head."""
    import sqlite3

    path = tmp_path / "keyed.db"
    conn = sqlite3.connect(path)
    conn.executescript(KEYED_SCHEMA)
    printer = '{"store_id":"s1","printer_id":"p1","status":{"state":"error"}}'
    conn.executemany(
        "INSERT INTO records VALUES (?,?,?,?,?,?)",
        [
            ("printer", "s1/p1", "s1", 3, 1, printer),
            ("job", "j-1", "s1", 2, 0, '{"state":"printed"}'),
        ],
    )
    conn.execute("INSERT INTO streams VALUES ('s1', 'e-old', 2, 1)")
    conn.executemany(
        "INSERT INTO entries VALUES ('s1', ?, 'job', ?, ?)",
        [(1, "j-1", '{"n":1}'), (2, "j-2", '{"n":2}')],
    )
    conn.commit()
    conn.close()

    b = await open_storage(f"sqlite:///{path}")
    job = await b.get(Kind.JOB, "j-1")
    assert job is not None and (job.version, job.live, job.doc) == (2, False, '{"state":"printed"}')
    assert [r.key for r in await b.scan("s1", Kind.PRINTER)] == ["s1/p1"]
    assert await b.printer_keys_in_state("error") == ["s1/p1"]
    got = await b.read("s1", 0, 10)
    assert (got.epoch, got.head) == ("e-old", 2)
    assert [(e.offset, e.payload) for e in got.entries] == [(1, '{"n":1}'), (2, '{"n":2}')]
    done = await b.commit("s1", Tx([Put(Kind.JOB, "j-1", '{"state":"x"}', 3, 2)], [entry(3)]))
    assert (done.epoch, done.head) == ("e-old", 3)
    with pytest.raises(VersionConflict):
        await b.commit("s1", Tx([Put(Kind.JOB, "j-1", "{}", 3, 2)]))
    await b.aclose()

    conn = sqlite3.connect(path)
    tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"))
    conn.close()
    assert "WITHOUT ROWID" not in tables["records"] and "WITHOUT ROWID" not in tables["entries"]
    assert not any(name.endswith("_keyed") for name in tables)


async def _busy_then_trickle(b: SqliteStorage, n: int) -> list[int]:
    """One commit (the writer is now "busy"), then ``n`` more arriving a loop turn apart:
    the sizes of the groups the ``n`` were written in."""
    await b.commit("s1", Tx([], [entry(0)]))
    before = len(b.group_sizes)

    async def one(i: int) -> None:
        for _ in range(i):
            await asyncio.sleep(0)
        await b.commit("s1", Tx([], [entry(i)]))

    await asyncio.gather(*(one(i) for i in range(1, n + 1)))
    return b.group_sizes[before:]


async def test_sqlite_gathers_a_group_under_load_and_writes_at_once_without(
    tmp_path: Path,
) -> None:
    """Under load the writer lets a group gather (``group_wait_ms``) instead of writing
    each commit that trickles in as a group of its own; ``group_wait_ms=0`` does not."""
    b = await open_storage(f"sqlite:///{tmp_path / 'wait.db'}?group_wait_ms=200")
    assert isinstance(b, SqliteStorage)
    assert await _busy_then_trickle(b, 10) == [10]
    await b.aclose()
    b = await open_storage(f"sqlite:///{tmp_path / 'now.db'}?group_wait_ms=0")
    assert isinstance(b, SqliteStorage)
    assert len(await _busy_then_trickle(b, 10)) > 1
    await b.aclose()


@pytest.mark.parametrize("value", ["soon", "-1", "5000"])
async def test_sqlite_group_wait_that_is_not_a_duration_is_one_clear_error(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ConfigError, match="group_wait_ms must be"):
        await open_storage(f"sqlite:///{tmp_path / 'x.db'}?group_wait_ms={value}")


async def test_sqlite_commit_that_never_finishes_times_out_and_the_next_one_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that stops answering: the waiting caller gets StorageError instead of
    waiting for ever (``COMMIT_TIMEOUT_S``, shortened here), and the storage goes on."""
    import broker.storage.sqlite as sqlite_mod

    monkeypatch.setattr(sqlite_mod, "COMMIT_TIMEOUT_S", 0.2)
    monkeypatch.setattr(sqlite_mod, "OVERDUE_CHECK_S", 0.05)
    b = await open_storage(f"sqlite:///{tmp_path / 'stuck.db'}")
    assert isinstance(b, SqliteStorage)
    stuck = asyncio.Event()
    real_group = b._group

    async def hung_group(batch: list[sqlite_mod._Request]) -> None:
        b._writing = batch
        await stuck.wait()  # the COMMIT that does not come back
        await real_group(batch)

    monkeypatch.setattr(b, "_group", hung_group)
    async with asyncio.timeout(10):  # a guard against hanging the suite, not a timing check
        with pytest.raises(StorageError, match="timed out"):
            await b.commit("s1", Tx([], [entry(1)]))
    stuck.set()  # the disk answers again: the late commit is written, the next one too
    async with asyncio.timeout(10):
        done = await b.commit("s1", Tx([], [entry(2)]))
    assert done.head == 2
    await b.aclose()


async def test_sqlite_writes_only_what_a_commit_changed(tmp_path: Path) -> None:
    """An ack's commit (a job record's next version, same store, still live, no entries)
    writes the record's page and nothing else. Setting the indexed columns to the same
    values put a page of the ``(store_id, kind, live)`` index in the WAL too (and the
    checkpoint copied it again)."""
    b = await open_storage(f"sqlite:///{tmp_path / 'pages.db'}")
    assert isinstance(b, SqliteStorage)
    doc = '{"x":"' + "a" * 1000 + '"}'
    stores = [f"s-{i:03d}" for i in range(300)]  # enough rows for several index pages
    for n, sid in enumerate(stores):
        await b.commit(sid, Tx([Put(Kind.JOB, f"j-{n}", doc, 1, 0)], [entry(n)]))
    writer = b._writer
    assert writer is not None

    async def wal_frames(sid: str, tx: Tx) -> int:
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL now holds nothing
        await b.commit(sid, tx)
        row = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1])  # frames in the WAL: this commit's pages

    ack = Tx([Put(Kind.JOB, "j-150", doc.replace("a", "b"), 2, 1)])
    assert await wal_frames("s-150", ack) == 1
    got = await b.get(Kind.JOB, "j-150")
    assert got is not None and (got.version, got.doc, got.live) == (2, doc.replace("a", "b"), True)
    # what does change is still written: liveness (its index entry moves), a new entry
    done = Tx([Put(Kind.JOB, "j-150", doc, 3, 2, live=False)], [entry(9)])
    assert await wal_frames("s-150", done) > 1
    got = await b.get(Kind.JOB, "j-150")
    assert got is not None and (got.version, got.live) == (3, False)
    assert [r.key for r in await b.scan("s-150", Kind.JOB, live_only=True)] == []
    assert (await b.read("s-150", 0, 10)).head == 2
    await b.aclose()
