"""KDS action rules as pure functions (kitchen/actions.py); the broker's KDS service and
its replies are covered in tests/broker/test_kds.py and tests/security/test_kds_stations.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kitchen.actions import apply_action, check_serves, check_station, serve
from kitchen.errors import ActionRefused, StaleVersion
from kitchen.expo import expo_roll_up
from kitchen.routing import plan_submit
from protocol.config import StoreConfig
from protocol.errors import TransitionError
from protocol.messages.common import ErrorCode
from protocol.messages.kds import Bump, BumpLine, Prioritize, Recall, Start
from protocol.orders import Order, Priority
from protocol.tickets import ExpoOrder, ExpoState, LineState, Ticket, TicketState
from tests.broker.helpers import order, store_config

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def grill_ticket() -> Ticket:
    cfg = StoreConfig.model_validate(store_config())
    plan = plan_submit(Order.model_validate(order()), "o-1", cfg, NOW)
    return next(t for t in plan.tickets if t.station_id == "grill")


def act(kind: type, ticket: Ticket, **extra: object) -> Ticket:
    action = kind(ref="r-1", ticket_id=ticket.ticket_id, version=ticket.version, **extra)
    return apply_action(ticket, action, NOW)


def test_start_bump_recall_move_every_line_and_the_version() -> None:
    t = grill_ticket()
    started = act(Start, t)
    assert {ln.state for ln in started.lines} == {LineState.IN_PROGRESS}
    assert (started.state, started.version) == (TicketState.IN_PROGRESS, t.version + 1)
    bumped = act(Bump, started)
    assert (bumped.state, bumped.bumped_at) == (TicketState.READY, NOW)
    recalled = act(Recall, bumped)
    assert recalled.state is not TicketState.READY and recalled.bumped_at is None


def test_bump_line_moves_one_line_and_refuses_an_unknown_one() -> None:
    t = grill_ticket()
    first = t.lines[0].line_id
    one = act(BumpLine, t, line_id=first)
    assert one.lines[0].state is LineState.READY
    assert all(ln.state is LineState.NEW for ln in one.lines[1:])
    with pytest.raises(ActionRefused) as info:
        act(BumpLine, t, line_id="nope")
    assert info.value.code is ErrorCode.NOT_FOUND


def test_an_action_no_line_allows_is_a_transition_error() -> None:
    with pytest.raises(TransitionError):
        act(Recall, grill_ticket())  # nothing is ready yet


def test_prioritize_toggles_rush() -> None:
    t = grill_ticket().model_copy(update={"priority": Priority.NORMAL})
    rushed = act(Prioritize, t)
    assert rushed.priority is Priority.RUSH
    assert act(Prioritize, rushed).priority is Priority.NORMAL


def test_a_station_acts_on_its_own_tickets_and_expo_on_all() -> None:
    t = grill_ticket()
    check_station(t, "grill", expo=False)
    check_station(t, "expo", expo=True)
    with pytest.raises(ActionRefused) as info:
        check_station(t, "bar", expo=False)
    assert info.value.code is ErrorCode.FORBIDDEN


def ready_expo() -> ExpoOrder:
    t = grill_ticket().model_copy(update={"state": TicketState.READY})

    class Rec:
        order_id, store_id, cancelled, created_at = "o-1", t.store_id, False, NOW
        order = Order.model_validate(order())

    return expo_roll_up(Rec(), [t], 4, False)


def test_serve_a_ready_order_once() -> None:
    expo = ready_expo()
    assert expo.state is ExpoState.READY
    served = serve(expo, seen_version=4)
    assert served is not None and (served.state, served.version) == (ExpoState.SERVED, 5)
    assert serve(served, seen_version=4) is None  # the screen's own serve, repeated
    assert serve(served, seen_version=5) is None
    with pytest.raises(StaleVersion):
        serve(expo, seen_version=3)


def test_serve_refuses_an_order_not_ready_and_any_station_but_expo() -> None:
    expo = ready_expo().model_copy(update={"state": ExpoState.OPEN})
    with pytest.raises(ActionRefused) as info:
        serve(expo, seen_version=4)
    assert info.value.code is ErrorCode.ILLEGAL_TRANSITION
    check_serves(expo_station=True)
    with pytest.raises(ActionRefused) as info:
        check_serves(expo_station=False)
    assert info.value.code is ErrorCode.FORBIDDEN
