"""The storage interface, for every backend (DESIGN.md §5.5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from broker.errors import VersionConflict
from broker.storage import (
    Backend,
    Entry,
    EntryKind,
    Kind,
    NewEntry,
    Put,
    SqliteStorage,
    Tx,
    open_storage,
)
from tests.broker.conftest import STORAGES, storage_url


@pytest.fixture(params=STORAGES)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = await open_storage(storage_url(request.param, tmp_path), stream_max_len=50)
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
    assert await backend.scan("s1", Kind.ORDER) == []
    assert [r.key for r in await backend.scan("s1", Kind.ORDER, live_only=False)] == ["o1"]
    assert [r.key for r in await backend.scan(None, Kind.ORDER, live_only=False)] == ["o1"]
    assert seen == [("s1", 2, [1, 2]), ("s1", 3, [3])]


async def test_read_and_trim(backend: Backend) -> None:
    for i in range(120):
        await backend.commit("s1", Tx([], [entry(i)]))
    got = await backend.read("s1", 100, 5)
    assert [e.offset for e in got.entries] == [101, 102, 103, 104, 105] and got.head == 120
    assert got.first > 1 and got.first <= 120 - 50 + 1  # history beyond max_len is trimmed
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
