"""Station tickets, their line states, and the expo roll-up (DESIGN.md §3, §5.3)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from protocol.base import Frozen, Ident, Note, Text, Timestamp, Version
from protocol.orders import ChannelName, ExternalId, Modifier, Priority, Service, Short


class LineState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    READY = "ready"
    VOIDED = "voided"


class LineAction(StrEnum):
    START = "start"
    BUMP = "bump"
    RECALL = "recall"
    VOID = "void"


class TicketState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    READY = "ready"
    VOIDED = "voided"


class LineChangeKind(StrEnum):
    """How the last amendment touched a line; screens highlight it until seen."""

    ADDED = "added"
    CHANGED = "changed"
    VOIDED = "voided"


class ExpoState(StrEnum):
    SCHEDULED = "scheduled"  # held until ``fire_at``: no station has it yet
    OPEN = "open"  # some station still working
    READY = "ready"  # every live ticket ready: expo may serve
    SERVED = "served"  # expo bumped it
    CANCELLED = "cancelled"


class TicketOrder(Frozen):
    """The parts of the order a station needs to see."""

    channel: ChannelName
    service: Service
    external_id: ExternalId | None = None
    pickup_code: Short | None = None
    table: Short | None = None
    customer: Text | None = None
    note: Note | None = None
    placed_at: Timestamp
    due_at: Timestamp | None = None


class TicketLine(Frozen):
    line_id: Ident
    name: Text
    qty: int = Field(ge=1)
    modifiers: tuple[Modifier, ...] = ()
    note: Note | None = None
    allergens: tuple[Short, ...] = ()
    course: int = Field(default=1, ge=1, le=9)
    state: LineState = LineState.NEW
    change: LineChangeKind | None = None


class Ticket(Frozen):
    """One order's lines for one station."""

    ticket_id: Ident
    order_id: Ident
    store_id: Ident
    station_id: Ident
    version: Version
    """Bumped by every change; actions carry the version they saw."""
    state: TicketState
    priority: Priority = Priority.NORMAL
    created_at: Timestamp
    order: TicketOrder
    lines: tuple[TicketLine, ...]
    revision: int = Field(default=1, ge=1)
    """Order revision this ticket reflects."""
    bumped_at: Timestamp | None = None
    """When the ticket became ready; recall lists the most recent ones."""


class ExpoStation(Frozen):
    station_id: Ident
    ticket_id: Ident
    state: TicketState


class ExpoOrder(Frozen):
    """An order rolled up across its tickets, for the expo screen."""

    order_id: Ident
    store_id: Ident
    version: Version
    state: ExpoState
    priority: Priority = Priority.NORMAL
    created_at: Timestamp
    order: TicketOrder
    stations: tuple[ExpoStation, ...]
    """Each station's ticket; a scheduled order lists the tickets it will make (``new``)."""
    fire_at: Timestamp | None = None
    """Set while the order is ``scheduled``: when it goes to the stations and printers."""
    served_at: Timestamp | None = None
    """When expo served (bumped) it: the order is ready for the guest from then on."""


# (state, action) -> next state. Anything not listed is refused.
LINE_TRANSITIONS: dict[tuple[LineState, LineAction], LineState] = {
    (LineState.NEW, LineAction.START): LineState.IN_PROGRESS,
    (LineState.NEW, LineAction.BUMP): LineState.READY,
    (LineState.IN_PROGRESS, LineAction.BUMP): LineState.READY,
    (LineState.READY, LineAction.RECALL): LineState.IN_PROGRESS,
    (LineState.NEW, LineAction.VOID): LineState.VOIDED,
    (LineState.IN_PROGRESS, LineAction.VOID): LineState.VOIDED,
    (LineState.READY, LineAction.VOID): LineState.VOIDED,
}


def line_transition(state: LineState, action: LineAction) -> LineState:
    """The line state after ``action``, or ``TransitionError``."""
    from protocol.errors import TransitionError

    try:
        return LINE_TRANSITIONS[(state, action)]
    except KeyError:
        allowed = frozenset(a.value for (s, a) in LINE_TRANSITIONS if s == state)
        raise TransitionError("line", state.value, action.value, allowed) from None


def ticket_state(lines: tuple[TicketLine, ...] | list[TicketLine]) -> TicketState:
    """A ticket is ready when all its live lines are; voided when none is live."""
    live = [line.state for line in lines if line.state != LineState.VOIDED]
    if not live:
        return TicketState.VOIDED
    if all(s == LineState.READY for s in live):
        return TicketState.READY
    if all(s == LineState.NEW for s in live):
        return TicketState.NEW
    return TicketState.IN_PROGRESS
