"""The redis backend's HQ fan-out: every node's HQ screens get every node's deltas.

A delta is appended to the stream ``P:hq`` (trimmed to about ``HQ_MAX_LEN``) in the commit
writer's next pipeline, so publishing costs no round trip of its own. Each node reads the
stream with ``XREAD BLOCK`` on a connection of its own, and only while it has HQ screens;
its own deltas reach its screens the same way.

A class of its own because it shares only the writer's pipeline with the records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from broker.storage.redis_wakeups import RECONNECT_S

log = logging.getLogger(__name__)

HQ_MAX_LEN = 10_000
HQ_BLOCK_MS = 1000


class RedisHq:
    """Deltas waiting for the writer, and the reader of every node's deltas."""

    def __init__(self, key: str, *, wake: Callable[[], None], closed: Callable[[], bool]) -> None:
        self._key = key
        self._wake = wake
        self._closed = closed
        self._out: list[str] = []
        self._listener: Callable[[str], None] | None = None
        self._wanted = asyncio.Event()

    def listen(self, listener: Callable[[str], None]) -> None:
        self._listener = listener

    def watch(self, on: bool) -> None:
        if on:
            self._wanted.set()
        else:
            self._wanted.clear()

    def publish(self, frame: str) -> None:
        """Every node's HQ screens get it (through ``P:hq``), this node's included."""
        if self._closed():
            return
        self._out.append(frame)
        self._wake()

    @property
    def waiting(self) -> bool:
        """Whether deltas wait for the writer."""
        return bool(self._out)

    def take(self) -> list[str]:
        """The waiting deltas, for the writer's next pipeline."""
        out, self._out = self._out, []
        return out

    def add_to(self, pipe: Any, frames: Sequence[str]) -> None:
        for frame in frames:
            pipe.xadd(self._key, {"f": frame}, maxlen=HQ_MAX_LEN, approximate=True)

    async def reader(self, blocking: Any) -> None:
        """HQ deltas from every node, read only while this node has HQ screens."""
        key, last = self._key, "$"
        attempt = 0
        while True:
            if not self._wanted.is_set():
                last = "$"
                await self._wanted.wait()
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
                    if self._listener is not None and self._wanted.is_set():
                        try:
                            self._listener(str(fields["f"]))
                        except Exception:
                            log.exception("hq listener failed")
