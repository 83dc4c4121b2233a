"""The redis backend's node liveness and link lease (DESIGN.md §5.3, §8.2).

Each node beats into the sorted set ``P:nodes`` (score: when its beat expires); a node
silent ``NODE_TTL_S`` is dead, and ``claim_dead_nodes`` hands each dead node to exactly one
live node, which marks its links offline. A store's link lease is ``P:{sid}:lease``
(``broker.storage.leases``); a replaced holder is told on the store's wake-up channel
(``redis_wakeups``) and answers with ``P:{sid}:rel:<session>``.

One class for both because whether a replaced link has let go is answered by the two
together: its released mark, or its node gone from ``P:nodes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from broker.errors import StorageError
from broker.storage.leases import RELEASED_TTL_S, Holder
from broker.storage.redis_wakeups import TAKEOVER, Call

HEARTBEAT_S = 2.0
NODE_TTL_S = 10.0  # a node silent this long is dead: its links are marked offline

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
return 1
"""


class RedisNodes:
    """This node's heartbeat, the reaping of dead ones, and the link leases."""

    def __init__(
        self,
        client: Callable[[], Any],
        call: Call,
        *,
        key: str,
        store_key: Callable[..., str],
        channel: Callable[[str], str],
        node_id: str,
        closed: Callable[[], bool],
    ) -> None:
        self._client = client
        self._call = call
        self._key = key
        self._sk = store_key
        self._channel = channel
        self._node_id = node_id
        self._closed = closed

    async def heartbeat(self) -> None:
        key = self._key
        while not self._closed():  # also ends a beat whose cancellation got lost (redis._stop)
            with contextlib.suppress(RedisError, OSError, StorageError):
                await self._client().zadd(key, {self._node_id: time.time() + NODE_TTL_S})
            await asyncio.sleep(HEARTBEAT_S)

    async def leave(self, r: Any) -> None:
        """Take this node out of ``P:nodes`` on closing (``r``: the closing storage's
        client, which ``client()`` no longer gives)."""
        with contextlib.suppress(RedisError, OSError):
            await r.zrem(self._key, self._node_id)

    async def claim_dead_nodes(self) -> list[str]:
        """Nodes whose heartbeat stopped; each is returned to exactly one live node."""
        r = self._client()
        key = self._key
        dead = await self._call("nodes", lambda: r.zrangebyscore(key, "-inf", time.time()))
        claimed = []
        for node in dead:
            if node == self._node_id:
                continue  # this node was stalled, not dead: the next heartbeat re-adds it
            if await self._call("nodes", functools.partial(r.zrem, key, node)):
                claimed.append(str(node))
        return claimed

    async def claim_link(self, store_id: str, holder: Holder) -> Holder | None:
        r, key = self._client(), self._sk(store_id, "lease")
        old = await self._call("lease", lambda: r.set(key, holder.encode(), get=True))
        previous = Holder.decode(old)
        if previous is not None and previous.live and previous.node != holder.node:
            await self._tell_takeover(store_id, previous)
        return previous

    async def _tell_takeover(self, store_id: str, previous: Holder) -> None:
        r, channel = self._client(), self._channel(store_id)
        message = TAKEOVER + previous.session
        await self._call("lease", lambda: r.spublish(channel, message))

    async def release_link(self, store_id: str, holder: Holder) -> None:
        r = self._client()
        keys = [self._sk(store_id, "lease"), self._sk(store_id, "rel", holder.session)]
        gone = Holder(holder.node, holder.session, holder.client_id, False)
        args = [holder.encode(), gone.encode(), RELEASED_TTL_S]
        await self._call("lease", lambda: r.eval(RELEASE_LUA, 2, *keys, *args))

    async def link_released(self, store_id: str, holder: Holder) -> bool:
        r = self._client()

        async def check() -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.exists(self._sk(store_id, "rel", holder.session))
            pipe.zscore(self._key, holder.node)
            return list(await pipe.execute())

        released, node_expires = await self._call("lease", check)
        if released:
            return True
        if node_expires is None or float(node_expires) < time.time():
            return True  # its node is gone: nothing delivers to that link any more
        await self._tell_takeover(store_id, holder)  # again: pub/sub may lose a message
        return False
