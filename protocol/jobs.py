"""Print jobs, the ticket document they carry, and the job state machine (DESIGN.md §3)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from protocol.base import Frozen, Ident, Note, Text, Timestamp
from protocol.errors import TransitionError
from protocol.orders import ChannelName, Modifier, Priority, Service, Short, Template
from protocol.tickets import LineChangeKind
from protocol.timezones import ZoneName


class JobState(StrEnum):
    QUEUED = "queued"  # accepted and durable at the broker
    SENT = "sent"  # in the store's stream
    SPOOLED = "spooled"  # the store client has it durably
    PRINTING = "printing"
    PRINTED = "printed"  # end-of-job barrier confirmed
    UNCERTAIN = "uncertain"  # bytes written, no confirmation: never auto-reprinted
    HELD = "held"  # printer not ready; waits
    REROUTED = "rerouted"  # moved to the backup printer (then prints there)
    EXPIRED = "expired"  # past expires_at when the printer came back
    FAILED = "failed"
    CANCELLED = "cancelled"


_S = JobState
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _S.QUEUED: frozenset({_S.SENT, _S.CANCELLED, _S.EXPIRED, _S.FAILED}),
    _S.SENT: frozenset({_S.SPOOLED, _S.CANCELLED, _S.EXPIRED, _S.FAILED}),
    _S.SPOOLED: frozenset({_S.PRINTING, _S.HELD, _S.REROUTED, _S.EXPIRED, _S.FAILED, _S.CANCELLED}),
    _S.PRINTING: frozenset({_S.PRINTED, _S.UNCERTAIN, _S.FAILED, _S.HELD}),
    _S.HELD: frozenset({_S.PRINTING, _S.REROUTED, _S.EXPIRED, _S.FAILED, _S.CANCELLED}),
    _S.REROUTED: frozenset({_S.PRINTING, _S.HELD, _S.EXPIRED, _S.FAILED, _S.CANCELLED}),
    _S.PRINTED: frozenset(),
    _S.UNCERTAIN: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}
TERMINAL_JOB_STATES = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)


#: A job state's reason as it is kept: ``JobTransitionRecord.reason`` is ``Text`` (200
#: characters), the tightest limit on its way (``JobStateReport.reason`` allows 500).
MAX_JOB_REASON_CHARS = 200


def clip_job_reason(reason: str | None) -> str | None:
    """``reason`` cut to ``MAX_JOB_REASON_CHARS`` (an ellipsis marks the cut); an empty
    one becomes None. Reasons quote error texts of any length (a printer driver's, an
    OS's): a too-long one must shorten the report, never make it invalid."""
    if not reason:
        return None
    if len(reason) <= MAX_JOB_REASON_CHARS:
        return reason
    return reason[: MAX_JOB_REASON_CHARS - 1].rstrip() + "…"


def job_transition(current: JobState, target: JobState) -> JobState:
    """``target`` if the job may move there from ``current``, else ``TransitionError``."""
    allowed = JOB_TRANSITIONS[current]
    if target not in allowed:
        raise TransitionError(
            "job", current.value, target.value, frozenset(s.value for s in allowed)
        )
    return target


class DocLine(Frozen):
    """A line as it goes on paper."""

    qty: int = Field(ge=0)
    name: Text
    modifiers: tuple[Modifier, ...] = ()
    note: Note | None = None
    allergens: tuple[Short, ...] = ()
    course: int = Field(default=1, ge=1, le=9)
    change: LineChangeKind | None = None
    """Set on delta and void chits: ``+ ADD`` / ``~ CHANGE`` / ``VOID``."""


class TicketDoc(Frozen):
    """The structured document a store client renders with its printer's profile.

    Rendering happens at the store so online and offline printing look the same.
    """

    template: Template
    store_name: Text | None = None
    station: Text | None = None
    """Station name for kitchen/label/delta/void chits."""
    order_ref: Short
    """The big number on the chit: pickup code, else the channel's order number."""
    channel: ChannelName
    service: Service
    table: Short | None = None
    customer: Text | None = None
    guests: int | None = Field(default=None, ge=1)
    note: Note | None = None
    placed_at: Timestamp
    due_at: Timestamp | None = None
    timezone: ZoneName | None = None
    """The store's IANA zone: ``placed_at`` and ``due_at`` print on its wall clock. None
    (a job made before stores had zones): each time as its own offset says."""
    priority: Priority = Priority.NORMAL
    revision: int = Field(default=1, ge=1)
    reprint: bool = False
    rerouted_from: Text | None = None
    """Set by the store client when a job moves to a backup printer."""
    pickup_code: Short | None = None
    """Printed as a QR code on receipts."""
    lines: tuple[DocLine, ...] = Field(min_length=1)


class Job(Frozen):
    """A print job as it travels to the store client (DESIGN.md §5.3)."""

    job_id: Ident
    order_id: Ident
    revision: int = Field(ge=1)
    printer_id: Ident
    template: Template
    doc: TicketDoc
    copies: int = Field(default=1, ge=1, le=10)
    created_at: Timestamp
    expires_at: Timestamp


class JobTransitionRecord(Frozen):
    """One entry of a job's state history."""

    state: JobState
    at: Timestamp
    reason: Text | None = None
    printer_id: Ident | None = None
