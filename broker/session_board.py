"""A pickup board's per-connection core (sans-I/O): stream entries in, JSON frames out.

The board shows order numbers as *preparing* or *ready*, by ``kitchen.pickup``'s rule,
derived from what the store's stream carries already (no write of its own):

- a store **with an expo station**: the expo roll-ups (``order`` entries), each the whole
  order's state: ready once served;
- **without one**: the station tickets (``ticket`` entries). An order's state needs all
  its tickets, so the session keeps the ticket states of the orders it tracks: those
  preparing when it started (loaded whole) and every order it heard of since. A ticket it
  never heard of was ready or voided when the session started (active ones were loaded),
  and would have been heard of had it changed.

It keeps only what is on the board: preparing orders, and ready ones until ``ready_s``
after they turned ready (then the board drops them by itself; no frame). Frames:
``board_order`` when an order appears or changes state, ``board_removed`` when it leaves
early (cancelled). Nothing about items, notes or (unless ``board.names``) names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from broker.storage import Entry, EntryKind
from kitchen.pickup import pickup_number, pickup_state, stations_pickup_state
from protocol.config import BoardConfig, VersionedStoreConfig
from protocol.messages.board import (
    BoardOrder,
    BoardRemoved,
    BoardSnapshot,
    BoardUpdate,
    PickupState,
)
from protocol.orders import Service
from protocol.tickets import ExpoOrder, Ticket, TicketOrder, TicketState

#: How often (seconds of the entries' clock) ready orders past ``ready_s`` are forgotten.
PRUNE_EVERY_S = 30.0


@dataclass(slots=True)
class Tracked:
    """An order the session follows: on the board, or (no expo) known by its tickets."""

    number: str
    name: str | None
    state: PickupState
    since: datetime
    version: int = -1
    """The expo roll-up's version (expo stores)."""
    tickets: dict[str, tuple[TicketState, int]] = field(default_factory=dict)
    """ticket_id -> (state, version) (stores without an expo)."""


#: (order_id, the order as the board has it now or None when it is not on it, changed?)
Seen = tuple[str, Tracked | None, bool]


