"""Storage backends behind one interface (DESIGN.md §5.5): ``memory://``, ``sqlite:///path``.

``open_storage(url)`` is the only place that knows the URL schemes; a later ``redis://``
backend plugs in here.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from broker.errors import ConfigError
from broker.storage.base import (
    DEFAULT_STREAM_MAX_LEN,
    Backend,
    Committed,
    Entry,
    EntryKind,
    Kind,
    NewEntry,
    Put,
    Record,
    Storage,
    StreamSlice,
    Tx,
    Wakeups,
)
from broker.storage.memory import MemoryStorage
from broker.storage.sqlite import SqliteStorage

__all__ = [
    "Backend",
    "Committed",
    "Entry",
    "EntryKind",
    "Kind",
    "MemoryStorage",
    "NewEntry",
    "Put",
    "Record",
    "SqliteStorage",
    "Storage",
    "StreamSlice",
    "Tx",
    "Wakeups",
    "open_storage",
]


async def open_storage(url: str, stream_max_len: int = DEFAULT_STREAM_MAX_LEN) -> Backend:
    """A started backend for ``url``; ``ConfigError`` names what is wrong with it."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "memory":
        return MemoryStorage(stream_max_len)
    if parts.scheme == "sqlite":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise ConfigError(f"expected sqlite:///path/to/file.db, got {url!r}")
        try:
            store = SqliteStorage(path, stream_max_len, query.get("synchronous", "full").lower())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        await store.start()
        return store
    if parts.scheme == "redis":
        raise ConfigError("the redis:// backend is not built yet; use sqlite:///path or memory://")
    raise ConfigError(f"unknown storage URL {url!r}: expected sqlite:///path or memory://")
