"""The webhook outbox (DESIGN.md §8.4, docs/webhooks.md): subscriptions and one durable
queue of deliveries per (subscription, store), in the broker's own storage.

One small interface, two implementations (like ``denylist``):

- sqlite: tables ``webhooks`` and ``webhook_outbox`` in the broker's database file (for
  ``memory://``, an in-memory database). Every statement runs on a connection of its own
  in one worker thread: a write may wait for the broker's writer lock, never on the loop.
- redis: keys under ``P:{wh}:`` (one hash slot): ``subs`` hash (id → JSON) and ``subs:n``
  its change mark; ``d:<sub>:<event>`` a delivery (hash); ``q:<sub>:<store>`` the queue
  (list of event ids, oldest first); ``due`` sorted set of queues by when their head is
  due; ``log:<sub>`` the delivery log (event id by sequence); ``dead:<sub>`` dead-lettered
  event ids. Each change is one Lua script.

Order: only the oldest pending delivery of a queue is ever handed out (``due``), and the
dispatcher has at most one of a queue in flight, so a store's events reach a receiver in
the order they were queued. Enqueueing is idempotent on (subscription, event id) while
the delivery is kept (``retention_s`` after it was delivered or dead-lettered).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from broker.errors import StorageError

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
#: Deliveries listed by ``log`` at most (the newest).
MAX_LOG = 10_000
SQLITE_BUSY_S = 10.0


@dataclass(slots=True)
class Item:
    """One event for one subscription."""

    sub_id: str
    event_id: str
    store_id: str
    type: str
    body: str
    """The event's JSON: the exact bytes signed and sent."""
    created_at: float
    status: str = PENDING
    attempts: int = 0
    next_at: float = 0.0
    updated_at: float = 0.0
    last_error: str | None = None

    @property
    def queue(self) -> tuple[str, str]:
        return (self.sub_id, self.store_id)


class Outbox(Protocol):
    async def subscriptions(self) -> dict[str, str]:
        """Every subscription: id → JSON (with its secret)."""
        ...

    async def mark(self) -> str:
        """Changes whenever a subscription is added or deleted (by any node)."""
        ...

    async def put_subscription(self, sub_id: str, doc: str) -> None: ...

    async def delete_subscription(self, sub_id: str) -> bool:
        """Remove it and every delivery it has; False when there was none."""
        ...

    async def enqueue(self, items: Sequence[Item], now: float) -> int:
        """Queue what is not queued yet; how many were new."""
        ...

    async def due(self, now: float, limit: int, busy: set[tuple[str, str]]) -> list[Item]:
        """The oldest pending delivery of each queue whose turn has come (not ``busy``)."""
        ...

    async def finish(self, item: Item, now: float) -> None:
        """Write an attempt's outcome (``item.status``, attempts, next_at, last_error);
        a delivered or dead one leaves its queue."""
        ...

    async def log(self, sub_id: str, limit: int) -> list[Item]:
        """The subscription's deliveries, newest first."""
        ...

    async def replay(
        self, sub_id: str, since: float | None, event_ids: Sequence[str] | None, now: float
    ) -> int:
        """Queue again the dead deliveries created since ``since`` (or the named events,
        whatever their status); how many."""
        ...

    async def prune(self, before: float) -> None:
        """Forget delivered and dead deliveries last changed before ``before``."""
        ...

    async def lead(self, node: str, ttl_s: float) -> bool:
        """Whether ``node`` is (now) the one node that dispatches deliveries; a leader
        that stops renewing is replaced after ``ttl_s``."""
        ...

    async def close(self) -> None: ...


# -- sqlite ---------------------------------------------------------------------------------
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
  webhook_id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id TEXT NOT NULL, event_id TEXT NOT NULL, store_id TEXT NOT NULL,
  type TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, created_at REAL NOT NULL,
  updated_at REAL NOT NULL, last_error TEXT, UNIQUE (webhook_id, event_id));