class BoardSession:
    def __init__(self, store_id: str, title: str, expo: bool, board: BoardConfig) -> None:
        self.store_id = store_id
        self.title = title
        self.expo = expo
        self.board = board
        self.orders: dict[str, Tracked] = {}
        self.started = False
        self._pruned_at: datetime | None = None

    @classmethod
    def for_config(cls, store_id: str, config: VersionedStoreConfig) -> BoardSession:
        expo = any(s.expo for s in config.stations)
        return cls(store_id, config.name, expo, config.board or BoardConfig())

    # -- start: recent history, then what is live now ----------------------------------------
    def start(
        self,
        window: Iterable[Entry],
        live: Iterable[ExpoOrder] | Iterable[Ticket],
        epoch: str,
        offset: int,
        now: datetime,
    ) -> BoardSnapshot:
        """The snapshot: ``window`` is the stream up to ``offset`` the broker looked back
        over (ready and cancelled orders are found there), ``live`` the store's live expo
        roll-ups (expo) or every ticket of each order with an active ticket (no expo), read
        after ``offset`` was: they win over the window."""
        gone: set[str] = set()  # left the board (or never were on it) in the window
        for entry in window:
            seen = self._apply(entry, now)
            if seen is not None:
                order_id, tracked, _ = seen
                (gone.add if tracked is None else gone.discard)(order_id)
        self._load(live, now)
        self.started = True
        self._prune(now, force=True)
        gone -= self.orders.keys()
        shown = sorted(self.orders.items(), key=lambda kv: (kv[1].since, kv[0]))
        return BoardSnapshot(
            epoch=epoch,
            offset=offset,
            now=now,
            title=self.title,
            ready_s=self.board.ready_s,
            preparing=tuple(self._view(k, t) for k, t in shown if t.state is PickupState.PREPARING),
            ready=tuple(self._view(k, t) for k, t in shown if t.state is PickupState.READY),
            gone=tuple(sorted(gone)),
        )

    def _load(self, live: Iterable[ExpoOrder] | Iterable[Ticket], now: datetime) -> None:
        """Live records say what is preparing now; an order the window left preparing
        that they do not list changed since (its entry is on its way)."""
        for order_id in [k for k, t in self.orders.items() if t.state is PickupState.PREPARING]:
            del self.orders[order_id]
        by_order: dict[str, list[Ticket]] = {}
        for record in live:
            if isinstance(record, ExpoOrder):
                self._roll(record, now)
            else:
                by_order.setdefault(record.order_id, []).append(record)
        for order_id, tickets in by_order.items():
            self.orders.pop(order_id, None)  # loaded whole: what the window knew is older
            for t in tickets:
                self._ticket(t, now)

    # -- live entries ------------------------------------------------------------------------
    def frames(self, entry: Entry, now: datetime) -> list[str]:
        """What the board is sent for one stream entry (usually nothing)."""
        seen = self._apply(entry, now)
        self._prune(now)
        if seen is None or not seen[2]:
            return []
        order_id, tracked, _ = seen
        if tracked is None:
            return [BoardRemoved(offset=entry.offset, order_id=order_id).model_dump_json()]
        order = self._view(order_id, tracked)
        return [BoardUpdate(offset=entry.offset, order=order).model_dump_json()]

    def outdated_by(self, entry: Entry) -> bool:
        """A config entry that changes what this board shows or how (expo station added
        or removed, ``board`` settings, the store's name): the board should start again."""
        if entry.kind is not EntryKind.CONFIG:
            return False
        config = VersionedStoreConfig.model_validate_json(entry.payload)
        fresh = BoardSession.for_config(self.store_id, config)
        return (fresh.expo, fresh.board, fresh.title) != (self.expo, self.board, self.title)

    def _apply(self, entry: Entry, now: datetime) -> Seen | None:
        """The order an entry is about, as the board now has it, and whether that
        changed; None for an entry the board does not follow, or an older one."""
        if self.expo and entry.kind is EntryKind.ORDER:
            return self._roll(ExpoOrder.model_validate_json(entry.payload), now)
        if not self.expo and entry.kind is EntryKind.TICKET:
            return self._ticket(Ticket.model_validate_json(entry.payload), now)
        return None

    def _roll(self, roll: ExpoOrder, now: datetime) -> Seen | None:
        known = self.orders.get(roll.order_id)
        if known is not None and known.version >= roll.version:
            return None
        state = pickup_state(roll.state, expo=True)
        since = (roll.served_at or now) if state is PickupState.READY else roll.created_at
        seen = self._set(roll.order_id, roll.order, state, since)
        if seen[1] is not None:
            seen[1].version = roll.version
        return seen

    def _ticket(self, ticket: Ticket, now: datetime) -> Seen | None:
        known = self.orders.get(ticket.order_id)
        tickets = dict(known.tickets) if known is not None else {}
        had = tickets.get(ticket.ticket_id)
        if had is not None and had[1] >= ticket.version:
            return None
        tickets[ticket.ticket_id] = (ticket.state, ticket.version)
        state = stations_pickup_state(s for s, _ in tickets.values())
        since = (ticket.bumped_at or now) if state is PickupState.READY else ticket.created_at
        seen = self._set(ticket.order_id, ticket.order, state, since)
        if seen[1] is not None:
            seen[1].tickets = tickets
        return seen

    def _set(
        self, order_id: str, order: TicketOrder, state: PickupState | None, since: datetime
    ) -> Seen:
        """Record the order's new state (None: not on the board)."""
        if state is not None and not self._wanted(order.service):
            state = None
        known = self.orders.get(order_id)
        if state is None:
            if known is None:
                return order_id, None, False
            del self.orders[order_id]
            return order_id, None, True
        if known is not None and known.state is state:
            return order_id, known, False
        name = order.customer if self.board.names else None
        tracked = Tracked(pickup_number(order, order_id), name, state, since)
        if known is not None:
            tracked.version = known.version
        self.orders[order_id] = tracked
        return order_id, tracked, True

    def _wanted(self, service: Service) -> bool:
        return not self.board.services or service in self.board.services

    def _prune(self, now: datetime, force: bool = False) -> None:
        """Forget ready orders the board has dropped by now (``ready_s`` after ``since``)."""
        if not force and self._pruned_at is not None:
            if (now - self._pruned_at).total_seconds() < PRUNE_EVERY_S:
                return
        self._pruned_at = now
        cutoff = now - timedelta(seconds=self.board.ready_s)
        for order_id in [
            k for k, t in self.orders.items() if t.state is PickupState.READY and t.since <= cutoff
        ]:
            del self.orders[order_id]

    @staticmethod
    def _view(order_id: str, t: Tracked) -> BoardOrder:
        return BoardOrder(
            order_id=order_id, number=t.number, state=t.state, since=t.since, name=t.name
        )
