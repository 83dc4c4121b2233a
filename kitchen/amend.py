"""Amendments, cancellations and reprints (DESIGN.md §3, §6).

Amendments reach screens as highlighted line changes and printers as ``delta`` chits (and
``label`` stickers for added units at label stations), never as a full reprint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from kitchen.errors import BadAmendment, NothingToReprint
from kitchen.routing import (
    REPRINTABLE,
    JobBuilder,
    Plan,
    doc_line,
    make_ticket,
    plan_submit,
    route_lines,
    stations_in_order,
    ticket_line,
)
from protocol.config import StoreConfig
from protocol.jobs import DocLine
from protocol.orders import Amendment, Item, Order, ReprintRequest, Template
from protocol.tickets import LineChangeKind, LineState, Ticket, TicketLine, TicketState

_LIVE = (LineState.NEW, LineState.IN_PROGRESS, LineState.READY)


class OrderState(Protocol):
    """What planning reads of an order taken earlier (the broker's ``OrderRecord``)."""

    @property
    def order_id(self) -> str: ...
    @property
    def order(self) -> Order:
        """The order as amended so far (voided lines removed)."""

    @property
    def revision(self) -> int: ...
    @property
    def voided(self) -> list[str]: ...
    @property
    def line_station(self) -> dict[str, str]:
        """line_id -> station_id."""

    @property
    def reprints(self) -> int: ...
    @property
    def jobs(self) -> list[str]: ...


def _check_refs(rec: OrderState, am: Amendment) -> None:
    known = {i.line_id for i in rec.order.items}
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(am.add):
        if item.line_id in known or item.line_id in rec.voided:
            errors.append({"loc": ["add", i, "line_id"], "msg": f"line {item.line_id!r} exists"})
    for i, ch in enumerate(am.change):
        if ch.line_id not in known:
            errors.append({"loc": ["change", i, "line_id"], "msg": f"no live line {ch.line_id!r}"})
    for i, line_id in enumerate(am.void):
        if line_id not in known:
            errors.append({"loc": ["void", i], "msg": f"no live line {line_id!r}"})
    if errors:
        raise BadAmendment.from_errors(errors)


def _amended_items(rec: OrderState, am: Amendment) -> list[Item]:
    changes = {c.line_id: c for c in am.change}
    items = []
    for item in rec.order.items:
        if item.line_id in am.void:
            continue
        ch = changes.get(item.line_id)
        if ch is not None:
            update = {k: v for k, v in ch.model_dump(exclude={"line_id"}).items() if v is not None}
            item = item.model_copy(update=update)
        items.append(item)
    items.extend(am.add)
    if not items:
        raise BadAmendment(
            "the amendment voids every line; cancel the order instead",
            [{"loc": ["void"], "msg": "would void every line"}],
        )
    return items


def plan_amend(
    rec: OrderState,
    tickets: dict[str, Ticket],
    am: Amendment,
    config: StoreConfig,
    now: datetime,
) -> Plan:
    """New ticket versions with change markers and the delta/label jobs."""
    _check_refs(rec, am)
    added = route_lines(am.add, config, "add")
    items = _amended_items(rec, am)
    revision = rec.revision + 1
    order = rec.order.model_copy(update={"items": tuple(items)})
    by_id = {i.line_id: i for i in items}
    line_station = {**rec.line_station, **added}
    touched: dict[str, list[tuple[str, LineChangeKind]]] = {}
    for ch in am.change:
        touched.setdefault(rec.line_station[ch.line_id], []).append(
            (ch.line_id, LineChangeKind.CHANGED)
        )
    for line_id in am.void:
        touched.setdefault(rec.line_station[line_id], []).append((line_id, LineChangeKind.VOIDED))
    for item in am.add:
        touched.setdefault(added[item.line_id], []).append((item.line_id, LineChangeKind.ADDED))
    plan = Plan(order=order, revision=revision, line_station=line_station)
    jobs = JobBuilder(rec.order_id, order, revision, config, now)
    for st in stations_in_order(config, touched):
        old = tickets.get(st.station_id)
        lines, chit = _apply_changes(old, touched[st.station_id], by_id)
        version = old.version + 1 if old is not None else 1
        ticket = make_ticket(
            order, rec.order_id, st.station_id, tuple(lines), version, revision, now
        )
        if old is not None:
            ticket = ticket.model_copy(
                update={"created_at": old.created_at, "priority": old.priority}
            )
        plan.tickets.append(ticket)
        if st.printer is None:
            continue
        adds = [ln for ln in chit if ln.change is LineChangeKind.ADDED]
        if Template.KITCHEN in st.templates or len(adds) < len(chit):
            jobs.add(st.printer, Template.DELTA, st.name, chit)
        if Template.LABEL in st.templates:
            jobs.add(st.printer, Template.LABEL, st.name, adds)
    plan.jobs = jobs.build()
    return plan


def plan_held_amend(rec: OrderState, am: Amendment, config: StoreConfig, now: datetime) -> Plan:
    """An amendment of an order still held (docs/kds.md#scheduled-orders): no station has
    seen it, so it is planned afresh at the new revision, first tickets and first chits,
    no change markers and no delta chits."""
    _check_refs(rec, am)
    route_lines(am.add, config, "add")  # a refusal names the added line as ``add.N``
    order = rec.order.model_copy(update={"items": tuple(_amended_items(rec, am))})
    return plan_submit(order, rec.order_id, config, now, revision=rec.revision + 1)


def amended(rec: OrderState, am: Amendment, plan: Plan) -> dict[str, Any]:
    """The order-state fields ``plan`` (an amendment of ``rec``) changes, for the
    caller's ``model_copy``; the caller adds its own references to the new tickets."""
    return {
        "revision": plan.revision,
        "order": plan.order,
        "voided": [*rec.voided, *am.void],
        "line_station": plan.line_station,
        "jobs": [*rec.jobs, *(j.job_id for j in plan.jobs)],
    }


def _apply_changes(
    old: Ticket | None,
    changes: list[tuple[str, LineChangeKind]],
    items: dict[str, Item],
) -> tuple[list[TicketLine], list[DocLine]]:
    lines = [ln.model_copy(update={"change": None}) for ln in old.lines] if old else []
    index = {ln.line_id: n for n, ln in enumerate(lines)}
    chit: list[DocLine] = []
    for line_id, kind in changes:
        if kind is LineChangeKind.ADDED:
            lines.append(ticket_line(items[line_id], kind))
            chit.append(doc_line(items[line_id], kind))
            continue
        n = index[line_id]
        if kind is LineChangeKind.VOIDED:
            chit.append(doc_line(lines[n], kind))
            lines[n] = lines[n].model_copy(update={"state": LineState.VOIDED, "change": kind})
        else:
            fresh = ticket_line(items[line_id], kind)  # a changed line is cooked again
            lines[n] = fresh
            chit.append(doc_line(fresh, kind))
    return lines, chit


def plan_cancel(
    rec: OrderState, tickets: dict[str, Ticket], config: StoreConfig, now: datetime
) -> Plan:
    """Every ticket voided; a ``void`` chit to every printer whose station had live lines."""
    revision = rec.revision + 1
    plan = Plan(order=rec.order, revision=revision, line_station=rec.line_station)
    jobs = JobBuilder(rec.order_id, rec.order, revision, config, now)
    for station_id, old in tickets.items():
        live = [ln for ln in old.lines if ln.state in _LIVE]
        lines = tuple(
            ln.model_copy(update={"state": LineState.VOIDED, "change": LineChangeKind.VOIDED})
            if ln.state in _LIVE
            else ln
            for ln in old.lines
        )
        plan.tickets.append(
            old.model_copy(
                update={
                    "lines": lines,
                    "version": old.version + 1,
                    "revision": revision,
                    "state": TicketState.VOIDED,
                }
            )
        )
        st = config.station(station_id)
        if st is not None and st.printer is not None and live:
            chit = [doc_line(ln, LineChangeKind.VOIDED) for ln in live]
            jobs.add(st.printer, Template.VOID, st.name, chit)
    plan.jobs = jobs.build()
    return plan


def plan_reprint(rec: OrderState, req: ReprintRequest, config: StoreConfig, now: datetime) -> Plan:
    """The order's current chits again, marked REPRINT, as new jobs."""
    templates = set(req.templates or REPRINTABLE) & set(REPRINTABLE)
    reprint = rec.reprints + 1
    plan = Plan(order=rec.order, revision=rec.revision, line_station=rec.line_station)
    jobs = JobBuilder(rec.order_id, rec.order, rec.revision, config, now, reprint=reprint)
    for st in stations_in_order(config, rec.line_station.values()):
        items = [i for i in rec.order.items if rec.line_station.get(i.line_id) == st.station_id]
        if st.printer is None or (req.printer_id and st.printer != req.printer_id):
            continue
        for template in st.templates:
            if template in templates:
                jobs.add(st.printer, template, st.name, [doc_line(i) for i in items])
    receipt = config.receipt_printer
    if receipt and Template.RECEIPT in templates and req.printer_id in (None, receipt):
        jobs.add(receipt, Template.RECEIPT, None, [doc_line(i) for i in rec.order.items])
    plan.jobs = jobs.build()
    if not plan.jobs:
        raise NothingToReprint(
            "nothing to reprint for these templates and printer",
            [{"loc": ["templates"], "msg": "no printed chit matches"}],
        )
    return plan