CREATE INDEX IF NOT EXISTS webhook_queues ON webhook_outbox (status, webhook_id, store_id, seq);
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_outbox (status, next_at);
CREATE TABLE IF NOT EXISTS webhook_mark (k INTEGER PRIMARY KEY, n INTEGER NOT NULL);
"""
_COLUMNS = (
    "webhook_id, event_id, store_id, type, body, created_at, status, attempts, next_at, "
    "updated_at, last_error"
)


def _item(row: Sequence[Any]) -> Item:
    return Item(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        float(row[5]),
        str(row[6]),
        int(row[7]),
        float(row[8]),
        float(row[9]),
        row[10],
    )


class SqliteOutbox:
    """``path`` is the broker's database file, or ``:memory:``."""

    def __init__(self, path: str, synchronous: str = "full") -> None:
        self._path = path
        self._sync = synchronous
        self._conn: sqlite3.Connection | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")

    async def _run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def call() -> Any:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self._path, timeout=SQLITE_BUSY_S, isolation_level=None, check_same_thread=False
                )
                if self._path != ":memory:":
                    self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA synchronous={self._sync.upper()}")
                self._conn.executescript(SQLITE_SCHEMA)
            return fn(self._conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except sqlite3.Error as exc:
            raise StorageError(f"webhook outbox in {self._path}: {exc}") from None

    @staticmethod
    def _tx(conn: sqlite3.Connection, fn: Callable[[], Any]) -> Any:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return out

    async def subscriptions(self) -> dict[str, str]:
        sql = "SELECT webhook_id, doc FROM webhooks"
        rows = await self._run(lambda c: c.execute(sql).fetchall())
        return {str(r[0]): str(r[1]) for r in rows}

    async def mark(self) -> str:
        row = await self._run(lambda c: c.execute("SELECT n FROM webhook_mark").fetchone())
        return str(row[0]) if row else "0"

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO webhook_mark (k, n) VALUES (0, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1"
        )

    async def put_subscription(self, sub_id: str, doc: str) -> None:
        def put(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO webhooks VALUES (?, ?)", (sub_id, doc))
            self._bump(c)

        await self._run(lambda c: self._tx(c, lambda: put(c)))

    async def delete_subscription(self, sub_id: str) -> bool:
        def delete(c: sqlite3.Connection) -> bool:
            n = c.execute("DELETE FROM webhooks WHERE webhook_id=?", (sub_id,)).rowcount
            c.execute("DELETE FROM webhook_outbox WHERE webhook_id=?", (sub_id,))
            self._bump(c)
            return bool(n)

        return bool(await self._run(lambda c: self._tx(c, lambda: delete(c))))

    async def enqueue(self, items: Sequence[Item], now: float) -> int:
        rows = [
            (i.sub_id, i.event_id, i.store_id, i.type, i.body, i.created_at, PENDING, now, now)
            for i in items
        ]

        def insert(c: sqlite3.Connection) -> int:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO webhook_outbox (webhook_id, event_id, store_id, type, "
                "body, created_at, status, next_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            return c.total_changes - before

        return int(await self._run(lambda c: self._tx(c, lambda: insert(c))))

    async def due(self, now: float, limit: int, busy: set[tuple[str, str]]) -> list[Item]:
        sql = (
            f"SELECT {_COLUMNS} FROM webhook_outbox d WHERE d.status='pending' AND d.next_at<=? "
            "AND d.seq = (SELECT min(seq) FROM webhook_outbox e WHERE e.status='pending' "
            "AND e.webhook_id=d.webhook_id AND e.store_id=d.store_id) ORDER BY d.next_at LIMIT ?"
        )
        rows = await self._run(lambda c: c.execute(sql, (now, limit + len(busy))).fetchall())
        items = [_item(r) for r in rows]
        return [i for i in items if i.queue not in busy][:limit]

    async def finish(self, item: Item, now: float) -> None:
        args = (item.status, item.attempts, item.next_at, now, item.last_error)
        await self._run(
            lambda c: c.execute(
                "UPDATE webhook_outbox SET status=?, attempts=?, next_at=?, updated_at=?, "
                "last_error=? WHERE webhook_id=? AND event_id=?",
                (*args, item.sub_id, item.event_id),
            )
        )

    async def log(self, sub_id: str, limit: int) -> list[Item]:
        sql = f"SELECT {_COLUMNS} FROM webhook_outbox WHERE webhook_id=? ORDER BY seq DESC LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, (sub_id, min(limit, MAX_LOG))).fetchall())
        return [_item(r) for r in rows]

    async def replay(
        self, sub_id: str, since: float | None, event_ids: Sequence[str] | None, now: float
    ) -> int:
        args: list[object]
        if event_ids is not None:
            marks = ",".join("?" for _ in event_ids)
            where, args = f"event_id IN ({marks})", list(event_ids)
        else:
            where, args = "status='dead' AND created_at>=?", [since or 0.0]
        sql = (
            "UPDATE webhook_outbox SET status='pending', attempts=0, next_at=?, updated_at=?, "
            f"last_error=NULL WHERE webhook_id=? AND {where}"
        )
        cur = await self._run(lambda c: c.execute(sql, (now, now, sub_id, *args)))
        return int(cur.rowcount)

    async def prune(self, before: float) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM webhook_outbox WHERE status!='pending' AND updated_at<?", (before,)
            )
        )

    async def lead(self, node: str, ttl_s: float) -> bool:
        return True  # one node owns the file

    async def close(self) -> None:
        def close(c: sqlite3.Connection) -> None:
            c.close()

        if self._conn is not None:
            with contextlib.suppress(StorageError):
                await self._run(close)
            self._conn = None
        self._thread.shutdown(wait=False)


# -- redis ----------------------------------------------------------------------------------
_ENQUEUE = """
local p, now, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = 0
for i = 4, #ARGV, 6 do
  local sub, ev, store, typ = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local body, created = ARGV[i+4], ARGV[i+5]
  local d = p .. 'd:' .. sub .. ':' .. ev
  if redis.call('HEXISTS', p .. 'subs', sub) == 1 and redis.call('EXISTS', d) == 0 then
    local seq = redis.call('INCR', KEYS[1])
    redis.call('HSET', d, 'store', store, 'type', typ, 'body', body, 'status', 'pending',
      'attempts', 0, 'next_at', now, 'created', created, 'updated', now, 'seq', seq)
    redis.call('EXPIRE', d, keep)
    redis.call('RPUSH', p .. 'q:' .. sub .. ':' .. store, ev)
    redis.call('ZADD', p .. 'due', 'NX', now, sub .. '\\31' .. store)
    local log = p .. 'log:' .. sub
    redis.call('ZADD', log, seq, ev)
    redis.call('ZREMRANGEBYRANK', log, 0, -MAX_LOG - 1)
    n = n + 1
  end
end
return n
""".replace("MAX_LOG", str(MAX_LOG))

_DUE = """
local p, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)) do
  local sub, store = string.match(m, '^(.-)\\31(.*)$')
  local q = p .. 'q:' .. sub .. ':' .. store
  local ev = redis.call('LINDEX', q, 0)
  local fields = ev and redis.call('HGETALL', p .. 'd:' .. sub .. ':' .. ev) or {}
  if #fields == 0 then
    if ev then redis.call('LPOP', q) end
    if redis.call('LLEN', q) == 0 then redis.call('ZREM', KEYS[1], m) end
  else
    table.insert(out, sub); table.insert(out, ev); table.insert(out, fields)
  end
end
return out
"""

_FINISH = """
local p, sub, store, ev, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local attempts, next_at, err, now, keep = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local d = p .. 'd:' .. sub .. ':' .. ev
if redis.call('EXISTS', d) == 0 then return 0 end
redis.call('HSET', d, 'status', status, 'attempts', attempts, 'next_at', next_at,
  'err', err, 'updated', now)
local q, m = p .. 'q:' .. sub .. ':' .. store, sub .. '\\31' .. store
if status == 'pending' then
  redis.call('ZADD', KEYS[1], next_at, m)
  return 1
end
redis.call('LREM', q, 1, ev)
redis.call('EXPIRE', d, keep)
if status == 'dead' then
  redis.call('ZADD', p .. 'dead:' .. sub, redis.call('HGET', d, 'created'), ev)
end
if redis.call('LLEN', q) > 0 then
  redis.call('ZADD', KEYS[1], now, m)
else
  redis.call('ZREM', KEYS[1], m)
end
return 1
"""

_LOG = """
local p, sub, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local log = p .. 'log:' .. sub
local out = {}
for _, ev in ipairs(redis.call('ZREVRANGE', log, 0, limit - 1)) do
  local fields = redis.call('HGETALL', p .. 'd:' .. sub .. ':' .. ev)
  if #fields == 0 then redis.call('ZREM', log, ev)
  else table.insert(out, ev); table.insert(out, fields) end
end
return out
"""

_REPLAY = """
local p, sub, since, now, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local evs = {}
if #ARGV > 5 then
  for i = 6, #ARGV do table.insert(evs, ARGV[i]) end
else
  evs = redis.call('ZRANGEBYSCORE', p .. 'dead:' .. sub, since, '+inf')
end
local byqueue, n = {}, 0
for _, ev in ipairs(evs) do
  local d = p .. 'd:' .. sub .. ':' .. ev
  local store = redis.call('HGET', d, 'store')
  if store and redis.call('HGET', d, 'status') ~= 'pending' then
    redis.call('HSET', d, 'status', 'pending', 'attempts', 0, 'next_at', now, 'err', '',
      'updated', now)
    redis.call('EXPIRE', d, keep)
    redis.call('ZREM', p .. 'dead:' .. sub, ev)
    byqueue[store] = byqueue[store] or {}
    table.insert(byqueue[store], {tonumber(redis.call('HGET', d, 'seq')), ev})
    n = n + 1
  end
end
for store, list in pairs(byqueue) do
  table.sort(list, function(a, b) return a[1] > b[1] end)
  local q = p .. 'q:' .. sub .. ':' .. store
  for _, pair in ipairs(list) do redis.call('LPUSH', q, pair[2]) end
  redis.call('ZADD', KEYS[1], now, sub .. '\\31' .. store)
end
return n
"""

_LEAD = """
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

_DELETE = """
local p, sub = ARGV[1], ARGV[2]
local n = redis.call('HDEL', p .. 'subs', sub)
for _, ev in ipairs(redis.call('ZRANGE', p .. 'log:' .. sub, 0, -1)) do
  redis.call('DEL', p .. 'd:' .. sub .. ':' .. ev)
end
redis.call('DEL', p .. 'log:' .. sub, p .. 'dead:' .. sub)
redis.call('SET', p .. 'subs:n', ARGV[3])
return n
"""


def _fields(raw: Sequence[Any]) -> dict[str, str]:
    it = iter(raw)
    return {str(k): str(v) for k, v in zip(it, it, strict=True)}


def _from_hash(sub_id: str, event_id: str, f: dict[str, str]) -> Item:
    return Item(
        sub_id,
        event_id,
        f["store"],
        f["type"],
        f["body"],
        float(f["created"]),
        f["status"],
        int(f.get("attempts") or 0),
        float(f.get("next_at") or 0),
        float(f.get("updated") or 0),
        f.get("err") or None,
    )


class RedisOutbox:
    """On the backend's client (``client()`` raises ``StorageError`` once it is closed).
    ``keep_s``: how long a delivery is kept, pending or not (dead-letter time + retention);
    once delivered or dead, ``retention_s``."""

    def __init__(self, client: Callable[[], Any], prefix: str) -> None:
        from redis.exceptions import RedisError  # redis-py only where it is used

        self._errors = (RedisError, OSError)
        self._client = client
        self._p = f"{prefix}:{{wh}}:"
        self.keep_s = 14 * 86400
        self.retention_s = 7 * 86400

    async def _eval(self, script: str, key: str, *args: Any) -> Any:
        try:
            return await self._client().eval(script, 1, self._p + key, self._p, *args)
        except self._errors as exc:
            raise StorageError(f"redis webhook outbox failed: {exc}") from None

    async def subscriptions(self) -> dict[str, str]:
        try:
            raw = await self._client().hgetall(self._p + "subs")
        except self._errors as exc:
            raise StorageError(f"redis webhook outbox failed: {exc}") from None
        return {str(k): str(v) for k, v in raw.items()}

    async def mark(self) -> str:
        try:
            return str(await self._client().get(self._p + "subs:n") or "0")
        except self._errors as exc:
            raise StorageError(f"redis webhook outbox failed: {exc}") from None

    async def put_subscription(self, sub_id: str, doc: str) -> None:
        import secrets

        r = self._client()
        pipe = r.pipeline(transaction=True)
        pipe.hset(self._p + "subs", sub_id, doc)
        pipe.set(self._p + "subs:n", secrets.token_hex(8))
        try:
            await pipe.execute()
        except self._errors as exc:
            raise StorageError(f"redis webhook outbox failed: {exc}") from None

    async def delete_subscription(self, sub_id: str) -> bool:
        import secrets

        return bool(await self._eval(_DELETE, "subs", sub_id, secrets.token_hex(8)))

    async def enqueue(self, items: Sequence[Item], now: float) -> int:
        args: list[Any] = [now, int(self.keep_s)]
        for i in items:
            args += [i.sub_id, i.event_id, i.store_id, i.type, i.body, i.created_at]
        return int(await self._eval(_ENQUEUE, "seq", *args))

    async def due(self, now: float, limit: int, busy: set[tuple[str, str]]) -> list[Item]:
        raw = await self._eval(_DUE, "due", now, limit + len(busy))
        items = [
            _from_hash(str(raw[i]), str(raw[i + 1]), _fields(raw[i + 2]))
            for i in range(0, len(raw), 3)
        ]
        return [i for i in items if i.queue not in busy][:limit]

    async def finish(self, item: Item, now: float) -> None:
        await self._eval(
            _FINISH,
            "due",
            item.sub_id,
            item.store_id,
            item.event_id,
            item.status,
            item.attempts,
            item.next_at,
            item.last_error or "",
            now,
            int(self.retention_s),
        )

    async def log(self, sub_id: str, limit: int) -> list[Item]:
        raw = await self._eval(_LOG, "due", sub_id, min(limit, MAX_LOG))
        return [_from_hash(sub_id, str(raw[i]), _fields(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def replay(
        self, sub_id: str, since: float | None, event_ids: Sequence[str] | None, now: float
    ) -> int:
        args = [sub_id, since or 0, now, int(self.keep_s), *(event_ids or ())]
        return int(await self._eval(_REPLAY, "due", *args))

    async def lead(self, node: str, ttl_s: float) -> bool:
        return bool(await self._eval(_LEAD, "leader", node, int(ttl_s * 1000)))

    async def prune(self, before: float) -> None:
        """Delivered and dead deliveries expire by themselves (``retention_s``)."""

    async def close(self) -> None:
        """The client belongs to whoever passed it in."""
