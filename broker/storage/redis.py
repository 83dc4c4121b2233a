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
import functools
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
    ROLLOUT_STORE,
    Committed,
    Entry,
    EntryKind,
    Kind,
    Listener,
    Record,
    StreamSlice,
    Tx,
    notify,
    settle,
)
from broker.storage.denylist import DenyList, RedisDenyList
from broker.storage.leases import RELEASED_TTL_S, Holder, TakeoverListener
from broker.storage.outbox import Outbox, RedisOutbox
from broker.storage.redis_commit import COMMIT_LUA, FLEET_KINDS, UNINDEXED_LIVE, Layout, commit_args

log = logging.getLogger(__name__)

T = TypeVar("T")

UNBORN_EPOCH = "unborn"
READ_RETRY_BASE_S = 0.05
DEFAULT_RECORD_TTL_S = 7 * 24 * 3600
DEFAULT_REPORT_TTL_S = 15 * 24 * 3600
MAX_BATCH = 256  # commits per pipeline
COMMIT_TIMEOUT_S = 15.0
SWEEP_S = 5.0  # every watched store's head is compared with what was delivered
HEARTBEAT_S = 2.0
NODE_TTL_S = 10.0  # a node silent this long is dead: its links are marked offline
WATCH_WAIT_S = 3.0  # how long a new subscription waits for a reconnecting channel
HQ_MAX_LEN = 10_000
HQ_BLOCK_MS = 1000
RECONNECT_S = (0.1, 0.2, 0.5, 1.0, 2.0)
STOP_TRIES, STOP_WAIT_S = 25, 0.2  # aclose: cancel, wait, cancel again (5 s at most)

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
return 1
"""
TAKEOVER = "takeover:"


class ChannelInDoubt(RedisError):
    """A command on the wake-up channel failed while its reader saw nothing wrong (redis-py
    may have reconnected under it): which stores it is subscribed to is unknown."""


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
        self._sweep_s = sweep_s
        self._r: aioredis.Redis | None = None  # reads, subscriptions (bounded pool)
        self._w: aioredis.Redis | None = None  # the writer's connection: no retries
        self._blocking: aioredis.Redis | None = None  # XREAD BLOCK for HQ deltas
        self._sha = ""
        self._pending: deque[_Request] = deque()
        self._wake = asyncio.Event()
        self._hq_out: list[str] = []
        self._listener: Listener | None = None
        self._hq_listener: Callable[[str], None] | None = None
        self._takeover_listener: TakeoverListener | None = None
        self._watched: set[str] = set()
        self._pubsub: Any = None
        self._pubsub_ok = asyncio.Event()  # set only by the subscriber loop
        self._pubsub_in_doubt = False  # a command on the channel failed: build a new one
        self._hq_wanted = asyncio.Event()
        self._sweep_soon = False  # set on (re)subscribing: catch every watched store up
        self._known_stores: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.denylist: DenyList = RedisDenyList(lambda: self.redis, self._k("denied"))
        self.outbox: Outbox = RedisOutbox(lambda: self.redis, self.prefix)
        self.stats = {"batches": 0.0, "commits": 0.0, "busy_s": 0.0, "wakeups": 0.0}

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
            (self._subscriber(), "redis-wakeups"),
            (self._sweeper(), "redis-sweep"),
            (self._heartbeat(), "redis-heartbeat"),
            (self._hq_reader(), "redis-hq"),
        ):
            self._tasks.append(loop.create_task(coro, name=name))
        await self._channel_up()

    async def _channel_up(self) -> None:
        try:
            async with asyncio.timeout(WATCH_WAIT_S):
                await self._pubsub_ok.wait()
        except TimeoutError:
            raise StorageError("redis is unavailable (wake-up channel down)") from None

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
        with contextlib.suppress(RedisError, OSError):
            assert self._r is not None
            await self._r.zrem(self._k("nodes"), self.node_id)
        await self._close_clients()

    async def _close_clients(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
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
            while self._pending or self._hq_out:
                n = min(MAX_BATCH, len(self._pending))
                batch = [self._pending.popleft() for _ in range(n)]
                hq, self._hq_out = self._hq_out, []
                await self._send(batch, hq)
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
        for frame in hq:
            pipe.xadd(self._k("hq"), {"f": frame}, maxlen=HQ_MAX_LEN, approximate=True)
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
            notify(self._listener, req.store_id, outcome, entries)
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

    # -- Wakeups -------------------------------------------------------------------------------
    def listen(self, listener: Listener) -> None:
        self._listener = listener

    async def watch(self, store_id: str) -> None:
        self._watched.add(store_id)
        try:
            await self._channel_up()
            pubsub = self._pubsub
            try:
                await pubsub.ssubscribe(self._channel(store_id))
                return
            except (RedisError, OSError) as exc:
                log.warning("redis subscribe store=%s failed: %s", store_id, exc)
            # The channel is in doubt: the subscriber loop builds a new one with every
            # watched store, this one included, and the link waits for it as it waits for
            # a reconnecting channel. (Only marking it down, for a loop that saw nothing
            # wrong, refused every new link until the node restarted.)
            self._rebuild(pubsub)
            await self._channel_up()
        except StorageError:
            self._watched.discard(store_id)
            raise

    async def unwatch(self, store_id: str) -> None:
        self._watched.discard(store_id)
        pubsub = self._pubsub
        if pubsub is not None and self._pubsub_ok.is_set():
            try:
                await pubsub.sunsubscribe(self._channel(store_id))
            except (RedisError, OSError) as exc:
                log.warning("redis unsubscribe store=%s failed: %s", store_id, exc)
                self._rebuild(pubsub)

    def _rebuild(self, pubsub: Any) -> None:
        """A command on ``pubsub`` failed: have the subscriber loop replace it (it clears
        ``_pubsub_ok`` now and sets it again once every watched store is subscribed)."""
        if pubsub is self._pubsub:  # else the loop has replaced it already
            self._pubsub_ok.clear()
            self._pubsub_in_doubt = True

    async def ping(self) -> None:
        r = self.redis
        await self._call("ping", r.ping)
        if not self._pubsub_ok.is_set():
            raise StorageError("redis wake-up channel is down")

    def listen_hq(self, listener: Callable[[str], None]) -> None:
        self._hq_listener = listener

    def watch_hq(self, on: bool) -> None:
        if on:
            self._hq_wanted.set()
        else:
            self._hq_wanted.clear()

    def publish_hq(self, frame: str) -> None:
        """Every node's HQ screens get it (through ``P:hq``), this node's included."""
        if self._closed:
            return
        self._hq_out.append(frame)
        self._wake.set()

    # -- the link lease (broker.storage.leases) ---------------------------------------------
    def listen_takeover(self, listener: TakeoverListener) -> None:
        self._takeover_listener = listener

    def _taken_over(self, store_id: str, session: str) -> None:
        if self._takeover_listener is not None:
            try:
                self._takeover_listener(store_id, session)
            except Exception:
                log.exception("takeover listener failed store=%s", store_id)

    async def claim_link(self, store_id: str, holder: Holder) -> Holder | None:
        r, key = self.redis, self._sk(store_id, "lease")
        old = await self._call("lease", lambda: r.set(key, holder.encode(), get=True))
        previous = Holder.decode(old)
        if previous is not None and previous.live and previous.node != holder.node:
            await self._tell_takeover(store_id, previous)
        return previous

    async def _tell_takeover(self, store_id: str, previous: Holder) -> None:
        r, channel = self.redis, self._channel(store_id)
        message = TAKEOVER + previous.session
        await self._call("lease", lambda: r.spublish(channel, message))

    async def release_link(self, store_id: str, holder: Holder) -> None:
        r = self.redis
        keys = [self._sk(store_id, "lease"), self._sk(store_id, "rel", holder.session)]
        gone = Holder(holder.node, holder.session, holder.client_id, False)
        args = [holder.encode(), gone.encode(), RELEASED_TTL_S]
        await self._call("lease", lambda: r.eval(RELEASE_LUA, 2, *keys, *args))

    async def link_released(self, store_id: str, holder: Holder) -> bool:
        r = self.redis

        async def check() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.exists(self._sk(store_id, "rel", holder.session))
            pipe.zscore(self._k("nodes"), holder.node)
            return list(await pipe.execute())

        released, node_expires = await self._call("lease", check)
        if released:
            return True
        if node_expires is None or float(node_expires) < time.time():
            return True  # its node is gone: nothing delivers to that link any more
        await self._tell_takeover(store_id, holder)  # again: pub/sub may lose a message
        return False

    async def claim_dead_nodes(self) -> list[str]:
        """Nodes whose heartbeat stopped; each is returned to exactly one live node."""
        r = self.redis
        key = self._k("nodes")
        dead = await self._call("nodes", lambda: r.zrangebyscore(key, "-inf", time.time()))
        claimed = []
        for node in dead:
            if node == self.node_id:
                continue  # this node was stalled, not dead: the next heartbeat re-adds it
            if await self._call("nodes", functools.partial(r.zrem, key, node)):
                claimed.append(str(node))
        return claimed

    # -- background tasks ------------------------------------------------------------------------
    async def _subscriber(self) -> None:
        """The wake-up channel: reconnects by itself, then catches every watched store up."""
        attempt = 0
        while True:
            try:
                self._pubsub_in_doubt = False
                self._pubsub = self.redis.pubsub()
                channels = [self._channel(s) for s in sorted(self._watched)]
                if channels:
                    await self._pubsub.ssubscribe(*channels)
                else:
                    await self._pubsub.ssubscribe(self._k("nobody"))  # hold the connection
                self._pubsub_ok.set()
                if attempt:
                    log.info("redis wake-up channel back: catching %d stores up", len(channels))
                attempt = 0
                self._sweep_soon = True
                await self._pump(self._pubsub)
            except Exception as exc:
                if not isinstance(exc, RedisError | OSError | StorageError):
                    log.exception("redis wake-up channel failed")
                elif self._pubsub_ok.is_set():
                    log.warning("redis wake-up channel lost: %s", exc)
                self._pubsub_ok.clear()
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
                attempt += 1

    async def _pump(self, ps: Any) -> None:
        while True:
            # Just (re)subscribed: read whatever was missed meanwhile, before waiting for a
            # message (after it, a catch-up up to a second late repeated wake-ups that the
            # channel had already delivered).
            if self._sweep_soon:
                try:
                    await self._sweep()
                    self._sweep_soon = False
                except StorageError as exc:
                    log.debug("catch-up after resubscribing failed, trying again: %s", exc)
            msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if self._pubsub_in_doubt:
                raise ChannelInDoubt("a command on the wake-up channel failed")
            if msg is None or msg.get("type") != "smessage":
                continue
            channel = str(msg["channel"])
            store_id = channel[len(self.prefix) + 2 : -3]  # P:{sid}:w
            if str(msg["data"]).startswith(TAKEOVER):
                self._taken_over(store_id, str(msg["data"])[len(TAKEOVER) :])
                continue
            head_s, epoch, node = [*str(msg["data"]).split(":"), "", ""][:3]
            if node == self.node_id:
                continue
            self.stats["wakeups"] += 1
            if self._listener is not None and store_id in self._watched:
                try:
                    self._listener(store_id, epoch, int(head_s), [])
                except Exception:
                    log.exception("storage listener failed store=%s", store_id)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_s)
            with contextlib.suppress(StorageError):
                await self._sweep()

    async def _sweep(self) -> None:
        """Pub/sub may lose messages: compare each watched store's head with the stream."""
        stores = sorted(self._watched)
        if not stores or self._listener is None:
            return
        r = self.redis

        async def heads() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for sid in stores:
                pipe.hmget(self._sk(sid, "m"), "epoch", "head")
            return list(await pipe.execute())

        for sid, (epoch, head) in zip(stores, await self._call("sweep", heads), strict=True):
            if sid in self._watched:
                try:
                    self._listener(sid, str(epoch or UNBORN_EPOCH), int(head or 0), [])
                except Exception:
                    log.exception("storage listener failed store=%s", sid)

    async def _heartbeat(self) -> None:
        key = self._k("nodes")
        while not self._closed:  # also ends a beat whose cancellation got lost (see _stop)
            with contextlib.suppress(RedisError, OSError, StorageError):
                await self.redis.zadd(key, {self.node_id: time.time() + NODE_TTL_S})
            await asyncio.sleep(HEARTBEAT_S)

    async def _hq_reader(self) -> None:
        """HQ deltas from every node, read only while this node has HQ screens."""
        blocking: Any = self._blocking
        key, last = self._k("hq"), "$"
        attempt = 0
        while True:
            if not self._hq_wanted.is_set():
                last = "$"
                await self._hq_wanted.wait()
            try:
                if last == "$":  # "$" would miss deltas added while this call is on its way
                    info = await blocking.xrevrange(key, count=1)
                    last = str(info[0][0]) if info else "0-0"
                got = await blocking.xread({key: last}, count=500, block=HQ_BLOCK_MS)
                attempt = 0
            except (RedisError, OSError) as exc:
                log.debug("redis hq read failed: %s", exc)
                await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
                attempt += 1
                continue
            for _, items in got or ():
                for entry_id, fields in items:
                    last = str(entry_id)
                    if self._hq_listener is not None and self._hq_wanted.is_set():
                        try:
                            self._hq_listener(str(fields["f"]))
                        except Exception:
                            log.exception("hq listener failed")


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
