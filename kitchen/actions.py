"""KDS actions on a ticket or an expo order (DESIGN.md §3, §5.3): the rules, no storage.

The caller loads the ticket or order, checks the screen's station and the action's ``ref``
(idempotency) and version, applies the action here and writes the result.
"""

from __future__ import annotations

from datetime import datetime

from kitchen.errors import ActionRefused, StaleVersion
from protocol.errors import TransitionError
from protocol.messages.common import ErrorCode
from protocol.messages.kds import (
    Bump,
    BumpLine,
    Fire,
    KdsAction,
    Prioritize,
    Recall,
    Serve,
    Start,
)
from protocol.orders import Priority
from protocol.tickets import (
    ExpoOrder,
    ExpoState,
    LineAction,
    Ticket,
    TicketLine,
    TicketState,
    line_transition,
    ticket_state,
)

_LINE_ACTIONS = {Start: LineAction.START, Bump: LineAction.BUMP, Recall: LineAction.RECALL}


def check_station(ticket: Ticket, station_id: str, expo: bool) -> None:
    """A station acts on its own tickets; expo acts on every station's."""
    if ticket.station_id != station_id and not expo:
        raise ActionRefused(ErrorCode.FORBIDDEN, "this ticket belongs to another station")


def apply_action(ticket: Ticket, action: KdsAction, now: datetime) -> Ticket:
    """The ticket after ``action``: ``TransitionError`` when no line may move,
    ``ActionRefused`` for a line the ticket does not have."""
    assert not isinstance(action, Serve | Fire)
    lines = [ln.model_copy(update={"change": None}) for ln in ticket.lines]
    priority = ticket.priority
    if isinstance(action, Prioritize):
        priority = Priority.NORMAL if priority is Priority.RUSH else Priority.RUSH
    elif isinstance(action, BumpLine):
        n = next((i for i, ln in enumerate(lines) if ln.line_id == action.line_id), None)
        if n is None:
            raise ActionRefused(ErrorCode.NOT_FOUND, f"no line {action.line_id!r} on this ticket")
        lines[n] = _move(lines[n], LineAction.BUMP)
    else:
        lines = _move_all(lines, _LINE_ACTIONS[type(action)])
    state = ticket_state(lines)
    bumped_at = now if state is TicketState.READY else None
    return ticket.model_copy(
        update={
            "lines": tuple(lines),
            "priority": priority,
            "state": state,
            "version": ticket.version + 1,
            "bumped_at": bumped_at,
        }
    )


def _move(line: TicketLine, action: LineAction) -> TicketLine:
    return line.model_copy(update={"state": line_transition(line.state, action)})


def _move_all(lines: list[TicketLine], action: LineAction) -> list[TicketLine]:
    """Apply to every line that allows it; refuse when none does."""
    moved = 0
    out = []
    for line in lines:
        try:
            out.append(_move(line, action))
            moved += 1
        except TransitionError:
            out.append(line)
    if action is not LineAction.VOID and moved == 0:
        states = sorted({ln.state.value for ln in lines})
        raise TransitionError("ticket", "/".join(states), action.value, frozenset())
    return out


def check_serves(expo_station: bool) -> None:
    """Only the expo station serves orders."""
    if not expo_station:
        raise ActionRefused(ErrorCode.FORBIDDEN, "only the expo station serves orders")


def check_fires(expo_station: bool) -> None:
    """Only the expo station fires scheduled orders early (a station sees none)."""
    if not expo_station:
        raise ActionRefused(ErrorCode.FORBIDDEN, "only the expo station fires orders")


def serve(expo: ExpoOrder, seen_version: int, now: datetime | None = None) -> ExpoOrder | None:
    """The order served (at ``now``: its ``served_at``), or None when this serve was
    already applied (a repeat of the screen's own serve, at the version it saw or the one
    it made).

    ``ActionRefused`` for an order not ready; ``StaleVersion`` when the screen saw an older
    version.
    """
    if expo.state is ExpoState.SERVED and seen_version in (expo.version, expo.version - 1):
        return None
    if seen_version != expo.version:
        raise StaleVersion()
    if expo.state is not ExpoState.READY:
        raise ActionRefused(
            ErrorCode.ILLEGAL_TRANSITION, f"order is {expo.state.value}, expected ready"
        )
    return expo.model_copy(
        update={"state": ExpoState.SERVED, "version": expo.version + 1, "served_at": now}
    )
