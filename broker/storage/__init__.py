"""Storage backends behind one interface (DESIGN.md §5.5): ``memory://``,
``sqlite:///path`` and ``redis://host:port/db``.

``open_storage(url)`` is the only place that knows the URL schemes.
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
    if parts.scheme in ("redis", "rediss", "unix"):
        return await _open_redis(url, parts.query, query, stream_max_len)
    raise ConfigError(
        f"unknown storage URL {url!r}: expected sqlite:///path, redis://host:port/db or memory://"
    )


REDIS_OPTIONS = {"prefix": str, "record_ttl_s": int, "max_connections": int}


async def _open_redis(
    url: str, raw_query: str, query: dict[str, str], stream_max_len: int
) -> Backend:
    from broker.storage.redis import RedisStorage  # redis-py only where it is used

    ours = {k: v for k, v in query.items() if k in REDIS_OPTIONS}
    kwargs: dict[str, object] = {}
    for name, value in ours.items():
        try:
            kwargs[name] = REDIS_OPTIONS[name](value)
        except ValueError:
            raise ConfigError(f"redis URL option {name} must be a number, got {value!r}") from None
    prefix = kwargs.get("prefix", "passline")
    if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "{}: "):
        raise ConfigError(f"redis URL option prefix must be a plain word, got {prefix!r}")
    rest = "&".join(p for p in raw_query.split("&") if p and p.split("=", 1)[0] not in ours)
    base = url.split("?", 1)[0] + ("?" + rest if rest else "")
    store = RedisStorage(base, stream_max_len, **kwargs)  # type: ignore[arg-type]
    await store.start()
    return store
