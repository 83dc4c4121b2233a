"""The expo view of an order and its one roll-up rule (DESIGN.md §3).

An order is ready when every station's ticket that is not voided is ready; with none
left, it is cancelled; served and cancelled are final. Orders (submit, amend, cancel) and
KDS actions both roll up through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from kitchen.routing import ticket_order
from protocol.orders import Order
from protocol.tickets import ExpoOrder, ExpoState, ExpoStation, Ticket, TicketState

#: Expo states a change of a station's ticket may still move.
OPEN_STATES = (ExpoState.OPEN, ExpoState.READY)
#: Expo states an expo screen lists (its snapshot holds the orders in these).
LISTED_STATES = (ExpoState.SCHEDULED, *OPEN_STATES)


class ExpoSource(Protocol):
    """What the roll-up reads of an order (the broker's ``OrderRecord``)."""

    @property
    def order_id(self) -> str: ...
    @property
    def store_id(self) -> str: ...
    @property
    def order(self) -> Order: ...
    @property
    def cancelled(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


def expo_state(
    station_states: Iterable[TicketState], cancelled: bool = False, served: bool = False
) -> ExpoState:
    """The one roll-up rule: ready when every live station ticket is; none live, cancelled."""
    live = [s for s in station_states if s is not TicketState.VOIDED]
    if cancelled or not live:
        return ExpoState.CANCELLED
    if served:
        return ExpoState.SERVED
    return ExpoState.READY if all(s is TicketState.READY for s in live) else ExpoState.OPEN


def expo_roll_up(
    rec: ExpoSource,
    tickets: list[Ticket],
    version: int,
    served: bool,
    created_at: datetime | None = None,
) -> ExpoOrder:
    """The expo view of an order: each station's ticket state, ready when all are.
    ``created_at``: when the order reached the stations, if not at ``rec.created_at``
    (a scheduled order: when it fired), so the expo's timer counts from then."""
    state = expo_state((t.state for t in tickets), cancelled=rec.cancelled, served=served)
    return ExpoOrder(
        order_id=rec.order_id,
        store_id=rec.store_id,
        version=version,
        state=state,
        priority=rec.order.priority,
        created_at=created_at or rec.created_at,
        order=tickets[0].order if tickets else ticket_order(rec.order),
        stations=tuple(
            ExpoStation(station_id=t.station_id, ticket_id=t.ticket_id, state=t.state)
            for t in tickets
        ),
    )


def with_ticket(expo: ExpoOrder, ticket: Ticket) -> ExpoOrder:
    """``expo`` after one station's ticket changed state (a KDS action); served and
    cancelled orders keep their state."""
    stations = tuple(
        s.model_copy(update={"state": ticket.state}) if s.ticket_id == ticket.ticket_id else s
        for s in expo.stations
    )
    state = expo.state
    if state in OPEN_STATES:
        state = expo_state(s.state for s in stations)
    return expo.model_copy(
        update={"stations": stations, "state": state, "version": expo.version + 1}
    )


def scheduled_roll_up(
    rec: ExpoSource, tickets: list[Ticket], version: int, fire_at: datetime
) -> ExpoOrder:
    """The expo view of an order held until ``fire_at``: the stations it will go to,
    each ``new``; state ``scheduled`` (``cancelled`` once cancelled)."""
    roll = expo_roll_up(rec, tickets, version, served=False)
    if roll.state is ExpoState.CANCELLED:
        return roll
    return roll.model_copy(update={"state": ExpoState.SCHEDULED, "fire_at": fire_at})
