"""``memory://``: the whole backend in dicts. Tests and throwaway runs; a restart loses all.

Each commit runs without an ``await``, so it is atomic on the event loop.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from broker.errors import StorageError, VersionConflict
from broker.storage.base import (
    DEFAULT_STREAM_MAX_LEN,
    Committed,
    Entry,
    InProcess,
    Kind,
    Listener,
    Record,
    StreamSlice,
    Tx,
    notify,
    of_store,
)
from broker.storage.denylist import DenyList, MemoryDenyList
from broker.storage.outbox import Outbox, SqliteOutbox


def new_epoch() -> str:
    return secrets.token_hex(8)


@dataclass(slots=True)
class _Stream:
    epoch: str
    head: int = 0
    entries: deque[Entry] = field(default_factory=deque)

    @property
    def first(self) -> int:
        return self.entries[0].offset if self.entries else self.head + 1


def slice_of(entries: Sequence[Entry], after: int, limit: int) -> list[Entry]:
    """Entries with offset > ``after`` from an offset-ordered, gap-free sequence."""
    if not entries:
        return []
    start = max(0, after + 1 - entries[0].offset)
    if isinstance(entries, deque):
        return [entries[i] for i in range(start, min(len(entries), start + limit))]
    return list(entries[start : start + limit])


class MemoryStorage(InProcess):
    def __init__(self, stream_max_len: int = DEFAULT_STREAM_MAX_LEN) -> None:
        self._max_len = stream_max_len
        self._records: dict[tuple[Kind, str], Record] = {}
        self._by_store: dict[tuple[str, Kind], dict[str, None]] = {}
        self._live: dict[tuple[str, Kind], dict[str, None]] = {}
        self._streams: dict[str, _Stream] = {}
        self._tallies: dict[tuple[str, str], dict[str, str]] = {}
        self._listener: Listener | None = None
        self._closed = False
        self.denylist: DenyList = MemoryDenyList()
        self.outbox: Outbox = SqliteOutbox(":memory:")

    # -- Storage -------------------------------------------------------------------------
    async def commit(self, store_id: str, tx: Tx) -> Committed:
        self._check_open()
        for put in tx.puts:
            current = self._records.get((put.kind, put.key))
            actual = current.version if current is not None else 0
            if actual != put.expect:
                raise VersionConflict(put.kind.value, put.key, put.expect, actual)
        for put in tx.puts:
            self._put(store_id, Record(put.kind, put.key, store_id, put.version, put.doc, put.live))
        for t in tx.tallies:
            fields = self._tallies.setdefault((store_id, t.key), {})
            fields[t.field] = fields.get(t.field, "") + t.mark
        stream = self._stream(store_id)
        added = []
        for new in tx.entries:
            stream.head += 1
            entry = Entry(stream.head, new.kind, new.payload, new.tag)
            stream.entries.append(entry)
            added.append(entry)
        while len(stream.entries) > self._max_len:
            stream.entries.popleft()
        committed = Committed(stream.epoch, stream.head, tuple(e.offset for e in added))
        notify(self._listener, store_id, committed, added)
        return committed

    async def get(self, kind: Kind, key: str, store_id: str | None = None) -> Record | None:
        self._check_open()
        return of_store(self._records.get((kind, key)), store_id)

    async def scan(self, store_id: str | None, kind: Kind, live_only: bool = True) -> list[Record]:
        self._check_open()
        index = self._live if live_only else self._by_store
        if store_id is None:
            keys = [k for (_, k2), ks in index.items() if k2 == kind for k in ks]
        else:
            keys = list(index.get((store_id, kind), ()))
        return [self._records[(kind, k)] for k in keys]

    async def store_ids(self) -> list[str]:
        self._check_open()
        return sorted(sid for sid, kind in self._by_store if kind is Kind.CONFIG)

    async def read(self, store_id: str, after: int, limit: int) -> StreamSlice:
        self._check_open()
        stream = self._stream(store_id)
        return StreamSlice(
            stream.epoch, stream.first, stream.head, slice_of(stream.entries, after, limit)
        )

    async def tallies(self, store_id: str, keys: Sequence[str]) -> list[dict[str, str]]:
        self._check_open()
        return [dict(self._tallies.get((store_id, k), {})) for k in keys]

    async def aclose(self) -> None:
        self._closed = True
        await self.outbox.close()

    # -- Wakeups -------------------------------------------------------------------------
    async def ping(self) -> None:
        self._check_open()

    # -- helpers -------------------------------------------------------------------------
    def _put(self, store_id: str, record: Record) -> None:
        self._records[(record.kind, record.key)] = record
        self._by_store.setdefault((store_id, record.kind), {})[record.key] = None
        live = self._live.setdefault((store_id, record.kind), {})
        if record.live:
            live[record.key] = None
        else:
            live.pop(record.key, None)

    def _stream(self, store_id: str) -> _Stream:
        stream = self._streams.get(store_id)
        if stream is None:
            stream = self._streams[store_id] = _Stream(new_epoch())
        return stream

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("storage is closed")
