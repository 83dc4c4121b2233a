"""What the broker keeps per order, job, ticket and store (record docs in storage).

These are the broker's private shapes; the wire and REST shapes live in ``protocol``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from protocol.jobs import Job, JobState, JobTransitionRecord
from protocol.messages.hq import Outage
from protocol.orders import Order
from protocol.reports import Measure
from protocol.rest import SubmitResult
from protocol.status import PrinterStatus
from protocol.tickets import Ticket

MAX_REFS = 32  # applied KDS action refs remembered per ticket (idempotency)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Held(_Doc):
    """A scheduled order's tickets and jobs, planned at submit and kept here (not live,
    in no stream) until it fires (docs/kds.md#scheduled-orders)."""

    fire_at: datetime
    tickets: list[Ticket]
    jobs: list[Job]


class Scheduled(_Doc):
    """``Kind.SCHEDULE`` record: live while its order is held. The index each broker's
    scheduler reads at start (order records are never scanned)."""

    order_id: str
    store_id: str
    fire_at: datetime


class OrderRecord(_Doc):
    order_id: str
    store_id: str
    revision: int
    cancelled: bool = False
    order: Order
    """The order as amended so far (voided lines removed)."""
    voided: list[str] = Field(default_factory=list)
    line_station: dict[str, str]
    tickets: dict[str, str]
    """station_id -> ticket_id."""
    jobs: list[str]
    result: SubmitResult
    """The first submit's answer, returned again to repeats."""
    cancel_result: SubmitResult | None = None
    reprints: int = 0
    created_at: datetime
    expo: bool = False
    refs: list[str] = Field(default_factory=list)
    """The last ``MAX_REFS`` amendment refs applied (store edge forwards): each once."""
    held: Held | None = None
    """Set while the order is held: no station or printer has anything of it yet."""
    fired_at: datetime | None = None
    """When a held order fired (its expo timer counts from then)."""


class JobRecord(_Doc):
    job: Job
    store_id: str
    state: JobState
    history: list[JobTransitionRecord]
    offset: int = 0


class JobProgress(_Doc):
    """A ``JobRecord`` read to change its state (acks, job reports, cancels): the job body,
    validated when the order came in, is carried as parsed JSON and written back as it
    was. Validating the body again cost more than the rest of an ack together."""

    job: dict[str, Any]
    store_id: str
    state: JobState
    history: list[JobTransitionRecord]
    offset: int = 0


class TicketRecord(_Doc):
    ticket: Ticket
    refs: list[str] = Field(default_factory=list)
    measured: list[Measure] = Field(default_factory=list)
    """Speed-of-service timings already counted for this ticket: each once
    (``kitchen.sos``, docs/reports.md)."""


class LinkRecord(_Doc):
    store_id: str
    online: bool
    since: datetime
    client_version: str | None = None
    acked: int = 0
    epoch: str | None = None
    node: str | None = None
    """The broker node holding the link (several nodes share a redis backend)."""
    session: str | None = None
    """The connection's id: a link that went down writes offline only if still its own."""
    offline_orders: int = 0
    """What the client's hello said its LAN edge took while it had no link."""
    last_outage: Outage | None = None
    """The last time the store had no link, once it ended (written with the online link)."""


class PrinterRecord(_Doc):
    store_id: str
    printer_id: str
    status: PrinterStatus


def printer_key(store_id: str, printer_id: str) -> str:
    return f"{store_id}/{printer_id}"
