"""REST request and response bodies (DESIGN.md §5.2, §6)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from protocol.base import Frozen, Ident, Text, Timestamp, Version
from protocol.jobs import JobState, JobTransitionRecord
from protocol.messages.hq import FleetStore
from protocol.orders import Order, Template
from protocol.status import PrinterStatus
from protocol.tickets import Ticket

MAX_BATCH = 500


class TicketRef(Frozen):
    ticket_id: Ident
    station_id: Ident
    version: Version


class JobRef(Frozen):
    job_id: Ident
    printer_id: Ident
    template: Template
    state: JobState


class SubmitResult(Frozen):
    """``202`` (new) or ``200`` with ``duplicate: true`` (repeat) for a submit; also the
    body of amend/cancel/reprint answers (their ``jobs`` are the new jobs)."""

    order_id: Ident
    revision: int = Field(ge=1)
    tickets: tuple[TicketRef, ...]
    jobs: tuple[JobRef, ...]
    duplicate: bool = False
    fire_at: Timestamp | None = None
    """Set when the order is held (a scheduled order, docs/kds.md#scheduled-orders): its
    ``tickets`` and ``jobs`` reach the stations and printers then, not before."""


class BatchRequest(Frozen):
    """``POST /v1/orders:batch``. Each order is validated on its own, so one bad order
    gets its own 422 in ``results`` without failing the others."""

    orders: tuple[dict[str, Any], ...] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResult(Frozen):
    status: int
    body: dict[str, Any]


class BatchResponse(Frozen):
    results: tuple[BatchResult, ...]


class ConfigResult(Frozen):
    store_id: Ident
    version: Version


class TokenRevocation(Frozen):
    """``POST /v1/tokens/revoke`` (DESIGN.md §8.4): refuse a token from now on, on every
    broker node; its open websockets close with 4501."""

    jti: Ident
    """The token's id (its ``jti`` claim; the broker logs it, never the token)."""


class RevokeResult(Frozen):
    jti: Ident
    until: Timestamp
    """When the entry leaves the deny-list: no token issued before the revocation can be
    valid past it."""


class JobView(Frozen):
    """``GET /v1/jobs/{job_id}``."""

    job_id: Ident
    order_id: Ident
    revision: int
    printer_id: Ident
    template: Template
    state: JobState
    created_at: Timestamp
    expires_at: Timestamp
    history: tuple[JobTransitionRecord, ...]


class OrderView(Frozen):
    """``GET /v1/orders/{order_id}``."""

    order_id: Ident
    revision: int
    cancelled: bool
    order: Order
    tickets: tuple[Ticket, ...]
    jobs: tuple[JobView, ...]
    fire_at: Timestamp | None = None
    """Set while the order is held: it has no tickets or jobs before this time."""


class StoreView(FleetStore):
    """``GET /v1/stores/{store_id}``: link, printers with status, queue depths."""

    config_version: Version | None = None


class PrinterView(Frozen):
    """One row of ``GET /v1/printers``."""

    store_id: Ident
    printer_id: Ident
    name: Text
    status: PrinterStatus | None


PROBLEM_JSON = "application/problem+json"


class Problem(Frozen):
    """RFC 9457 problem details; ``errors`` lists each failing field's path."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: tuple[dict[str, Any], ...] = ()


def field_errors(errors: list[Any], strip_body: bool = True) -> list[dict[str, Any]]:
    """pydantic errors as ``{loc, path, msg}`` with the request-part prefix removed."""
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if strip_body and loc and loc[0] == "body":
            loc = loc[1:]
        if err.get("type") == "json_invalid":  # the body as a whole (FastAPI puts an offset here)
            loc = []
        out.append({"loc": loc, "path": ".".join(str(p) for p in loc), "msg": str(err.get("msg"))})
    return out


def with_paths(errors: list[dict[str, Any]] | None) -> tuple[dict[str, Any], ...]:
    """Every error names its field both as ``loc`` (a list) and ``path`` (dotted)."""
    return tuple(
        {**e, "path": ".".join(str(p) for p in e.get("loc", ()))} if "path" not in e else e
        for e in errors or ()
    )


def problem_json(
    status: int, title: str, detail: str | None, errors: list[dict[str, Any]] | None = None
) -> str:
    """The body of an ``application/problem+json`` answer (the broker's and the edge's)."""
    body = Problem(title=title, status=status, detail=detail, errors=with_paths(errors))
    return body.model_dump_json(exclude_none=True)


def validation_detail(errors: list[dict[str, Any]]) -> str | None:
    """The one-line ``detail`` of a 422: the first failing field and why."""
    return f"{errors[0]['path'] or '(body)'}: {errors[0]['msg']}" if errors else None
