"""The redis backend's wake-ups: one sharded pub/sub connection per node.

A commit that appends entries ``SPUBLISH``es ``head:epoch:node`` on its store's channel
``P:{sid}:w`` (the commit script, ``broker.storage.redis_commit``). This node subscribes to
the stores its connections watch and tells the listener, which reads the gap from the
stream. Pub/sub may lose messages, so each watched store's head is also read from
``P:{sid}:m`` every ``sweep_s`` and right after each (re)subscribe. The same channel
carries ``takeover:<session>`` when another node took over a store's link (``redis_nodes``).

A class of its own because the channel has state the records do not: which stores are
watched, whether the channel is up, and the loop that rebuilds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from broker.errors import StorageError
from broker.storage.base import Listener
from broker.storage.leases import TakeoverListener

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The epoch a reader sees before a store's first commit: never matches a real one.
UNBORN_EPOCH = "unborn"
SWEEP_S = 5.0  # every watched store's head is compared with what was delivered
WATCH_WAIT_S = 3.0  # how long a new subscription waits for a reconnecting channel
RECONNECT_S = (0.1, 0.2, 0.5, 1.0, 2.0)
TAKEOVER = "takeover:"


class ChannelInDoubt(RedisError):
    """A command on the wake-up channel failed while its reader saw nothing wrong (redis-py
    may have reconnected under it): which stores it is subscribed to is unknown."""


class Call(Protocol):
    """``RedisStorage._call``: a redis failure of ``fn`` is raised as ``StorageError``."""

    async def __call__(self, what: str, fn: Callable[[], Awaitable[T]]) -> T: ...


class RedisWakeups:
    """The watched stores, the channel subscribed to them and the listeners it tells."""

    def __init__(
        self,
        client: Callable[[], Any],
        call: Call,
        *,
        key: Callable[..., str],
        store_key: Callable[..., str],
        channel: Callable[[str], str],
        prefix: str,
        node_id: str,
        sweep_s: float,
        stats: dict[str, float],
    ) -> None:
        self._client = client
        self._call = call
        self._k = key
        self._sk = store_key
        self._channel = channel
        self._prefix = prefix
        self._node_id = node_id
        self._sweep_s = sweep_s
        self._stats = stats
        self.listener: Listener | None = None
        self._takeover_listener: TakeoverListener | None = None
        self._watched: set[str] = set()
        self._pubsub: Any = None
        self._pubsub_ok = asyncio.Event()  # set only by the subscriber loop
        self._pubsub_in_doubt = False  # a command on the channel failed: build a new one
        self._sweep_soon = False  # set on (re)subscribing: catch every watched store up

    @property
    def up(self) -> bool:
        return self._pubsub_ok.is_set()

    def listen(self, listener: Listener) -> None:
        self.listener = listener

    def listen_takeover(self, listener: TakeoverListener) -> None:
        self._takeover_listener = listener

    async def channel_up(self) -> None:
        try:
            async with asyncio.timeout(WATCH_WAIT_S):
                await self._pubsub_ok.wait()
        except TimeoutError:
            raise StorageError("redis is unavailable (wake-up channel down)") from None

    async def aclose(self) -> None:
        """Close the channel's connection (its tasks are stopped by the storage)."""
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def watch(self, store_id: str) -> None:
        self._watched.add(store_id)
        try:
            await self.channel_up()
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
            await self.channel_up()
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

    def _reconnected(self) -> None:
        """redis-py (re)connected the channel by itself: catch every watched store up."""
        self._sweep_soon = True

    def _taken_over(self, store_id: str, session: str) -> None:
        if self._takeover_listener is not None:
            try:
                self._takeover_listener(store_id, session)
            except Exception:
                log.exception("takeover listener failed store=%s", store_id)

    async def subscriber(self) -> None:
        """The wake-up channel: reconnects by itself, then catches every watched store up."""
        attempt = 0
        while True:
            try:
                self._pubsub_in_doubt = False
                self._pubsub = _Channel(self._client(), self._reconnected)
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
            store_id = channel[len(self._prefix) + 2 : -3]  # P:{sid}:w
            if str(msg["data"]).startswith(TAKEOVER):
                self._taken_over(store_id, str(msg["data"])[len(TAKEOVER) :])
                continue
            head_s, epoch, node = [*str(msg["data"]).split(":"), "", ""][:3]
            if node == self._node_id:
                continue
            self._stats["wakeups"] += 1
            if self.listener is not None and store_id in self._watched:
                try:
                    self.listener(store_id, epoch, int(head_s), [])
                except Exception:
                    log.exception("storage listener failed store=%s", store_id)

    async def sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_s)
            with contextlib.suppress(StorageError):
                await self._sweep()

    async def _sweep(self) -> None:
        """Pub/sub may lose messages: compare each watched store's head with the stream."""
        stores = sorted(self._watched)
        if not stores or self.listener is None:
            return
        r = self._client()

        async def heads() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for sid in stores:
                pipe.hmget(self._sk(sid, "m"), "epoch", "head")
            return list(await pipe.execute())

        for sid, (epoch, head) in zip(stores, await self._call("sweep", heads), strict=True):
            if sid in self._watched:
                try:
                    self.listener(sid, str(epoch or UNBORN_EPOCH), int(head or 0), [])
                except Exception:
                    log.exception("storage listener failed store=%s", sid)


class _Channel(PubSub):
    """The wake-up channel's pub/sub connection. When a read fails and the server answers
    again, redis-py reconnects and subscribes again by itself, inside ``get_message``: a
    wake-up published in between is lost and the subscriber loop sees nothing wrong. CI
    caught a node that never heard of a commit made after a Redis restart (its periodic
    sweep was an hour away). Every (re)connection now tells the loop to catch up."""

    def __init__(self, client: Any, reconnected: Callable[[], None]) -> None:
        super().__init__(
            client.connection_pool, event_dispatcher=getattr(client, "_event_dispatcher", None)
        )
        self._on_reconnect = reconnected

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self._on_reconnect()
