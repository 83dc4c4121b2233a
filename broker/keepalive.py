"""One keepalive for every websocket of a node (``ping_interval``, ``ping_timeout``;
DESIGN.md §5.3).

websockets' own keepalive is a task per connection, each with its coroutine and a timer:
1.9 KiB of every idle link (``bench/link_memory.py``), and 10,000 timers that each wake
the loop once per interval. Here one task pings each open link every ``interval``
seconds, spread over the interval by when the link opened, and closes with 1011
("keepalive ping timeout") a link whose pong has not come ``timeout`` seconds after its
ping, as websockets would. The ping itself is websockets' ``ping()``, in a short task: a
link whose socket does not drain holds up only its own ping (and is then closed for it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from protocol.close_codes import CloseCode

log = logging.getLogger(__name__)

#: How often the keepalive task looks for links due, at most (finer for short intervals).
MAX_TICK_S = 1.0
REASON = "keepalive ping timeout"


class Pinged(Protocol):
    """What the keepalive needs of a connection (websockets' ``ServerConnection``)."""

    @property
    def state(self) -> State: ...

    async def ping(self) -> Awaitable[float]: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class _Ping:
    """A link's ping in flight: sent (``pong`` set) or still waiting to be written."""

    __slots__ = ("failed", "pong")

    def __init__(self) -> None:
        self.pong: asyncio.Future[float] | None = None
        self.failed = False

    def answered(self) -> bool:
        return self.failed or (self.pong is not None and self.pong.done())


class Keepalive:
    """``add`` each link once it is open; ``run`` is the node's one keepalive task."""

    def __init__(
        self, interval: float, timeout: float | None, clock: Callable[[], float] | None = None
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self.tick = min(MAX_TICK_S, interval / 4, (timeout or interval) / 4)
        self._clock = clock or asyncio.get_running_loop().time
        # a heap of (when, seq, link, ping): ping None means "ping it then", else "check
        # that ping was answered then". Links are held weakly: a closed one is freed at
        # once, not one interval later.
        self._due: list[tuple[float, int, weakref.ref[Pinged], _Ping | None]] = []
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._due)

    def add(self, link: Pinged) -> None:
        self._push(self._clock() + self.interval, link, None)

    def _push(self, when: float, link: Pinged, ping: _Ping | None) -> None:
        heapq.heappush(self._due, (when, next(self._seq), weakref.ref(link), ping))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.turn()

    def turn(self) -> None:
        """Ping the links due, and close those whose ping went unanswered."""
        now = self._clock()
        due = self._due
        while due and due[0][0] <= now:
            _, _, ref, ping = heapq.heappop(due)
            link = ref()
            if link is None or link.state is not State.OPEN:
                continue  # closing or closed: it leaves the keepalive here
            if ping is None:
                self._ping(link, now)
            elif ping.answered():
                self._push(now - (self.timeout or 0.0) + self.interval, link, None)
            else:
                log.info("closing a link: %s", REASON)
                self._spawn(self._close(link))

    def _ping(self, link: Pinged, now: float) -> None:
        ping = _Ping()
        self._spawn(self._send(link, ping))
        if self.timeout is None:
            self._push(now + self.interval, link, None)
        else:
            self._push(now + self.timeout, link, ping)

    async def _send(self, link: Pinged, ping: _Ping) -> None:
        try:
            pong = await link.ping()
            assert isinstance(pong, asyncio.Future)  # websockets answers with a future
            ping.pong = pong
        except ConnectionClosed:
            ping.failed = True  # closed meanwhile: the next turn drops it

    @staticmethod
    async def _close(link: Pinged) -> None:
        try:
            await link.close(CloseCode.INTERNAL_ERROR, REASON)
        except ConnectionClosed:
            pass

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)
