"""Routing, amendments, cancels and reprints as pure functions (no broker, no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.records import OrderRecord
from kitchen.amend import plan_amend, plan_cancel, plan_reprint
from kitchen.errors import BadAmendment, NothingToReprint, Unroutable
from kitchen.expo import expo_roll_up, expo_state, with_ticket
from kitchen.routing import plan_submit
from protocol.config import StoreConfig
from protocol.ids import job_id
from protocol.orders import Amendment, Order, ReprintRequest, Template
from protocol.rest import SubmitResult
from protocol.tickets import ExpoState, LineChangeKind, TicketState
from tests.broker.helpers import order, store_config

NOW = datetime(2026, 11, 21, 4, 3, tzinfo=UTC)


def config(**extra: Any) -> StoreConfig:
    return StoreConfig.model_validate(store_config(**extra))


def record(o: Order, cfg: StoreConfig) -> tuple[OrderRecord, dict[str, Any]]:
    plan = plan_submit(o, "o-1", cfg, NOW)
    rec = OrderRecord(
        order_id="o-1",
        store_id=o.store_id,
        revision=1,
        order=o,
        line_station=plan.line_station,
        tickets={t.station_id: t.ticket_id for t in plan.tickets},
        jobs=[j.job_id for j in plan.jobs],
        result=SubmitResult(order_id="o-1", revision=1, tickets=(), jobs=()),
        created_at=NOW,
    )
    return rec, {t.station_id: t for t in plan.tickets}


def test_one_ticket_per_station_and_jobs_per_printer_and_template() -> None:
    plan = plan_submit(Order.model_validate(order()), "o-1", config(), NOW)
    assert [(t.station_id, [ln.line_id for ln in t.lines]) for t in plan.tickets] == [
        ("grill", ["1", "2"]),
        ("bar", ["3"]),
    ]
    jobs = {(j.printer_id, j.template): j for j in plan.jobs}
    assert set(jobs) == {
        ("kitchen", Template.KITCHEN),
        ("bar", Template.KITCHEN),
        ("receipt", Template.RECEIPT),
    }
    kitchen = jobs[("kitchen", Template.KITCHEN)]
    assert kitchen.job_id == job_id("o-1", 1, "kitchen", "kitchen")
    assert kitchen.expires_at - kitchen.created_at == timedelta(seconds=1800)
    assert kitchen.doc.order_ref == "42" and kitchen.doc.station == "Grill"
    assert len(jobs[("receipt", Template.RECEIPT)].doc.lines) == 3


def test_labels_are_one_line_per_unit_and_shared_printers_share_a_chit() -> None:
    raw = store_config()
    raw["stations"][1]["templates"] = ["label"]
    raw["stations"].insert(
        1, {"station_id": "fry", "name": "Fry", "categories": ["fries"], "printer": "kitchen"}
    )
    o = order()
    o["items"].append({"line_id": "4", "sku": "F1", "name": "Fries", "qty": 1, "category": "fries"})
    plan = plan_submit(Order.model_validate(o), "o-1", StoreConfig.model_validate(raw), NOW)
    jobs = {(j.printer_id, j.template): j for j in plan.jobs}
    label = jobs[("bar", Template.LABEL)]
    assert [(ln.name, ln.qty) for ln in label.doc.lines] == [("Iced lemon tea", 1)] * 2
    chit = jobs[("kitchen", Template.KITCHEN)]
    assert chit.doc.station == "Grill / Fry" and len(chit.doc.lines) == 3
    assert ("bar", Template.KITCHEN) not in jobs


def test_unroutable_lines_are_named() -> None:
    o = order()
    o["items"][2]["category"] = "desserts"
    o["items"][0]["station"] = "expo"  # expo takes no lines
    with pytest.raises(Unroutable) as info:
        plan_submit(Order.model_validate(o), "o-1", config(), NOW)
    assert [e["loc"] for e in info.value.errors] == [
        ["items", 0, "station"],
        ["items", 2, "category"],
    ]


def test_amend_marks_changes_and_prints_deltas() -> None:
    cfg = config()
    rec, tickets = record(Order.model_validate(order()), cfg)
    am = Amendment.model_validate(
        {
            "add": [{"line_id": "9", "sku": "X", "name": "Cola", "qty": 1, "category": "drinks"}],
            "change": [{"line_id": "1", "qty": 3}],
            "void": ["2"],
        }
    )
    plan = plan_amend(rec, tickets, am, cfg, NOW)
    grill, bar = plan.tickets
    assert [(ln.line_id, ln.qty, ln.change, ln.state.value) for ln in grill.lines] == [
        ("1", 3, LineChangeKind.CHANGED, "new"),
        ("2", 1, LineChangeKind.VOIDED, "voided"),
    ]
    assert grill.version == 2 and grill.revision == 2
    assert [ln.change for ln in bar.lines] == [None, LineChangeKind.ADDED]
    assert {(j.printer_id, j.template) for j in plan.jobs} == {
        ("kitchen", Template.DELTA),
        ("bar", Template.DELTA),
    }
    assert [i.line_id for i in plan.order.items] == ["1", "3", "9"]
    with pytest.raises(BadAmendment):
        plan_amend(rec, tickets, Amendment.model_validate({"void": ["1", "2", "3"]}), cfg, NOW)
    with pytest.raises(BadAmendment) as info:
        plan_amend(
            rec,
            tickets,
            Amendment.model_validate({"change": [{"line_id": "77", "qty": 1}]}),
            cfg,
            NOW,
        )
    assert info.value.errors == [{"loc": ["change", 0, "line_id"], "msg": "no live line '77'"}]


def test_cancel_voids_and_reprint_marks() -> None:
    cfg = config()
    rec, tickets = record(Order.model_validate(order()), cfg)
    plan = plan_cancel(rec, tickets, cfg, NOW)
    assert all(t.state is TicketState.VOIDED for t in plan.tickets)
    assert {(j.printer_id, j.template) for j in plan.jobs} == {
        ("kitchen", Template.VOID),
        ("bar", Template.VOID),
    }
    again = plan_reprint(rec, ReprintRequest(), cfg, NOW)
    assert all(j.doc.reprint for j in again.jobs) and len(again.jobs) == 3
    assert {j.job_id for j in again.jobs}.isdisjoint(rec.jobs)
    with pytest.raises(NothingToReprint):
        plan_reprint(rec, ReprintRequest(printer_id="nope"), cfg, NOW)


def test_expo_roll_up() -> None:
    rec, tickets = record(Order.model_validate(order()), config())
    roll = expo_roll_up(rec, list(tickets.values()), 1, False)
    assert roll.state is ExpoState.OPEN and len(roll.stations) == 2
    ready = [t.model_copy(update={"state": TicketState.READY}) for t in tickets.values()]
    assert expo_roll_up(rec, ready, 2, False).state is ExpoState.READY
    assert expo_roll_up(rec, ready, 3, True).state is ExpoState.SERVED


def test_one_expo_rule_for_orders_and_kds_actions() -> None:
    r, n, v = TicketState.READY, TicketState.NEW, TicketState.VOIDED
    assert expo_state([r, v]) is ExpoState.READY  # a voided station waits for nothing
    assert expo_state([r, n]) is ExpoState.OPEN
    assert expo_state([v, v]) is ExpoState.CANCELLED
    assert expo_state([r], served=True) is ExpoState.SERVED
    assert expo_state([r], cancelled=True) is ExpoState.CANCELLED


def test_a_station_ticket_change_rolls_up_to_expo_unless_served() -> None:
    rec, tickets = record(Order.model_validate(order()), config())
    grill, bar = tickets.values()
    roll = expo_roll_up(rec, [grill, bar], 1, False)
    done = [t.model_copy(update={"state": TicketState.READY}) for t in (grill, bar)]
    half = with_ticket(roll, done[0])
    assert (half.state, half.version) == (ExpoState.OPEN, 2)
    full = with_ticket(half, done[1])
    assert (full.state, full.version) == (ExpoState.READY, 3)
    served = full.model_copy(update={"state": ExpoState.SERVED})
    recalled = with_ticket(served, grill)  # a recall after serving does not reopen it
    assert recalled.state is ExpoState.SERVED
    assert recalled.stations[0].state is TicketState.NEW
