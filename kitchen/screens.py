"""What a station's screen shows (DESIGN.md §3): its active tickets, and the all-day counts
of what is not ready yet. The broker's screens and the store edge's local ones use these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from protocol.tickets import LineState, Ticket, TicketState

#: Tickets a station's screen shows; ready and voided ones leave it.
ACTIVE = (TicketState.NEW, TicketState.IN_PROGRESS)
PENDING_LINES = (LineState.NEW, LineState.IN_PROGRESS)


def all_day(tickets: Iterable[Ticket]) -> dict[str, int]:
    """Item name -> quantity not yet ready at this station."""
    counts: Counter[str] = Counter()
    for t in tickets:
        for line in t.lines:
            if line.state in PENDING_LINES:
                counts[line.name] += line.qty
    return dict(counts)
