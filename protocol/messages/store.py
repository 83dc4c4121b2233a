"""Store link messages, ``/v1/ws/store`` (msgpack)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from protocol.base import Epoch, Frozen, Ident, Offset, StreamPosition, Text, Timestamp
from protocol.config import VersionedStoreConfig
from protocol.jobs import Job, JobState
from protocol.messages.common import ErrorCode, Reason, Ref
from protocol.messages.kds import KdsAction
from protocol.orders import Amendment, CancelRequest, Order
from protocol.status import PrinterStatus
from protocol.version import PROTOCOL_VERSION


class Hello(Frozen):
    """client → broker, first message."""

    type: Literal["hello"] = "hello"
    store_id: Ident
    client_version: Text
    protocol: int = PROTOCOL_VERSION
    resume: StreamPosition | None = None
    printers: tuple[Ident, ...] = ()
    client_id: Ident | None = None
    """A random id kept in the client's spool: the same PC keeps it across restarts, a
    new PC (or a wiped spool) has another. The broker replays only to the client that
    held the store last; any other gets a snapshot (DESIGN.md §8.2)."""
    clock: Timestamp | None = None
    """The client's wall clock when it sent hello: the broker records the skew."""
    offline_orders: int = Field(default=0, ge=0)
    """Orders the client's LAN edge took while it had no link, not yet told to a broker:
    HQ shows them with the outage (DESIGN.md §8.6)."""


class Welcome(Frozen):
    """broker → client. ``offset`` is the stream head; ``jobs`` holds every live job when
    ``recovered`` is false, else it is empty and the missed messages follow."""

    type: Literal["welcome"] = "welcome"
    epoch: Epoch
    offset: Offset
    recovered: bool
    config: VersionedStoreConfig | None
    jobs: tuple[Job, ...] = ()
    paged: bool = False
    """True with ``recovered`` false: the live jobs follow in ``snapshot`` frames, ended
    by ``snapshot_end`` (DESIGN.md §8.2); ``jobs`` is then empty."""
    now: Timestamp | None = None
    """The broker's clock: the client measures its own clock's offset from it."""


class SnapshotPage(Frozen):
    """broker → client after a paged welcome: a page of live jobs, stream order."""

    type: Literal["snapshot"] = "snapshot"
    jobs: tuple[Job, ...]


class SnapshotEnd(Frozen):
    """broker → client: the paged snapshot is complete; ``count`` jobs were sent. The
    client spools the pages, cancels spooled jobs absent from them, then acks
    ``offset`` (the welcome's head)."""

    type: Literal["snapshot_end"] = "snapshot_end"
    offset: Offset
    count: int = Field(ge=0)


class ReportsAck(Frozen):
    """broker → client: every report up to ``seq`` is applied (or refused for good)."""

    type: Literal["reports_ack"] = "reports_ack"
    seq: int = Field(ge=0)


class JobMessage(Frozen):
    type: Literal["job"] = "job"
    offset: Offset
    job: Job


class CancelJob(Frozen):
    type: Literal["cancel"] = "cancel"
    offset: Offset
    job_id: Ident


class ConfigMessage(Frozen):
    type: Literal["config"] = "config"
    offset: Offset
    config: VersionedStoreConfig


class Ack(Frozen):
    """client → broker: everything up to ``offset`` is durable in the spool."""

    type: Literal["ack"] = "ack"
    offset: Offset


class JobStateReport(Frozen):
    type: Literal["job_state"] = "job_state"
    job_id: Ident
    state: JobState
    reason: Reason | None = None
    at: Timestamp
    printer_id: Ident | None = None
    """The printer that handled it (differs from the job's after a reroute)."""
    status: PrinterStatus | None = None
    seq: int | None = Field(default=None, ge=1)
    """The client's report sequence (its outbox id): the broker applies reports in
    ``seq`` order and answers ``reports_ack``; unacked reports are sent again."""


class LanOrder(Frozen):
    """client → broker: an order the store's LAN edge took and printed (DESIGN.md §8.6),
    forwarded in the same ``seq`` sequence as job reports (one outbox, one order). The
    broker submits it as if it came over REST (idempotent: the same ids, so the jobs it
    makes are the ones the store already spooled) and answers ``reports_ack``."""

    type: Literal["lan_order"] = "lan_order"
    order: Order
    taken_at: Timestamp
    """When the edge took it (the broker's time as the store client knows it)."""
    seq: int | None = Field(default=None, ge=1)


class LanAmend(Frozen):
    """client → broker: an amendment the LAN edge applied to an order it took (and printed
    as delta chits), forwarded like ``lan_order``. ``ref`` names it: the broker applies
    each ``ref`` once, however often it is sent."""

    type: Literal["lan_amend"] = "lan_amend"
    order_id: Ident
    amendment: Amendment
    ref: Ref
    taken_at: Timestamp
    seq: int | None = Field(default=None, ge=1)


class LanCancel(Frozen):
    """client → broker: an order the LAN edge cancelled (its void chits printed)."""

    type: Literal["lan_cancel"] = "lan_cancel"
    order_id: Ident
    cancel: CancelRequest = CancelRequest()
    taken_at: Timestamp
    seq: int | None = Field(default=None, ge=1)


class EdgeKdsAction(Frozen):
    """client → broker: an action a kitchen screen took on the store edge while the store
    had no uplink, forwarded in the outbox sequence. The broker applies it to the ticket as
    it is now (the version the screen saw was the edge's); its ``ref`` keeps it to once."""

    type: Literal["kds_action"] = "kds_action"
    station_id: Ident
    action: KdsAction
    taken_at: Timestamp
    seq: int | None = Field(default=None, ge=1)


class PrinterStatusReport(Frozen):
    type: Literal["printer_status"] = "printer_status"
    printer_id: Ident
    status: PrinterStatus


class Error(Frozen):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: Reason
    ref: Ref | None = None


StoreClientMessage = Annotated[
    Hello
    | Ack
    | JobStateReport
    | LanOrder
    | LanAmend
    | LanCancel
    | EdgeKdsAction
    | PrinterStatusReport
    | Error,
    Field(discriminator="type"),
]
#: What the store client's outbox holds: each goes up with its ``seq``, in order.
OutboxMessage = Annotated[
    JobStateReport | LanOrder | LanAmend | LanCancel | EdgeKdsAction, Field(discriminator="type")
]
#: Outbox messages that carry a change made on the LAN edge.
LanChange = LanOrder | LanAmend | LanCancel | EdgeKdsAction
StoreBrokerMessage = Annotated[
    Welcome
    | SnapshotPage
    | SnapshotEnd
    | ReportsAck
    | JobMessage
    | CancelJob
    | ConfigMessage
    | Error,
    Field(discriminator="type"),
]
StoreMessage = Annotated[
    Hello
    | Welcome
    | SnapshotPage
    | SnapshotEnd
    | ReportsAck
    | JobMessage
    | CancelJob
    | ConfigMessage
    | Ack
    | JobStateReport
    | LanOrder
    | LanAmend
    | LanCancel
    | EdgeKdsAction
    | PrinterStatusReport
    | Error,
    Field(discriminator="type"),
]

STORE_CLIENT: TypeAdapter[StoreClientMessage] = TypeAdapter(StoreClientMessage)
STORE_BROKER: TypeAdapter[StoreBrokerMessage] = TypeAdapter(StoreBrokerMessage)
STORE: TypeAdapter[StoreMessage] = TypeAdapter(StoreMessage)
OUTBOX: TypeAdapter[OutboxMessage] = TypeAdapter(OutboxMessage)
