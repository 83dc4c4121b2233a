"""When a scheduled order fires: the prep-time rule, as pure functions (docs/kds.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.records import OrderRecord
from kitchen.actions import check_fires
from kitchen.amend import plan_held_amend
from kitchen.errors import ActionRefused, BadAmendment, Unroutable
from kitchen.expo import scheduled_roll_up
from kitchen.routing import plan_submit
from kitchen.schedule import MAX_HOLD, TooFarAhead, fire_time, held_until, restamped
from protocol.config import StoreConfig
from protocol.ids import job_id
from protocol.messages.common import ErrorCode
from protocol.orders import Amendment, Item, Order, Template
from protocol.rest import SubmitResult
from protocol.tickets import ExpoState, TicketState
from tests.broker.helpers import order, store_config

NOW = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
DUE = NOW + timedelta(minutes=20)


def config(grill: int | None = 480, bar: int | None = 60, **extra: Any) -> StoreConfig:
    raw = store_config(**extra)
    for st in raw["stations"]:
        prep = {"grill": grill, "bar": bar}.get(st["station_id"])
        if prep is not None:
            st["prep_s"] = prep
    return StoreConfig.model_validate(raw)


def due(**extra: Any) -> Order:
    return Order.model_validate(order(**{"due_at": DUE.isoformat(), **extra}))


def fire_of(o: Order, cfg: StoreConfig) -> datetime | None:
    return fire_time(o, plan_submit(o, "o-1", cfg, NOW).line_station, cfg)


def test_an_order_fires_at_due_minus_its_longest_lines_prep() -> None:
    assert fire_of(due(), config()) == DUE - timedelta(minutes=8)  # grill 8 min, bar 1 min
    assert fire_of(due(), config(grill=120, bar=300)) == DUE - timedelta(minutes=5)


def test_sku_before_category_before_station() -> None:
    cfg = config(prep_s_by_category={"mains": 900}, prep_s_by_sku={"N07": 60})
    assert fire_of(due(), cfg) == DUE - timedelta(minutes=8)  # N07 (mains) by its sku: 1 min
    cfg = config(prep_s_by_category={"mains": 900})
    assert fire_of(due(), cfg) == DUE - timedelta(minutes=15)
    cfg = config(prep_s_by_category={"burgers": 0, "mains": 0}, prep_s_by_sku={"D02": 0})
    assert fire_of(due(), cfg) == DUE  # no prep at all: fire at the due time


def test_no_due_at_or_a_line_without_prep_fires_at_once() -> None:
    assert fire_of(Order.model_validate(order()), config()) is None
    assert fire_of(due(), config(bar=None)) is None  # the tea has no prep time anywhere
    assert fire_of(due(), config(bar=None, prep_s_by_sku={"D02": 30})) is not None
    old = StoreConfig.model_validate(store_config())  # a config from before prep times
    assert fire_of(due(), old) is None


def test_held_until_only_a_future_fire_time_within_the_limit() -> None:
    o, cfg = due(), config()
    line_station = plan_submit(o, "o-1", cfg, NOW).line_station
    assert held_until(o, line_station, cfg, NOW) == DUE - timedelta(minutes=8)
    assert held_until(o, line_station, cfg, DUE - timedelta(minutes=8)) is None  # due now
    assert held_until(o, line_station, cfg, DUE) is None  # past
    far = due(due_at=(NOW + MAX_HOLD + timedelta(minutes=9)).isoformat())
    with pytest.raises(TooFarAhead) as exc:
        held_until(far, line_station, cfg, NOW)
    assert exc.value.errors[0]["loc"] == ["due_at"]


def test_restamped_tickets_and_jobs_start_at_the_fire_time() -> None:
    plan = plan_submit(due(), "o-1", config(), NOW)
    later = NOW + timedelta(minutes=12)
    tickets, jobs = restamped(plan.tickets, plan.jobs, later)
    assert {t.created_at for t in tickets} == {later}
    assert [t.ticket_id for t in tickets] == [t.ticket_id for t in plan.tickets]
    assert {j.created_at for j in jobs} == {later}
    assert {j.expires_at for j in jobs} == {later + timedelta(seconds=1800)}  # job_ttl_s
    assert [j.job_id for j in jobs] == [j.job_id for j in plan.jobs]
    assert [j.doc for j in jobs] == [j.doc for j in plan.jobs]


def held_record(o: Order, cfg: StoreConfig) -> OrderRecord:
    plan = plan_submit(o, "o-1", cfg, NOW)
    return OrderRecord(
        order_id="o-1",
        store_id=o.store_id,
        revision=1,
        order=o,
        line_station=plan.line_station,
        tickets={t.station_id: t.ticket_id for t in plan.tickets},
        jobs=[],
        result=SubmitResult(order_id="o-1", revision=1, tickets=(), jobs=()),
        created_at=NOW,
    )


def test_a_held_amendment_is_planned_afresh_without_change_markers() -> None:
    cfg = config()
    rec = held_record(due(), cfg)
    add = Item(line_id="9", sku="F01", name="Fries", qty=1, category="burgers")
    plan = plan_held_amend(rec, Amendment(add=(add,), void=("3",)), cfg, NOW)
    assert plan.revision == 2
    assert [(t.station_id, [ln.line_id for ln in t.lines]) for t in plan.tickets] == [
        ("grill", ["1", "2", "9"])
    ]  # the bar lost its only line: no bar ticket, no bar chit
    assert all(t.version == 1 and t.revision == 2 for t in plan.tickets)
    assert all(ln.change is None for t in plan.tickets for ln in t.lines)
    assert {(j.printer_id, j.template) for j in plan.jobs} == {
        ("kitchen", Template.KITCHEN),
        ("receipt", Template.RECEIPT),
    }  # first chits, no delta
    assert job_id("o-1", 2, "kitchen", "kitchen") in {j.job_id for j in plan.jobs}
    with pytest.raises(BadAmendment):
        plan_held_amend(rec, Amendment(void=("7",)), cfg, NOW)
    lost = add.model_copy(update={"category": "desserts"})
    with pytest.raises(Unroutable) as exc:
        plan_held_amend(rec, Amendment(add=(lost,)), cfg, NOW)
    assert exc.value.errors[0]["loc"] == ["add", 0, "category"]


def test_the_expo_lists_a_held_order_as_scheduled() -> None:
    cfg = config()
    rec = held_record(due(), cfg)
    plan = plan_submit(rec.order, "o-1", cfg, NOW)
    at = DUE - timedelta(minutes=8)
    roll = scheduled_roll_up(rec, plan.tickets, 1, at)
    assert (roll.state, roll.fire_at, roll.version) == (ExpoState.SCHEDULED, at, 1)
    assert [(s.station_id, s.state) for s in roll.stations] == [
        ("grill", TicketState.NEW),
        ("bar", TicketState.NEW),
    ]
    cancelled = rec.model_copy(update={"cancelled": True})
    assert scheduled_roll_up(cancelled, [], 2, at).state is ExpoState.CANCELLED


def test_old_configs_stay_valid_and_new_fields_are_checked() -> None:
    old = StoreConfig.model_validate(store_config())
    assert old.prep_s_by_category == {} and old.prep_s_by_sku == {}
    assert all(s.prep_s is None for s in old.stations)
    with pytest.raises(ValueError, match="prep_s"):
        config(grill=-1)
    with pytest.raises(ValueError, match="prep_s_by_sku"):
        config(prep_s_by_sku={"B01": 86401})
    with pytest.raises(ValueError, match="prep_s_by_category"):
        config(prep_s_by_category={"bad key!": 10})


def test_only_the_expo_fires_orders() -> None:
    check_fires(expo_station=True)
    with pytest.raises(ActionRefused) as exc:
        check_fires(expo_station=False)
    assert exc.value.code is ErrorCode.FORBIDDEN
