"""``redis://host:port/db``: the scale-out backend (DESIGN.md §5.5, docs/scale-out.md).

Every broker node talks to one Redis (or a Redis Cluster: every key of a store carries the
``{store_id}`` hash tag, so one store lives on one slot and its commit is one script on
one shard). Nodes keep no state that is not in Redis.

Keys (``P`` is the prefix, ``passline`` unless ``?prefix=`` says otherwise):

- ``P:{sid}:m`` hash ``epoch``, ``head`` — the stream's epoch and last offset;
- ``P:{sid}:x`` stream, entry ids ``<offset>-0``, fields ``k`` kind, ``t`` tag, ``p``
  payload; trimmed with ``MAXLEN ~ stream_max_len`` (whole radix nodes, so a little more
  is kept); since nothing is ever deleted from the middle, ``first = head - XLEN + 1``;
- ``P:{sid}:r:<kind>:<key>`` hash ``v`` version, ``l`` live, ``d`` JSON doc;
- ``P:{sid}:live:<kind>`` set of live keys (tickets, jobs, expo, held orders' ``schedule``
  records) — ``scan(live_only)``;
- ``P:{sid}:all:<kind>`` set of keys of the fleet kinds (config, link, printer);
- ``P:{sid}:w`` the store's sharded pub/sub channel (``SPUBLISH head:epoch:node``, or
  ``takeover:<session>`` when another node took the store's link over);
- ``P:{sid}:t:<key>`` hash, a store's tally: each field a text that the commit script
  appends marks to; ``sos/<local date>`` holds a day of speed-of-service timings
  (docs/reports.md);
- ``P:{sid}:lease`` who holds the store's one link (``broker.storage.leases``), and
  ``P:{sid}:rel:<session>`` a replaced link's "I have let go" mark;
- ``P:loc:<kind>:<key>`` → store id, for reads by an id that does not name its store;
- ``P:stores`` set of store ids; ``P:hq`` stream of HQ deltas; ``P:nodes`` sorted set of
  live broker nodes (score: when the node's heartbeat expires);
- ``P:denied`` sorted set of revoked token ids (score: until when), ``P:denied:n`` its
  change mark (``broker.storage.denylist``);
- ``P:{wh}:…`` webhook subscriptions and deliveries (``broker.storage.outbox``).

Owners other than this module: ``redis_wakeups`` (``w``), ``redis_hq`` (``P:hq``),
``redis_nodes`` (``lease``, ``rel``, ``P:nodes``), and those named above.

Orders, tickets, jobs and expo roll-ups expire ``record_ttl_s`` after their last write
(default 7 days: also the idempotency window of ``POST /v1/orders``); tallies
``report_ttl_s`` after their last mark (default 15 days: this week and the one
before); config, link and printer records never expire.

One writer task per node sends every waiting commit in one pipeline (each commit is one
``EVALSHA``: version checks, record writes, INCR of the head, XADD, SPUBLISH), so the
cost is one round trip per batch, not per commit. A commit is acknowledged after Redis
answered; what that means for durability depends on Redis' persistence settings
(docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import NoScriptError, RedisError

from broker.errors import StorageError, VersionConflict
from broker.storage.base import (
    DEFAULT_STREAM_MAX_LEN,
    GROUP_WAIT_S,
    ROLLOUT_STORE,
    Committed,
    Entry,
    EntryKind,
    Gathering,
    Kind,
    Listener,
    Record,
    StreamSlice,
    Tx,
    notify,
    settle,
)
from broker.storage.denylist import DenyList, RedisDenyList
from broker.storage.leases import Holder, TakeoverListener
from broker.storage.outbox import Outbox, RedisOutbox
from broker.storage.redis_commit import COMMIT_LUA, FLEET_KINDS, UNINDEXED_LIVE, Layout, commit_args
from broker.storage.redis_hq import HQ_BLOCK_MS, RedisHq
from broker.storage.redis_nodes import RedisNodes
from broker.storage.redis_wakeups import SWEEP_S, UNBORN_EPOCH, RedisWakeups

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_RETRY_BASE_S = 0.05
DEFAULT_RECORD_TTL_S = 7 * 24 * 3600
DEFAULT_REPORT_TTL_S = 15 * 24 * 3600
MAX_BATCH = 256  # commits per pipeline
COMMIT_TIMEOUT_S = 15.0
STOP_TRIES, STOP_WAIT_S = 25, 0.2  # aclose: cancel, wait, cancel again (5 s at most)


@dataclass(slots=True)
class _Request:
    store_id: str
    tx: Tx
    future: asyncio.Future[Committed]


class RedisStorage:
    """Storage + Wakeups on Redis; ``shared``: other broker nodes use the same data."""

    shared = True

    def __init__(
        self,
        url: str,
        stream_max_len: int = DEFAULT_STREAM_MAX_LEN,
        *,
        prefix: str = "passline",
        record_ttl_s: int = DEFAULT_RECORD_TTL_S,
        report_ttl_s: int = DEFAULT_REPORT_TTL_S,
        max_connections: int = 32,
        sweep_s: float = SWEEP_S,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.node_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._max_len = stream_max_len
        self._ttl = record_ttl_s
        self._report_ttl = report_ttl_s
        self._max_connections = max_connections
        self._r: aioredis.Redis | None = None  # reads, subscriptions (bounded pool)
        self._w: aioredis.Redis | None = None  # the writer's connection: no retries
        self._blocking: aioredis.Redis | None = None  # XREAD BLOCK for HQ deltas
        self._sha = ""
        self._pending: deque[_Request] = deque()
        self._gathering = Gathering(GROUP_WAIT_S)
        self._wake = asyncio.Event()
        self._known_stores: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.denylist: DenyList = RedisDenyList(lambda: self.redis, self._k("denied"))
        self.outbox: Outbox = RedisOutbox(lambda: self.redis, self.prefix)
        self.stats = {"batches": 0.0, "commits": 0.0, "busy_s": 0.0, "wakeups": 0.0}
        self._wakeups = RedisWakeups(
            lambda: self.redis,
            self._call,
            key=self._k,
            store_key=self._sk,
            channel=self._channel,
            prefix=prefix,
            node_id=self.node_id,
            sweep_s=sweep_s,
            stats=self.stats,
        )
        self._hq = RedisHq(self._k("hq"), wake=self._wake.set, closed=lambda: self._closed)
        self._nodes = RedisNodes(
            lambda: self.redis,
            self._call,
            key=self._k("nodes"),
            store_key=self._sk,
            channel=self._channel,
            node_id=self.node_id,
            closed=lambda: self._closed,
        )

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": 2.0,
            "health_check_interval": 0,
        }
        # Reads are idempotent: retried on a fresh connection (3 times, jittered backoff),
        # and a busy node waits for a pooled connection rather than failing. The retry must
        # be given to the pool: redis-py's client-level default does not reach connections
        # of a pool built here, which had none ("Connection closed by server" → 503 after a
        # redis restart).
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=self._max_connections, timeout=5.0, socket_timeout=5.0,
            retry=Retry(ExponentialWithJitterBackoff(base=READ_RETRY_BASE_S, cap=1.0), 3),
            **common,
        )  # fmt: skip
        self._r = aioredis.Redis(connection_pool=pool)
        # Commits are not: a pipeline replayed after a lost reply could append twice. The
        # writer's one connection never retries; the caller gets StorageError (503), and a
        # resubmit is idempotent.
        self._w = aioredis.Redis.from_url(
            self.url, max_connections=2, socket_timeout=5.0, retry=Retry(NoBackoff(), 0),
            **common,
        )  # fmt: skip
        self._blocking = aioredis.Redis.from_url(
            self.url, max_connections=2, socket_timeout=HQ_BLOCK_MS / 1000 + 5, **common
        )
        try:
            self._sha = await self._w.script_load(COMMIT_LUA)
            info = await self._r.info("server")
        except (RedisError, OSError) as exc:
            await self._close_clients()
            raise StorageError(f"cannot reach redis at {_safe(self.url)}: {exc}") from None
        version = tuple(int(x) for x in str(info.get("redis_version", "0")).split(".")[:2])
        if version < (7, 0):
            await self._close_clients()
            raise StorageError(f"redis {info.get('redis_version')} is too old: 7.0 is needed")
        loop = asyncio.get_running_loop()
        for coro, name in (
            (self._writer(), "redis-writer"),
            (self._wakeups.subscriber(), "redis-wakeups"),
            (self._wakeups.sweeper(), "redis-sweep"),
            (self._nodes.heartbeat(), "redis-heartbeat"),
            (self._hq.reader(self._blocking), "redis-hq"),
        ):
            self._tasks.append(loop.create_task(coro, name=name))
        await self._wakeups.channel_up()

    async def aclose(self) -> None:
        """Send every commit already asked for, then close."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        writer, rest = self._tasks[0] if self._tasks else None, self._tasks[1:]
        await _stop(rest)
        if writer is not None:
            try:
                async with asyncio.timeout(COMMIT_TIMEOUT_S):
                    await writer
            except TimeoutError:
                writer.cancel()
        assert self._r is not None
        await self._nodes.leave(self._r)
        await self._close_clients()

    async def _close_clients(self) -> None:
        await self._wakeups.aclose()
        for client in (self._r, self._w, self._blocking):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    # -- keys ----------------------------------------------------------------------------------
    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _sk(self, store_id: str, *parts: str) -> str:
        return ":".join((self.prefix, "{" + store_id + "}", *parts))

    def _channel(self, store_id: str) -> str:
        return self._sk(store_id, "w")

    def _store_of(self, kind: Kind, key: str) -> str | None:
        if kind in (Kind.CONFIG, Kind.LINK, Kind.BASE):
            return key
        if kind is Kind.RELEASE:
            return ROLLOUT_STORE
        if kind is Kind.PRINTER:
            return key.split("/", 1)[0]
        return None

    @property
    def redis(self) -> Any:
        """The client (``Any``: redis-py's types do not know ``decode_responses``)."""
        if self._closed or self._r is None:
            raise StorageError("storage is closed")
        return self._r

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except (RedisError, OSError) as exc:
            raise StorageError(f"redis {what} failed: {exc}") from None

    # -- Storage: commit ---------------------------------------------------------------------
    async def commit(self, store_id: str, tx: Tx) -> Committed:
        if self._closed:
            raise StorageError("storage is closed")
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(store_id, tx, future))
        self._wake.set()
        try:
            async with asyncio.timeout(COMMIT_TIMEOUT_S):
                return await asyncio.shield(future)  # a cancelled caller does not stop it
        except TimeoutError:
            raise StorageError("redis commit timed out") from None

    def _script_args(self, req: _Request) -> tuple[list[str], list[str]]:
        layout = Layout(
            self._sk,
            self._channel(req.store_id),
            self._max_len,
            self._ttl,
            self.node_id,
            self._report_ttl,
        )
        return commit_args(req.store_id, req.tx, layout)

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._hq.waiting:
                await self._gathering.pause(self._closed)
                n = min(MAX_BATCH, len(self._pending))
                batch = [self._pending.popleft() for _ in range(n)]
                await self._send(batch, self._hq.take())
            if self._closed and not self._pending:
                return

    async def _send(self, batch: list[_Request], hq: list[str]) -> None:
        t0 = time.perf_counter()
        try:
            results = await self._run_batch(batch, hq)
        except (RedisError, OSError) as exc:
            log.warning("redis batch of %d commits failed: %s", len(batch), exc)
            error = StorageError(f"redis unavailable: {exc}")
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(error)
            return
        self.stats["batches"] += 1
        self.stats["commits"] += len(batch)
        self.stats["busy_s"] += time.perf_counter() - t0
        for req, result in zip(batch, results, strict=True):
            self._resolve(req, result)

    async def _run_batch(self, batch: list[_Request], hq: list[str]) -> list[Any]:
        r: Any = self._w  # still used while aclose() sends the last commits
        assert r is not None
        calls = [self._script_args(req) for req in batch]
        pipe = r.pipeline(transaction=False)
        for req in batch:
            if req.store_id not in self._known_stores:
                pipe.sadd(self._k("stores"), req.store_id)
            for p in req.tx.puts:
                if self._store_of(p.kind, p.key) is None:
                    pipe.set(self._k("loc", p.kind.value, p.key), req.store_id, ex=self._ttl)
        self._hq.add_to(pipe, hq)
        for keys, args in calls:
            pipe.evalsha(self._sha, len(keys), *keys, *args)
        out = await pipe.execute(raise_on_error=False)
        results = out[len(out) - len(batch) :]
        for req in batch:
            self._known_stores.add(req.store_id)
        missing = [i for i, res in enumerate(results) if isinstance(res, NoScriptError)]
        if missing:  # Redis restarted and forgot the script: it did not run, so run again
            self._sha = await r.script_load(COMMIT_LUA)
            pipe = r.pipeline(transaction=False)
            for i in missing:
                keys, args = calls[i]
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            for i, res in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = res
        return results

    def _resolve(self, req: _Request, result: Any) -> None:
        if isinstance(result, BaseException):
            log.error("redis commit store=%s failed: %s", req.store_id, result)
            outcome: Committed | BaseException = StorageError(f"redis commit failed: {result}")
        elif result[0] == "conflict":
            put = req.tx.puts[int(result[1]) - 1]
            outcome = VersionConflict(put.kind.value, put.key, put.expect, int(result[2]))
        else:
            epoch, head, n = str(result[1]), int(result[2]), len(req.tx.entries)
            offsets = tuple(range(head - n + 1, head + 1))
            outcome = Committed(epoch, head, offsets)
            entries = [
                Entry(off, new.kind, new.payload, new.tag)
                for off, new in zip(offsets, req.tx.entries, strict=True)
            ]
            notify(self._wakeups.listener, req.store_id, outcome, entries)
        settle(req.future, outcome)

    # -- Storage: reads ------------------------------------------------------------------------
    async def get(self, kind: Kind, key: str, store_id: str | None = None) -> Record | None:
        return (await self.get_many(kind, [key], store_id))[0]

    async def get_many(
        self, kind: Kind, keys: Sequence[str], store_id: str | None = None
    ) -> list[Record | None]:
        if not keys:
            return []
        r = self.redis
        stores: list[str | None] = [store_id or self._store_of(kind, k) for k in keys]
        unknown = [i for i, sid in enumerate(stores) if sid is None]
        if unknown:  # ids that do not name their store: one lookup round trip for them all

            async def locate() -> list[Any]:
                pipe = r.pipeline(transaction=False)
                for i in unknown:
                    pipe.get(self._k("loc", kind.value, keys[i]))
                return list(await pipe.execute())

            for i, sid in zip(unknown, await self._call("get", locate), strict=True):
                stores[i] = None if sid is None else str(sid)
        found = [(i, sid) for i, sid in enumerate(stores) if sid is not None]

        async def rows() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for i, sid in found:
                pipe.hmget(self._sk(sid, "r", kind.value, keys[i]), "v", "l", "d")
            return list(await pipe.execute())

        out: list[Record | None] = [None] * len(keys)
        for (i, sid), row in zip(
            found, await self._call("get", rows) if found else [], strict=True
        ):
            out[i] = _record(kind, keys[i], sid, row)
        return out

    async def printer_keys_in_state(self, state: str) -> list[str] | None:
        return None  # no index yet: callers read every store's printers (docs/rest.md)

    async def store_ids(self) -> list[str]:
        """Every store that ever committed (a config is put in a commit of its own store)."""
        r = self.redis
        return sorted(await self._call("store ids", lambda: r.smembers(self._k("stores"))))

    async def scan(self, store_id: str | None, kind: Kind, live_only: bool = True) -> list[Record]:
        if kind not in FLEET_KINDS and (not live_only or kind in UNINDEXED_LIVE):
            raise StorageError(f"redis keeps no index of all {kind.value} records")
        r = self.redis
        index = "all" if kind in FLEET_KINDS else "live"
        if store_id is None:
            stores = sorted(await self._call("scan", lambda: r.smembers(self._k("stores"))))
        else:
            stores = [store_id]

        async def members() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for sid in stores:
                pipe.smembers(self._sk(sid, index, kind.value))
            return list(await pipe.execute())

        sets = await self._call("scan", members)
        keys = [(sid, k) for sid, ks in zip(stores, sets, strict=True) for k in sorted(ks)]
        if not keys:
            return []

        async def rows() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for sid, k in keys:
                pipe.hmget(self._sk(sid, "r", kind.value, k), "v", "l", "d")
            return list(await pipe.execute())

        out, stale = [], []
        for (sid, k), row in zip(keys, await self._call("scan", rows), strict=True):
            rec = _record(kind, k, sid, row)
            if rec is None:
                stale.append((sid, k))  # expired: drop it from the live set
            elif rec.live or not live_only:
                out.append(rec)
        if stale and index == "live":
            with contextlib.suppress(RedisError, OSError):
                pipe = r.pipeline(transaction=False)
                for sid, k in stale:
                    pipe.srem(self._sk(sid, "live", kind.value), k)
                await pipe.execute()
        return out

    async def tallies(self, store_id: str, keys: Sequence[str]) -> list[dict[str, str]]:
        if not keys:
            return []
        r = self.redis

        async def hashes() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self._sk(store_id, "t", key))
            return list(await pipe.execute())

        found = await self._call("tallies", hashes)
        return [{str(f): str(marks) for f, marks in h.items()} for h in found]

    async def read(self, store_id: str, after: int, limit: int) -> StreamSlice:
        r = self.redis

        async def fetch() -> list[Any]:
            pipe = r.pipeline(transaction=True)  # one slot: a consistent view
            pipe.hmget(self._sk(store_id, "m"), "epoch", "head")
            pipe.xlen(self._sk(store_id, "x"))
            if limit > 0:
                pipe.xrange(self._sk(store_id, "x"), min=f"{after + 1}-0", count=limit)
            return list(await pipe.execute())

        got = await self._call("read", fetch)
        (epoch, head_s), xlen = got[0], int(got[1])
        if epoch is None:
            return StreamSlice(UNBORN_EPOCH, 1, 0, [])
        head = int(head_s)
        entries = []
        for entry_id, fields in got[2] if limit > 0 else ():
            offset = int(str(entry_id).split("-", 1)[0])
            if offset > head:
                break
            entries.append(Entry(offset, EntryKind(fields["k"]), fields["p"], fields.get("t", "")))
        return StreamSlice(str(epoch), head - xlen + 1, head, entries)

    # -- Wakeups (redis_wakeups) ---------------------------------------------------------------
    def listen(self, listener: Listener) -> None:
        self._wakeups.listen(listener)

    async def watch(self, store_id: str) -> None:
        await self._wakeups.watch(store_id)

    async def unwatch(self, store_id: str) -> None:
        await self._wakeups.unwatch(store_id)

    def listen_takeover(self, listener: TakeoverListener) -> None:
        self._wakeups.listen_takeover(listener)

    async def ping(self) -> None:
        r = self.redis
        await self._call("ping", r.ping)
        if not self._wakeups.up:
            raise StorageError("redis wake-up channel is down")

    # -- HQ fan-out (redis_hq) -----------------------------------------------------------------
    def listen_hq(self, listener: Callable[[str], None]) -> None:
        self._hq.listen(listener)

    def watch_hq(self, on: bool) -> None:
        self._hq.watch(on)

    def publish_hq(self, frame: str) -> None:
        self._hq.publish(frame)

    # -- nodes and the link lease (redis_nodes) ------------------------------------------------
    async def claim_link(self, store_id: str, holder: Holder) -> Holder | None:
        return await self._nodes.claim_link(store_id, holder)

    async def release_link(self, store_id: str, holder: Holder) -> None:
        await self._nodes.release_link(store_id, holder)

    async def link_released(self, store_id: str, holder: Holder) -> bool:
        return await self._nodes.link_released(store_id, holder)

    async def claim_dead_nodes(self) -> list[str]:
        return await self._nodes.claim_dead_nodes()


async def _stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait for them, bounded, cancelling again the ones still
    running. A cancellation can get lost inside a redis-py call (seen on uvloop right
    after start: the heartbeat went on beating), and the unbounded wait this replaces then
    held ``aclose`` for 15 s or for good."""
    pending = set(tasks)
    for _ in range(STOP_TRIES):
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=STOP_WAIT_S)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a task that failed was logged where it failed
        if not pending:
            return
    log.warning("redis: %d background task(s) did not stop", len(pending))


def _record(kind: Kind, key: str, store_id: str, row: Sequence[Any]) -> Record | None:
    version, live, doc = row
    if version is None or doc is None:
        return None
    return Record(kind, key, store_id, int(version), str(doc), live == "1")


def _safe(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return scheme + sep + ("***@" + rest.split("@", 1)[1] if "@" in rest else rest)
