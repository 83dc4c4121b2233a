"""A KDS screen's per-connection core (sans-I/O): stream entries in, JSON frames out.

The screen sees its station's active tickets (new / in progress): a ticket that becomes
ready or voided leaves with ``ticket_removed`` (the bump's ack carries the ready ticket,
for the recall list). After each change the station's all-day counts follow with the same
offset when they changed. The expo station gets ``order`` roll-ups instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.storage import Entry, EntryKind
from kitchen.screens import ACTIVE, all_day
from protocol.codec import json_with
from protocol.config import StationConfig
from protocol.messages.kds import AllDay, OrderUpdate, Snapshot, TicketRemoved, TicketUpdate
from protocol.tickets import ExpoOrder, Ticket


class KdsSession:
    def __init__(self, store_id: str, station: StationConfig, timezone: str | None = None) -> None:
        self.store_id = store_id
        self.station = station
        self.timezone = timezone
        """The store's zone, for the screen's clock times (DESIGN.md §8.7)."""
        self.tickets: dict[str, Ticket] = {}
        self.versions: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    @property
    def expo(self) -> bool:
        return self.station.expo

    def load(self, tickets: Iterable[Ticket]) -> None:
        """The station's active tickets as storage has them now."""
        for t in tickets:
            self._remember(t)
        self.counts = all_day(self.tickets.values())

    def snapshot(self, epoch: str, offset: int, orders: Iterable[ExpoOrder] = ()) -> Snapshot:
        tickets = sorted(self.tickets.values(), key=lambda t: (t.created_at, t.ticket_id))
        return Snapshot(
            epoch=epoch,
            offset=offset,
            station=self.station,
            tickets=tuple(tickets),
            orders=tuple(sorted(orders, key=lambda o: o.created_at)),
            all_day=self.counts,
            timezone=self.timezone,
        )

    def frames(self, entry: Entry) -> list[str]:
        """What this screen is sent for one stream entry (often nothing)."""
        if entry.tag != self.station.station_id:
            return []
        if entry.kind is EntryKind.ORDER:
            return [_order_frame(entry)]
        if entry.kind is not EntryKind.TICKET:
            return []
        ticket = Ticket.model_validate_json(entry.payload)
        if self.versions.get(ticket.ticket_id, -1) >= ticket.version:
            return []  # the snapshot had it already
        out = [self._ticket_frame(entry, ticket)]
        counts = all_day(self.tickets.values())
        if counts != self.counts:
            self.counts = counts
            out.append(AllDay(offset=entry.offset, counts=counts).model_dump_json())
        return out

    def replay(self, entries: Iterable[Entry], offset: int) -> list[str]:
        """A resuming screen: the station's entries it missed, then what is newer still.

        ``load`` ran first, so the session may know versions newer than ``offset``; those
        tickets are re-sent at ``offset`` so the screen ends exactly where a snapshot would.
        """
        out: list[str] = []
        sent: dict[str, int] = {}
        for entry in entries:
            if entry.tag != self.station.station_id:
                continue
            if entry.kind is EntryKind.ORDER:
                out.append(_order_frame(entry))
            elif entry.kind is EntryKind.TICKET:
                ticket = Ticket.model_validate_json(entry.payload)
                sent[ticket.ticket_id] = ticket.version
                out.append(self._frame(entry.offset, entry.payload, ticket))
        for t in self.tickets.values():
            if sent.get(t.ticket_id, -1) < t.version:
                out.append(self._frame(offset, t.model_dump_json(), t))
        out.append(AllDay(offset=offset, counts=self.counts).model_dump_json())
        return out

    def _ticket_frame(self, entry: Entry, ticket: Ticket) -> str:
        self._remember(ticket)
        return self._frame(entry.offset, entry.payload, ticket)

    @staticmethod
    def _frame(offset: int, payload: str, ticket: Ticket) -> str:
        if ticket.state in ACTIVE:
            return json_with(TicketUpdate, {"ticket": payload}, offset=offset)
        return json_with(TicketRemoved, {}, offset=offset, ticket_id=ticket.ticket_id)

    def _remember(self, ticket: Ticket) -> None:
        self.versions[ticket.ticket_id] = ticket.version
        if ticket.state in ACTIVE:
            self.tickets[ticket.ticket_id] = ticket
        else:
            self.tickets.pop(ticket.ticket_id, None)


def _order_frame(entry: Entry) -> str:
    """An expo entry's ``order`` frame, around the roll-up as the stream holds it."""
    return json_with(OrderUpdate, {"order": entry.payload}, offset=entry.offset)
