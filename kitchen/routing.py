"""Routing: order + store config → station tickets and print jobs (DESIGN.md §3, §6).

A line goes to its item's ``station`` override, else the store's ``sku_routes``, else the
station listing its category, else ``default_station``; otherwise the order is refused
(``Unroutable`` naming every such line). Jobs are one per (order revision, printer,
template): stations that share a printer share its chit (its station header names them all).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kitchen.errors import Unroutable
from protocol.config import StationConfig, StoreConfig
from protocol.ids import job_id, ticket_id_for
from protocol.jobs import DocLine, Job, JobState, TicketDoc
from protocol.orders import Item, Order, Template
from protocol.rest import JobRef, SubmitResult, TicketRef
from protocol.tickets import LineChangeKind, Ticket, TicketLine, TicketOrder, ticket_state

MAX_STATION_HEADER = 200
REPRINTABLE = (Template.KITCHEN, Template.LABEL, Template.RECEIPT)


@dataclass
class Plan:
    """What one submit/amend/cancel/reprint changes."""

    order: Order
    revision: int
    tickets: list[Ticket] = field(default_factory=list)
    """New versions of every ticket created or changed."""
    jobs: list[Job] = field(default_factory=list)
    line_station: dict[str, str] = field(default_factory=dict)


def station_for(item: Item, config: StoreConfig, owners: dict[str, str]) -> str | None:
    if item.station is not None:
        st = config.station(item.station)
        return st.station_id if st is not None and not st.expo else None
    return config.sku_routes.get(item.sku) or owners.get(item.category) or config.default_station


def route_lines(items: Sequence[Item], config: StoreConfig, where: str) -> dict[str, str]:
    """line_id -> station_id, or ``Unroutable`` naming every unroutable line."""
    owners = {c: s.station_id for s in config.stations for c in s.categories}
    routed: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        st = station_for(item, config, owners)
        if st is None:
            field_name = "station" if item.station is not None else "category"
            msg = (
                f"line {item.line_id!r}: station {item.station!r} is not a kitchen station"
                if item.station is not None
                else f"line {item.line_id!r}: category {item.category!r} maps to no station "
                "and the store has no default_station"
            )
            errors.append({"loc": [where, i, field_name], "msg": msg})
        else:
            routed[item.line_id] = st
    if errors:
        raise Unroutable.from_errors(errors)
    return routed


def ticket_order(order: Order) -> TicketOrder:
    return TicketOrder(
        channel=order.channel,
        service=order.service,
        external_id=order.external_id,
        pickup_code=order.pickup_code,
        table=order.table,
        customer=order.customer,
        note=order.note,
        placed_at=order.placed_at,
        due_at=order.due_at,
    )


def ticket_line(item: Item, change: LineChangeKind | None = None) -> TicketLine:
    return TicketLine(
        line_id=item.line_id,
        name=item.name,
        qty=item.qty,
        modifiers=item.modifiers,
        note=item.note,
        allergens=item.allergens,
        course=item.course,
        change=change,
    )


def doc_line(
    line: TicketLine | Item, change: LineChangeKind | None = None, qty: int = 0
) -> DocLine:
    return DocLine(
        qty=qty or line.qty,
        name=line.name,
        modifiers=line.modifiers,
        note=line.note,
        allergens=line.allergens,
        course=line.course,
        change=change,
    )


@dataclass
class JobBuilder:
    """Collects chit sections per (printer, template), then builds the jobs."""

    order_id: str
    order: Order
    revision: int
    config: StoreConfig
    now: datetime
    reprint: int = 0
    groups: dict[tuple[str, Template], tuple[list[str], list[DocLine]]] = field(
        default_factory=dict
    )

    def add(
        self, printer: str, template: Template, station: str | None, lines: list[DocLine]
    ) -> None:
        if not lines:
            return
        names, doc_lines = self.groups.setdefault((printer, template), ([], []))
        if station is not None and station not in names:
            names.append(station)
        if template is Template.LABEL:  # one sticker per unit
            lines = [ln.model_copy(update={"qty": 1}) for ln in lines for _ in range(ln.qty)]
        doc_lines.extend(lines)

    def build(self) -> list[Job]:
        expires = self.now + timedelta(seconds=self.config.job_ttl_s)
        jobs = []
        for (printer, template), (names, lines) in self.groups.items():
            doc = TicketDoc(
                template=template,
                store_name=self.config.name,
                station=" / ".join(names)[:MAX_STATION_HEADER] or None,
                order_ref=(self.order.pickup_code or self.order.external_id)[-40:],
                channel=self.order.channel,
                service=self.order.service,
                table=self.order.table,
                customer=self.order.customer,
                guests=self.order.guests,
                note=self.order.note,
                placed_at=self.order.placed_at,
                due_at=self.order.due_at,
                timezone=self.config.timezone,
                priority=self.order.priority,
                revision=self.revision,
                reprint=self.reprint > 0,
                pickup_code=self.order.pickup_code,
                lines=tuple(lines),
            )
            jid = job_id(self.order_id, self.revision, printer, template.value, self.reprint)
            jobs.append(
                Job(
                    job_id=jid,
                    order_id=self.order_id,
                    revision=self.revision,
                    printer_id=printer,
                    template=template,
                    doc=doc,
                    created_at=self.now,
                    expires_at=expires,
                )
            )
        return jobs


def stations_in_order(config: StoreConfig, used: Iterable[str]) -> list[StationConfig]:
    wanted = set(used)
    return [s for s in config.stations if s.station_id in wanted]


def plan_submit(
    order: Order, order_id: str, config: StoreConfig, now: datetime, revision: int = 1
) -> Plan:
    """Every station's first ticket and the first chits. ``revision`` > 1: the order was
    amended while it was held (``kitchen.amend.plan_held_amend``) and nothing of it has
    reached a station yet."""
    routed = route_lines(order.items, config, "items")
    plan = Plan(order=order, revision=revision, line_station=routed)
    jobs = JobBuilder(order_id, order, revision, config, now)
    for st in stations_in_order(config, routed.values()):
        items = [i for i in order.items if routed[i.line_id] == st.station_id]
        lines = tuple(ticket_line(i) for i in items)
        plan.tickets.append(make_ticket(order, order_id, st.station_id, lines, 1, revision, now))
        if st.printer is not None:
            for template in st.templates:
                jobs.add(st.printer, template, st.name, [doc_line(i) for i in items])
    if config.receipt_printer is not None:
        jobs.add(config.receipt_printer, Template.RECEIPT, None, [doc_line(i) for i in order.items])
    plan.jobs = jobs.build()
    return plan


def make_ticket(
    order: Order,
    order_id: str,
    station_id: str,
    lines: tuple[TicketLine, ...],
    version: int,
    revision: int,
    now: datetime,
) -> Ticket:
    return Ticket(
        ticket_id=ticket_id_for(order_id, station_id),
        order_id=order_id,
        store_id=order.store_id,
        station_id=station_id,
        version=version,
        state=ticket_state(lines),
        priority=order.priority,
        created_at=now,
        order=ticket_order(order),
        lines=lines,
        revision=revision,
    )


def submit_result(order_id: str, plan: Plan, tickets: bool = True) -> SubmitResult:
    """The answer to the submit (amend, cancel, reprint) that made ``plan``: its tickets and
    its new jobs, each ``queued``."""
    return SubmitResult(
        order_id=order_id,
        revision=plan.revision,
        tickets=tuple(
            TicketRef(ticket_id=t.ticket_id, station_id=t.station_id, version=t.version)
            for t in (plan.tickets if tickets else [])
        ),
        jobs=tuple(
            JobRef(
                job_id=j.job_id, printer_id=j.printer_id, template=j.template, state=JobState.QUEUED
            )
            for j in plan.jobs
        ),
    )
