"""The pickup board's rules (kitchen/pickup.py): one readiness rule for the board and the
``order.ready`` webhook, and the number a guest looks for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kitchen.pickup import pickup_number, pickup_state, stations_pickup_state
from protocol.messages.board import PickupState
from protocol.tickets import ExpoState, TicketOrder, TicketState

PREPARING, READY = PickupState.PREPARING, PickupState.READY


@pytest.mark.parametrize(
    ("rolled", "with_expo", "without_expo"),
    [
        (ExpoState.SCHEDULED, None, None),  # held: no station has it yet
        (ExpoState.OPEN, PREPARING, PREPARING),
        (ExpoState.READY, PREPARING, READY),  # stations done: expo has not bumped it yet
        (ExpoState.SERVED, READY, READY),
        (ExpoState.CANCELLED, None, None),
    ],
)
def test_ready_is_expo_bumped_or_every_station_where_there_is_no_expo(
    rolled: ExpoState, with_expo: PickupState | None, without_expo: PickupState | None
) -> None:
    assert pickup_state(rolled, expo=True) is with_expo
    assert pickup_state(rolled, expo=False) is without_expo


def test_stations_rule_sets_voided_tickets_aside() -> None:
    R, V, N = TicketState.READY, TicketState.VOIDED, TicketState.NEW
    assert stations_pickup_state([R, V]) is READY
    assert stations_pickup_state([R, N]) is PREPARING
    assert stations_pickup_state([TicketState.IN_PROGRESS]) is PREPARING
    assert stations_pickup_state([V, V]) is None  # cancelled
    assert stations_pickup_state([]) is None


def order(**fields: object) -> TicketOrder:
    base: dict[str, object] = {"channel": "pos", "service": "takeout"}
    base["placed_at"] = datetime(2026, 11, 21, 12, 3, tzinfo=UTC)
    return TicketOrder.model_validate({**base, **fields})


def test_the_number_is_the_one_the_kitchen_screens_show() -> None:
    """kds_web/static/kds/labels.js ``orderNumber``, without its ``#``."""
    assert pickup_number(order(pickup_code="42", table="7", external_id="x"), "o-1") == "42"
    assert pickup_number(order(table="7", external_id="MT-1"), "o-1") == "T7"
    assert pickup_number(order(external_id="MT-20261121-0042"), "o-1") == "1-0042"
    assert pickup_number(order(external_id="A17"), "o-1") == "A17"
    assert pickup_number(order(), "o-3f9a2b7c") == "9a2b7c"
