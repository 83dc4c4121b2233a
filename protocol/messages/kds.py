"""Kitchen display messages, ``/v1/ws/kds`` (JSON)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from protocol.base import Epoch, Frozen, Ident, Offset, StreamPosition, Version
from protocol.config import StationConfig
from protocol.messages.common import ErrorCode, Reason, Ref
from protocol.tickets import ExpoOrder, Ticket
from protocol.timezones import ZoneName

Token = Annotated[str, Field(min_length=1, max_length=4096)]


class KdsHello(Frozen):
    """screen → broker, first message (browsers cannot set headers)."""

    type: Literal["hello"] = "hello"
    token: Token
    store: Ident
    station: Ident
    resume: StreamPosition | None = None


class Snapshot(Frozen):
    """broker → screen. ``orders`` is set on the expo station, ``tickets`` elsewhere."""

    type: Literal["snapshot"] = "snapshot"
    epoch: Epoch
    offset: Offset
    station: StationConfig
    tickets: tuple[Ticket, ...] = ()
    orders: tuple[ExpoOrder, ...] = ()
    all_day: dict[str, int] = Field(default_factory=dict)
    """Item name -> quantity not yet ready at this station."""
    local: bool = False
    """Served by the store edge from its own state while the store has no uplink: the
    screen says "local mode" (docs/store-edge.md)."""
    timezone: ZoneName | None = None
    """The store's IANA zone: the screen shows clock times (due, bumped, "as of") on its
    wall clock, whatever zone the device is set to (DESIGN.md §8.7). None: the device's."""


class TicketUpdate(Frozen):
    type: Literal["ticket"] = "ticket"
    offset: Offset
    ticket: Ticket


class TicketRemoved(Frozen):
    type: Literal["ticket_removed"] = "ticket_removed"
    offset: Offset
    ticket_id: Ident


class AllDay(Frozen):
    type: Literal["all_day"] = "all_day"
    offset: Offset
    counts: dict[str, int]


class OrderUpdate(Frozen):
    """Expo station: an order's roll-up changed."""

    type: Literal["order"] = "order"
    offset: Offset
    order: ExpoOrder


class Start(Frozen):
    type: Literal["start"] = "start"
    ref: Ref
    ticket_id: Ident
    version: Version


class Bump(Frozen):
    type: Literal["bump"] = "bump"
    ref: Ref
    ticket_id: Ident
    version: Version


class Recall(Frozen):
    type: Literal["recall"] = "recall"
    ref: Ref
    ticket_id: Ident
    version: Version


class Prioritize(Frozen):
    type: Literal["prioritize"] = "prioritize"
    ref: Ref
    ticket_id: Ident
    version: Version


class BumpLine(Frozen):
    type: Literal["bump_line"] = "bump_line"
    ref: Ref
    ticket_id: Ident
    line_id: Ident
    version: Version


class Serve(Frozen):
    """Expo: mark an order served."""

    type: Literal["serve"] = "serve"
    ref: Ref
    order_id: Ident
    version: Version


class Fire(Frozen):
    """Expo: send a scheduled order to its stations and printers now, before its fire
    time. Firing an order that has fired already changes nothing (acknowledged), so
    ``version`` is not checked against the order's."""

    type: Literal["fire"] = "fire"
    ref: Ref
    order_id: Ident
    version: Version


class KdsAck(Frozen):
    type: Literal["ack"] = "ack"
    ref: Ref
    ticket: Ticket | None = None
    order: ExpoOrder | None = None


class KdsError(Frozen):
    """On a version conflict ``ticket``/``order`` is the current one."""

    type: Literal["error"] = "error"
    ref: Ref | None = None
    code: ErrorCode
    message: Reason
    ticket: Ticket | None = None
    order: ExpoOrder | None = None


KdsAction = Annotated[
    Start | Bump | Recall | Prioritize | BumpLine | Serve | Fire, Field(discriminator="type")
]
KdsScreenMessage = Annotated[
    KdsHello | Start | Bump | Recall | Prioritize | BumpLine | Serve | Fire,
    Field(discriminator="type"),
]
KdsBrokerMessage = Annotated[
    Snapshot | TicketUpdate | TicketRemoved | AllDay | OrderUpdate | KdsAck | KdsError,
    Field(discriminator="type"),
]
KdsMessage = Annotated[
    KdsHello
    | Snapshot
    | TicketUpdate
    | TicketRemoved
    | AllDay
    | OrderUpdate
    | Start
    | Bump
    | Recall
    | Prioritize
    | BumpLine
    | Serve
    | Fire
    | KdsAck
    | KdsError,
    Field(discriminator="type"),
]

KDS_SCREEN: TypeAdapter[KdsScreenMessage] = TypeAdapter(KdsScreenMessage)
KDS_BROKER: TypeAdapter[KdsBrokerMessage] = TypeAdapter(KdsBrokerMessage)
KDS: TypeAdapter[KdsMessage] = TypeAdapter(KdsMessage)
