"""What the store edge keeps of each order it took (in the spool, as JSON): enough to amend
or cancel it on the LAN with the broker's own rules (``kitchen.amend``), uplink or not."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from protocol.orders import Order
from protocol.rest import SubmitResult
from protocol.tickets import Ticket


class EdgeOrder(BaseModel):
    """An order taken on the LAN, as amended and cancelled there (``kitchen.amend.OrderState``)."""

    model_config = ConfigDict(extra="forbid")

    order_id: str
    order: Order
    """The order as amended so far (voided lines removed)."""
    revision: int = 1
    voided: list[str] = []
    line_station: dict[str, str]
    tickets: dict[str, Ticket]
    """station_id -> the station's ticket as the edge last planned it."""
    jobs: list[str]
    reprints: int = 0
    result: SubmitResult
    cancelled: bool = False
    cancel_result: SubmitResult | None = None
