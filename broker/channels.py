"""Channel adapters at the REST edge (issue 16, docs/channels.md): a sales channel's own
order payload in, a passline ``Order`` out.

``POST /v1/channels/{adapter}/orders`` takes the channel's JSON as it comes, checks it
against the adapter's model of that shape (a refusal names the channel's field, not
ours), maps it to an ``Order`` and submits that exactly as ``POST /v1/orders`` would:
same answer, same idempotency. The idempotency key is the platform's order id
(``external_id``), so the platform's retries of a webhook never print twice.

An adapter is a name, a pydantic model of the payload and two functions: ``to_order``
(payload → the ``Order`` fields) and ``source_path`` (an ``Order`` field's location →
the payload field it came from, for errors the ``Order`` check finds, such as a name
too long for a chit). Adapters ignore fields they do not map: platforms add fields
without notice, and refusing them would stop a kitchen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from broker.errors import InvalidRequest
from protocol.orders import KNOWN_CHANNELS, Order
from protocol.rest import field_errors

Loc = tuple[str | int, ...]


class _Payload(BaseModel):
    """A platform's JSON: fields we do not map are ignored, not refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# -- the generic delivery-platform shape ----------------------------------------------------
Str = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class PlatformModifier(_Payload):
    title: Str
    quantity: int = Field(default=1, ge=1, le=99)


class PlatformItem(_Payload):
    id: Str | None = None
    """The platform's line id; absent: the line's position (1, 2, …)."""
    merchant_sku: Str
    title: Str
    quantity: int = Field(ge=1)
    category: Str
    modifiers: list[PlatformModifier] = Field(default_factory=list)
    special_instructions: str | None = None
    allergens: list[Str] = Field(default_factory=list)
    course: int | None = None


class PlatformStore(_Payload):
    id: Str
    """The merchant's store id: the passline store id."""


class PlatformCustomer(_Payload):
    name: str | None = None
    """Printed only as given: send a first name if that is all the kitchen should see."""


class DeliveryPlatformOrder(_Payload):
    """The generic delivery-platform order (docs/channels.md has the mapping table)."""

    platform: Str
    id: Str
    display_id: str | None = None
    store: PlatformStore
    type: Literal["DELIVERY", "PICKUP", "TAKEOUT", "DINE_IN"] = "DELIVERY"
    placed_at: str
    scheduled_for: str | None = None
    customer: PlatformCustomer | None = None
    table: str | None = None
    guests: int | None = None
    notes: str | None = None
    rush: bool = False
    items: list[PlatformItem] = Field(min_length=1)


SERVICES = {"DELIVERY": "delivery", "PICKUP": "pickup", "TAKEOUT": "takeout", "DINE_IN": "dine_in"}


def channel_of(platform: str) -> str:
    """A platform's name as a passline channel: a known one as is, else ``x-<slug>``."""
    name = platform.strip().lower()
    if name in KNOWN_CHANNELS:
        return name
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")[:30] or "platform"
    return f"x-{slug}"


def _modifier(m: PlatformModifier) -> str:
    return m.title if m.quantity == 1 else f"{m.quantity}× {m.title}"


def delivery_platform_order(p: DeliveryPlatformOrder) -> dict[str, Any]:
    customer = p.customer.name if p.customer is not None else None
    return {
        "store_id": p.store.id,
        "channel": channel_of(p.platform),
        "external_id": p.id,
        "service": SERVICES[p.type],
        "pickup_code": p.display_id,
        "table": p.table,
        "guests": p.guests,
        "customer": customer or None,
        "note": p.notes or None,
        "placed_at": p.placed_at,
        "due_at": p.scheduled_for,
        "priority": "rush" if p.rush else "normal",
        "items": [
            {
                "line_id": item.id if item.id is not None else str(i + 1),
                "sku": item.merchant_sku,
                "name": item.title,
                "qty": item.quantity,
                "category": item.category,
                "modifiers": [_modifier(m) for m in item.modifiers],
                "note": item.special_instructions or None,
                "allergens": item.allergens,
                **({"course": item.course} if item.course is not None else {}),
            }
            for i, item in enumerate(p.items)
        ],
    }


#: ``Order`` field → the delivery-platform field it comes from.
DELIVERY_FIELDS: dict[str, Loc] = {
    "store_id": ("store", "id"),
    "channel": ("platform",),
    "external_id": ("id",),
    "service": ("type",),
    "pickup_code": ("display_id",),
    "customer": ("customer", "name"),
    "note": ("notes",),
    "due_at": ("scheduled_for",),
    "priority": ("rush",),
}
DELIVERY_ITEM_FIELDS: dict[str, Loc] = {
    "line_id": ("id",),
    "sku": ("merchant_sku",),
    "name": ("title",),
    "qty": ("quantity",),
    "note": ("special_instructions",),
}


def delivery_platform_path(loc: Loc) -> Loc:
    if not loc:
        return ()
    head, rest = str(loc[0]), loc[1:]
    if head != "items":
        return DELIVERY_FIELDS.get(head, (head,)) + rest
    if len(rest) < 2:
        return ("items", *rest)
    i, field, tail = rest[0], str(rest[1]), rest[2:]
    if field == "modifiers" and tail:
        return ("items", i, "modifiers", tail[0], "title")
    return ("items", i, *DELIVERY_ITEM_FIELDS.get(field, (field,)), *tail)


# -- the interface --------------------------------------------------------------------------
@dataclass(frozen=True)
class Adapter:
    name: str
    payload: type[_Payload]
    to_order: Callable[[Any], dict[str, Any]]
    source_path: Callable[[Loc], Loc]
    doc: str

    def order(self, body: bytes) -> Order:
        """The ``Order`` for a payload; ``InvalidRequest`` (422) naming the payload's fields."""
        try:
            payload = self.payload.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid(self.name, field_errors(list(exc.errors()), False)) from None
        try:
            return Order.model_validate(self.to_order(payload))
        except ValidationError as exc:
            errors = []
            raw = exc.errors()
            for e in raw:
                if e["type"] == "too_short" and any(
                    len(o["loc"]) > len(e["loc"]) and o["loc"][: len(e["loc"])] == e["loc"]
                    for o in raw
                ):
                    continue  # pydantic's echo: the list is short because its items failed
                loc = self.source_path(tuple(e["loc"]))
                if not e["loc"] and e["type"] == "value_error":  # a whole-order rule
                    loc = ("items",)
                errors.append({"loc": list(loc), "msg": str(e["msg"])})
            raise _invalid(self.name, field_errors(errors, False)) from None


def _invalid(name: str, errors: list[dict[str, Any]]) -> InvalidRequest:
    first = errors[0] if errors else {"path": "", "msg": "invalid"}
    detail = f"{name} payload: {first['path'] or '(body)'}: {first['msg']}"
    return InvalidRequest(detail, errors)


ADAPTERS: dict[str, Adapter] = {
    "delivery-platform": Adapter(
        name="delivery-platform",
        payload=DeliveryPlatformOrder,
        to_order=delivery_platform_order,
        source_path=delivery_platform_path,
        doc="A generic delivery-platform order (docs/channels.md).",
    ),
}
