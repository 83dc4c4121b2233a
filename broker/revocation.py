"""Token revocation on one broker node (DESIGN.md §8.3–§8.5, docs/security.md).

``Revocations`` is this node's copy of the deny-list kept in storage
(``broker.storage.denylist``): the token cache asks it on every use (a set lookup), so a
revoked token gets 401 at once on the node that revoked it and within ``REFRESH_S`` on the
others, whoever wrote the entry (another node, ``passline token revoke``).

``run(sweep)`` is the node's one task for it: refresh the copy, then ``sweep(now)`` — the
websocket server closes every socket whose token was revoked or has expired meanwhile
(4501). No task, timer or storage read per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from broker.errors import StorageError
from broker.storage import DenyList

log = logging.getLogger(__name__)

#: How often a node reads the deny-list and checks its open sockets' tokens.
REFRESH_S = 1.0


class Revocations:
    def __init__(self, denylist: DenyList, clock: Callable[[], float] = time.time) -> None:
        self._denylist = denylist
        self._clock = clock
        self._until: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._failing = False
        self.generation = 0
        """Bumped whenever a token is added to this node's copy: sockets need a full
        check only then (expiry is watched apart)."""

    def revoked(self, jti: str) -> bool:
        return jti in self._until

    async def revoke(self, jti: str, until: int) -> None:
        """Deny ``jti`` until ``until`` (unix seconds) on every node; on this one at once."""
        await self._denylist.deny(jti, until)
        if jti not in self._until:
            self.generation += 1
        self._until[jti] = max(until, self._until.get(jti, 0))
        self._changed.set()

    async def refresh(self) -> None:
        now = self._clock()
        fresh = await self._denylist.denied(now)
        # Entries leave the list only by expiring: what this node added while the read was
        # on its way stays, whatever the read saw.
        kept = {jti: until for jti, until in self._until.items() if until > now}
        if fresh.keys() - kept.keys():
            self.generation += 1
        kept.update(fresh)
        self._until = kept

    async def run(self, sweep: Callable[[float, bool], None], every_s: float = REFRESH_S) -> None:
        """Refresh, then ``sweep(now, revoked_changed)``, every ``every_s`` or on a revoke."""
        swept = -1
        while True:
            await self._refresh_or_keep()
            sweep(self._clock(), self.generation != swept)
            swept = self.generation
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every_s):
                    await self._changed.wait()

    async def _refresh_or_keep(self) -> None:
        """Storage down: the last list read still holds (logged once per outage)."""
        try:
            await self.refresh()
        except StorageError as exc:
            if not self._failing:
                log.warning("deny-list not refreshed, the last one read holds: %s", exc.detail)
            self._failing = True
            return
        if self._failing:
            log.info("deny-list read again")
        self._failing = False
