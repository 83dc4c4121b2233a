"""Storage backends behind one interface (DESIGN.md §5.5): ``memory://``,
``sqlite:///path`` and ``redis://host:port/db``.

``open_storage(url)`` is the only place that knows the URL schemes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, urlsplit

from broker.errors import ConfigError
from broker.storage.base import (
    DEFAULT_STREAM_MAX_LEN,
    GROUP_WAIT_S,
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
    Tally,
    Tx,
    Wakeups,
)
from broker.storage.denylist import DenyList, SqliteDenyList
from broker.storage.memory import MemoryStorage
from broker.storage.sqlite import SqliteStorage

__all__ = [
    "Backend",
    "Committed",
    "DenyList",
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
    "Tally",
    "Tx",
    "Wakeups",
    "open_denylist",
    "open_storage",
    "safe_url",
]


async def open_storage(url: str, stream_max_len: int = DEFAULT_STREAM_MAX_LEN) -> Backend:
    """A started backend for ``url``; ``ConfigError`` names what is wrong with it."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "memory":
        return MemoryStorage(stream_max_len)
    if parts.scheme == "sqlite":
        path = _sqlite_path(url, parts)
        try:
            store = SqliteStorage(
                path,
                stream_max_len,
                query.get("synchronous", "full").lower(),
                _milliseconds(query, "group_wait_ms", GROUP_WAIT_S),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        await store.start()
        return store
    if parts.scheme in ("redis", "rediss", "unix"):
        return await _open_redis(url, parts.query, query, stream_max_len)
    raise ConfigError(
        f"unknown storage URL {url!r}: expected sqlite:///path, redis://host:port/db or memory://"
    )


def open_denylist(url: str) -> contextlib.AbstractAsyncContextManager[DenyList]:
    """The token deny-list of the storage at ``url`` without starting a backend (no writer,
    no heartbeat): ``passline token revoke`` in a process of its own. ``ConfigError`` for
    ``memory://`` (it lives in the broker's process) and a sqlite file that is not there."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = _sqlite_path(url, parts)
        if not Path(path).is_file():  # sqlite would make an empty one that no broker reads
            raise ConfigError(f"no broker database at {path}: is this the broker's store URL?")
        return _sqlite_denylist(path)
    if parts.scheme in ("redis", "rediss", "unix"):
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        base, options = _redis_options(url, parts.query, query)
        return _redis_denylist(base, str(options.get("prefix", "passline")))
    if parts.scheme == "memory":
        raise ConfigError("memory:// storage lives in the broker process: POST /v1/tokens/revoke")
    raise ConfigError(f"unknown storage URL {url!r}: expected sqlite:///path or redis://…")


@contextlib.asynccontextmanager
async def _sqlite_denylist(path: str) -> AsyncIterator[DenyList]:
    denylist = SqliteDenyList(path)
    try:
        yield denylist
    finally:
        await denylist.close()


@contextlib.asynccontextmanager
async def _redis_denylist(url: str, prefix: str) -> AsyncIterator[DenyList]:
    import redis.asyncio as aioredis

    from broker.storage.denylist import RedisDenyList

    client = aioredis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0
    )
    try:
        yield RedisDenyList(lambda: client, f"{prefix}:denied")
    finally:
        await client.aclose()


def _milliseconds(query: dict[str, str], name: str, default_s: float) -> float:
    """``?name=<ms>`` in seconds; ``ConfigError`` (one line) for anything but a number."""
    text = query.get(name)
    if text is None:
        return default_s
    try:
        ms = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of milliseconds, got {text!r}") from None
    if not 0 <= ms <= 1000:
        raise ConfigError(f"{name} must be between 0 and 1000 ms, got {text!r}")
    return ms / 1000


def _sqlite_path(url: str, parts: SplitResult) -> str:
    path = (parts.netloc + parts.path) if parts.netloc else parts.path
    if not path:
        raise ConfigError(f"expected sqlite:///path/to/file.db, got {url!r}")
    return path


REDIS_OPTIONS = {
    "prefix": str,
    "record_ttl_s": int,
    "report_ttl_s": int,
    "max_connections": int,
}


def _redis_options(
    url: str, raw_query: str, query: dict[str, str]
) -> tuple[str, dict[str, object]]:
    """The URL redis-py is given (our options taken out) and our options."""
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
    return url.split("?", 1)[0] + ("?" + rest if rest else ""), kwargs


async def _open_redis(
    url: str, raw_query: str, query: dict[str, str], stream_max_len: int
) -> Backend:
    from broker.storage.redis import RedisStorage  # redis-py only where it is used

    base, kwargs = _redis_options(url, raw_query, query)
    store = RedisStorage(base, stream_max_len, **kwargs)  # type: ignore[arg-type]
    await store.start()
    return store


def safe_url(url: str) -> str:
    """A storage URL for logs and messages, without any password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
