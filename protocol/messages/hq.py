"""HQ dashboard messages, ``/v1/ws/hq`` (JSON)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from protocol.base import Frozen, Ident, Text, Timestamp
from protocol.jobs import JobState
from protocol.messages.common import ErrorCode, Reason, Ref
from protocol.messages.kds import Token
from protocol.status import PrinterStatus


class HqHello(Frozen):
    type: Literal["hello"] = "hello"
    token: Token


class Outage(Frozen):
    """A store's last time without a link, as the broker saw it, once it is over."""

    started: Timestamp
    ended: Timestamp
    lan_orders: int = Field(default=0, ge=0)
    """Orders the store's LAN edge took while its link was down (DESIGN.md §8.6)."""


class LinkState(Frozen):
    online: bool
    since: Timestamp
    client_version: Text | None = None
    last_outage: Outage | None = None


class FleetPrinter(Frozen):
    printer_id: Ident
    name: Text
    status: PrinterStatus | None
    """None until the store client has reported it."""


class FleetStore(Frozen):
    store_id: Ident
    name: Text
    link: LinkState
    printers: tuple[FleetPrinter, ...] = ()
    queued: int = Field(default=0, ge=0)
    held: int = Field(default=0, ge=0)
    ring: Ident | None = None
    """The store's gray-release ring (docs/rollout.md)."""
    releases: tuple[Ident, ...] = ()
    """The releases its config runs, oldest first."""


class Fleet(Frozen):
    type: Literal["fleet"] = "fleet"
    stores: tuple[FleetStore, ...]


class StoreLink(Frozen):
    type: Literal["store_link"] = "store_link"
    store_id: Ident
    online: bool
    since: Timestamp
    client_version: Text | None = None
    last_outage: Outage | None = None


class HqPrinterStatus(Frozen):
    type: Literal["printer_status"] = "printer_status"
    store_id: Ident
    printer_id: Ident
    status: PrinterStatus


class JobAlert(Frozen):
    type: Literal["job_alert"] = "job_alert"
    store_id: Ident
    job_id: Ident
    printer_id: Ident
    state: JobState
    reason: Reason | None = None


class HqError(Frozen):
    type: Literal["error"] = "error"
    ref: Ref | None = None
    code: ErrorCode
    message: Reason


HqScreenMessage = Annotated[HqHello, Field(discriminator="type")]
HqBrokerMessage = Annotated[
    Fleet | StoreLink | HqPrinterStatus | JobAlert | HqError, Field(discriminator="type")
]
HqMessage = Annotated[
    HqHello | Fleet | StoreLink | HqPrinterStatus | JobAlert | HqError, Field(discriminator="type")
]

HQ_SCREEN: TypeAdapter[HqScreenMessage] = TypeAdapter(HqScreenMessage)
HQ_BROKER: TypeAdapter[HqBrokerMessage] = TypeAdapter(HqBrokerMessage)
HQ: TypeAdapter[HqMessage] = TypeAdapter(HqMessage)
