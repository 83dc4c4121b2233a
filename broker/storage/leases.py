"""One store link per store across the fleet (DESIGN.md §5.3, §8.2): the link lease.

The newest ``hello`` for a store takes the lease. The link it replaces is closed with
4503 by whichever node holds it: at once on this node, through the store's wake-up
channel on another (redis), and the new link waits — bounded — until the old one has let
go before it sends anything, so two links never deliver a store's jobs at once.

The lease also remembers which client (``hello.client_id``) held the store last: the
stream is replayed only to that client; any other gets a snapshot of live jobs, since a
replay from another PC's position would resend what the first PC already printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: How long a new link waits for a replaced link on another node to close.
RELEASE_WAIT_S = 5.0
#: A released mark outlives any wait for it.
RELEASED_TTL_S = 60


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or last held) a store's link."""

    node: str
    session: str
    client_id: str | None
    live: bool = True

    def encode(self) -> str:
        live = "1" if self.live else "0"
        return "\x1f".join((self.node, self.session, self.client_id or "", live))

    @classmethod
    def decode(cls, raw: str | None) -> Holder | None:
        if not raw:
            return None
        node, session, client, live = [*raw.split("\x1f"), "", "", "", ""][:4]
        return cls(node, session, client or None, live == "1")

    def same_client(self, client_id: str | None) -> bool:
        """Unknown on either side counts as the same (an older client sends no id)."""
        return self.client_id is None or client_id is None or self.client_id == client_id


class Leases(Protocol):
    async def claim_link(self, store_id: str, holder: Holder) -> Holder | None:
        """Make ``holder`` the store's one link; returns the previous holder (live or
        not), after telling its node to close it."""
        ...

    async def release_link(self, store_id: str, holder: Holder) -> None:
        """``holder``'s link ended: mark it released (and the lease free if still its)."""
        ...

    async def link_released(self, store_id: str, holder: Holder) -> bool:
        """Whether a replaced ``holder`` has let go, or its node is gone."""
        ...

    def listen_takeover(self, listener: TakeoverListener) -> None:
        """Set the function told when another node took over a store this node holds."""
        ...


class TakeoverListener(Protocol):
    def __call__(self, store_id: str, session: str) -> None: ...


class InProcessLeases:
    """One node: the lease is a dict; a replaced link is closed in place by the caller."""

    _lease_table: dict[str, Holder] | None = None

    def _table(self) -> dict[str, Holder]:
        if self._lease_table is None:
            self._lease_table = {}
        return self._lease_table

    async def claim_link(self, store_id: str, holder: Holder) -> Holder | None:
        previous = self._table().get(store_id)
        self._table()[store_id] = holder
        return previous

    async def release_link(self, store_id: str, holder: Holder) -> None:
        if self._table().get(store_id) == holder:
            self._table()[store_id] = Holder(holder.node, holder.session, holder.client_id, False)

    async def link_released(self, store_id: str, holder: Holder) -> bool:
        return True  # one node: the replaced link was closed in place

    def listen_takeover(self, listener: TakeoverListener) -> None:
        """Nothing arrives from other nodes."""
