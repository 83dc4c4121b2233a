"""The token deny-list (DESIGN.md §8.3, §8.4): revoked token ids (``jti``) with the time
each may be forgotten (the token's ``exp``: past it the token is refused anyway), so the
list never grows for good.

One small interface, three implementations. Every broker node reads the whole list every
second (``broker.revocation``), so an entry written by any node — or by
``passline token revoke`` in another process — reaches every node within a poll:

- memory: a dict, for ``memory://`` (one process; the CLI cannot reach it);
- sqlite: a ``revoked`` table in the broker's database file. Writes use a connection of
  their own in a worker thread (they may wait for the broker's writer lock); reads are one
  primary-key range on the event loop, like the backend's other reads;
- redis: a sorted set ``P:denied`` (member jti, score: until) and a change mark
  ``P:denied:n`` that every write replaces with a random value (a counter could repeat
  after Redis lost its data), so a poll that finds the mark unchanged costs one ``GET``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

from broker.errors import StorageError

#: How long a writer waits for the broker's sqlite writer lock.
SQLITE_BUSY_S = 10.0
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS revoked ("
    "jti TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID"
)


class DenyList(Protocol):
    async def deny(self, jti: str, until: int) -> None:
        """Refuse the token ``jti`` until ``until`` (unix seconds); entries already past
        their ``until`` may be dropped meanwhile."""
        ...

    async def denied(self, now: float) -> dict[str, int]:
        """Every id on the list whose ``until`` is after ``now``, with its ``until``."""
        ...

    async def close(self) -> None: ...


class MemoryDenyList:
    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    async def deny(self, jti: str, until: int) -> None:
        now = time.time()
        self._until = {j: u for j, u in self._until.items() if u > now}
        self._until[jti] = max(until, self._until.get(jti, 0))

    async def denied(self, now: float) -> dict[str, int]:
        return {j: u for j, u in self._until.items() if u > now}

    async def close(self) -> None:
        """Nothing to release."""


class SqliteDenyList:
    def __init__(self, path: str) -> None:
        self._path = path
        self._reader: sqlite3.Connection | None = None

    async def deny(self, jti: str, until: int) -> None:
        try:
            await asyncio.to_thread(self._write, jti, until, int(time.time()))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot write the deny-list to {self._path}: {exc}") from None

    def _write(self, jti: str, until: int, now: int) -> None:
        # Autocommit statements: each takes the write lock (waiting for it) on its own;
        # the prune and the insert need not be atomic.
        connect = sqlite3.connect(self._path, timeout=SQLITE_BUSY_S, isolation_level=None)
        with contextlib.closing(connect) as conn:
            conn.execute(SQLITE_SCHEMA)
            conn.execute("DELETE FROM revoked WHERE until <= ?", (now,))
            conn.execute(
                "INSERT INTO revoked (jti, until) VALUES (?, ?) ON CONFLICT (jti) "
                "DO UPDATE SET until = max(until, excluded.until)",
                (jti, until),
            )

    async def denied(self, now: float) -> dict[str, int]:
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(self._path, isolation_level=None)
                self._reader.execute(SQLITE_SCHEMA)
            rows = self._reader.execute(
                "SELECT jti, until FROM revoked WHERE until > ?", (int(now),)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the deny-list in {self._path}: {exc}") from None
        return {str(jti): int(until) for jti, until in rows}

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class RedisDenyList:
    """On the backend's client (``client()`` raises ``StorageError`` once it is closed)."""

    def __init__(self, client: Callable[[], Any], key: str) -> None:
        from redis.exceptions import RedisError  # redis-py only where it is used

        self._errors = (RedisError, OSError)
        self._client = client
        self._key = key
        self._mark = key + ":n"
        self._seen: tuple[str | None, dict[str, int]] = ("", {})

    async def deny(self, jti: str, until: int) -> None:
        r = self._client()
        pipe = r.pipeline(transaction=False)
        pipe.zremrangebyscore(self._key, "-inf", int(time.time()))
        pipe.zadd(self._key, {jti: until}, gt=True)
        pipe.set(self._mark, secrets.token_hex(8))  # after the ZADD: a reader seeing the
        # new mark sees the entry
        try:
            await pipe.execute()
        except self._errors as exc:
            raise StorageError(f"redis deny-list write failed: {exc}") from None

    async def denied(self, now: float) -> dict[str, int]:
        r = self._client()
        try:
            mark = await r.get(self._mark)
            if mark != self._seen[0]:
                rows = await r.zrangebyscore(self._key, f"({int(now)}", "+inf", withscores=True)
                self._seen = (mark, {str(j): int(u) for j, u in rows})
        except self._errors as exc:
            raise StorageError(f"redis deny-list read failed: {exc}") from None
        return {j: u for j, u in self._seen[1].items() if u > now}

    async def close(self) -> None:
        """The client belongs to whoever passed it in."""
