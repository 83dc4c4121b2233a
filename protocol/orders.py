"""Orders, items and the requests that change them (DESIGN.md §3, §6)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from protocol.base import Frozen, Ident, Note, Text, Timestamp

KNOWN_CHANNELS = frozenset(
    {"pos", "miniprogram", "kiosk", "web", "meituan", "eleme", "ubereats", "doordash"}
)

#: A sales channel: one of ``KNOWN_CHANNELS`` or a custom ``x-name``.
ChannelName = Annotated[
    str,
    StringConstraints(
        pattern=r"^(pos|miniprogram|kiosk|web|meituan|eleme|ubereats|doordash|x-[a-z0-9-]{1,30})$"
    ),
]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Modifier = Annotated[str, StringConstraints(min_length=1, max_length=120)]

MAX_ITEMS = 200
MAX_QTY = 999


class Service(StrEnum):
    DINE_IN = "dine_in"
    TAKEOUT = "takeout"
    DELIVERY = "delivery"
    PICKUP = "pickup"


class Priority(StrEnum):
    NORMAL = "normal"
    RUSH = "rush"


class Template(StrEnum):
    """What kind of paper a print job produces (DESIGN.md §3)."""

    KITCHEN = "kitchen"
    RECEIPT = "receipt"
    LABEL = "label"
    DELTA = "delta"
    VOID = "void"


class Item(Frozen):
    """One order line."""

    line_id: Ident
    """Unique within the order; amendments refer to it."""
    sku: Ident
    name: Text
    qty: int = Field(ge=1, le=MAX_QTY)
    modifiers: tuple[Modifier, ...] = Field(default=(), max_length=30)
    note: Note | None = None
    category: Ident
    """Routes the line to the station that lists this category."""
    station: Ident | None = None
    """Overrides category routing for this line."""
    course: int = Field(default=1, ge=1, le=9)
    allergens: tuple[Short, ...] = Field(default=(), max_length=20)


def _unique_line_ids(items: tuple[Item, ...]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.line_id in seen:
            raise ValueError(f"duplicate line_id {item.line_id!r}")
        seen.add(item.line_id)


class Order(Frozen):
    """An order as a channel submits it. ``(store_id, channel, external_id)`` is unique."""

    store_id: Ident
    channel: ChannelName
    external_id: ExternalId
    """The channel's own order id; the idempotency key together with store and channel."""
    service: Service
    table: Short | None = None
    customer: Text | None = None
    pickup_code: Short | None = None
    guests: int | None = Field(default=None, ge=1, le=500)
    note: Note | None = None
    placed_at: Timestamp
    due_at: Timestamp | None = None
    """Set for scheduled orders."""
    priority: Priority = Priority.NORMAL
    items: tuple[Item, ...] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _check_lines(self) -> Self:
        _unique_line_ids(self.items)
        return self


class LineChange(Frozen):
    """A change to an existing line; omitted fields stay as they are."""

    line_id: Ident
    qty: int | None = Field(default=None, ge=1, le=MAX_QTY)
    modifiers: tuple[Modifier, ...] | None = Field(default=None, max_length=30)
    note: Note | None = None


class Amendment(Frozen):
    """``POST /v1/orders/{order_id}/amend``: lines added, changed, voided."""

    add: tuple[Item, ...] = Field(default=(), max_length=MAX_ITEMS)
    change: tuple[LineChange, ...] = Field(default=(), max_length=MAX_ITEMS)
    void: tuple[Ident, ...] = Field(default=(), max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.add or self.change or self.void):
            raise ValueError("an amendment needs at least one of add, change, void")
        _unique_line_ids(self.add)
        touched = [c.line_id for c in self.change] + list(self.void)
        if len(set(touched)) != len(touched):
            raise ValueError("a line may be changed or voided once per amendment")
        return self


class CancelRequest(Frozen):
    """``POST /v1/orders/{order_id}/cancel``."""

    reason: Note | None = None


class ReprintRequest(Frozen):
    """``POST /v1/orders/{order_id}/reprint``: new jobs whose chits say REPRINT."""

    templates: tuple[Template, ...] | None = None
    """Defaults to every template the order printed."""
    printer_id: Ident | None = None
    """Defaults to every printer the order printed on."""
