"""The pickup board's session core without sockets (broker/session_board.py): the
snapshot from recent history and live records, then frames from entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.session_board import BoardSession
from broker.storage import Entry, EntryKind
from protocol.config import BoardConfig, VersionedStoreConfig
from protocol.tickets import ExpoOrder, ExpoState, ExpoStation, Ticket, TicketLine, TicketState
from tests.broker.helpers import store_config

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ORDER = {"channel": "meituan", "service": "delivery", "pickup_code": "42", "customer": "Li",
         "placed_at": T0.isoformat(), "external_id": "MT-1", "note": "no cutlery"}  # fmt: skip


def roll(order_id: str, state: ExpoState, version: int, **extra: Any) -> ExpoOrder:
    return ExpoOrder.model_validate({
        "order_id": order_id, "store_id": "s-1", "version": version, "state": state,
        "created_at": T0.isoformat(), "order": {**ORDER, **extra},
        "stations": [ExpoStation(station_id="grill", ticket_id="t", state=TicketState.NEW)],
    })  # fmt: skip


def ticket(order_id: str, station: str, state: TicketState, version: int, **extra: Any) -> Ticket:
    return Ticket.model_validate({
        "ticket_id": f"{order_id}-{station}", "order_id": order_id, "store_id": "s-1",
        "station_id": station, "version": version, "state": state,
        "created_at": T0.isoformat(), "order": {**ORDER, **extra},
        "lines": [TicketLine(line_id="1", name="宫保鸡丁", qty=1)],
        "bumped_at": (T0 + timedelta(minutes=version)).isoformat()
        if state is TicketState.READY else None,
    })  # fmt: skip


def entry(offset: int, model: ExpoOrder | Ticket) -> Entry:
    if isinstance(model, ExpoOrder):
        return Entry(offset, EntryKind.ORDER, model.model_dump_json(), "expo")
    return Entry(offset, EntryKind.TICKET, model.model_dump_json(), model.station_id)


def session(expo: bool, **board: Any) -> BoardSession:
    return BoardSession("s-1", "Noodle House", expo, BoardConfig(**board))


def frames(s: BoardSession, offset: int, model: ExpoOrder | Ticket, at: datetime) -> list[Any]:
    return [json.loads(f) for f in s.frames(entry(offset, model), at)]


def test_expo_snapshot_lists_preparing_from_live_and_ready_from_the_window() -> None:
    s = session(expo=True)
    served = roll("o-1", ExpoState.SERVED, 4).model_copy(
        update={"served_at": T0 + timedelta(minutes=3)}
    )
    stale = roll("o-2", ExpoState.SERVED, 3).model_copy(update={"served_at": T0})
    window = [
        entry(1, roll("o-1", ExpoState.OPEN, 1)),
        entry(2, roll("o-2", ExpoState.OPEN, 1)),
        entry(3, roll("o-3", ExpoState.OPEN, 1)),
        entry(4, stale),
        entry(5, served),
        entry(6, roll("o-3", ExpoState.CANCELLED, 2)),
    ]
    live = [roll("o-4", ExpoState.READY, 3), roll("o-5", ExpoState.SCHEDULED, 1)]
    now = T0 + timedelta(minutes=12)  # o-2 was served 12 min ago: past ready_s
    snap = s.start(window, live, "e", 6, now)
    assert [(o.order_id, o.state.value) for o in snap.preparing] == [("o-4", "preparing")]
    assert [(o.order_id, o.since) for o in snap.ready] == [("o-1", served.served_at)]
    assert snap.gone == ("o-3",)
    assert "o-2" not in s.orders  # forgotten: the board has dropped it by now
    assert snap.ready[0].name is None and snap.ready[0].number == "42"


def test_expo_frames_only_on_a_change_of_pickup_state() -> None:
    s = session(expo=True)
    s.start([], [roll("o-1", ExpoState.OPEN, 2)], "e", 0, T0)
    assert frames(s, 1, roll("o-1", ExpoState.OPEN, 2), T0) == []  # not newer than loaded
    assert frames(s, 2, roll("o-1", ExpoState.READY, 3), T0) == []  # stations done: still preparing
    (ready,) = frames(s, 3, roll("o-1", ExpoState.SERVED, 4), T0)
    assert ready["type"] == "board_order" and ready["order"]["state"] == "ready"
    assert ready["offset"] == 3
    assert frames(s, 4, roll("o-1", ExpoState.SERVED, 5), T0) == []  # amended after serving
    (gone,) = frames(s, 5, roll("o-1", ExpoState.CANCELLED, 6), T0)
    assert gone == {"type": "board_removed", "offset": 5, "order_id": "o-1"}
    assert frames(s, 6, roll("o-9", ExpoState.SCHEDULED, 1), T0) == []


def test_without_expo_an_order_needs_all_its_tickets_ready() -> None:
    s = session(expo=False, names=True)
    loaded = [  # o-1: bar done before the board started, grill still cooking
        ticket("o-1", "bar", TicketState.READY, 2),
        ticket("o-1", "grill", TicketState.IN_PROGRESS, 2),
    ]
    snap = s.start([], loaded, "e", 10, T0)
    assert [(o.order_id, o.name) for o in snap.preparing] == [("o-1", "Li")]
    assert frames(s, 11, ticket("o-1", "grill", TicketState.IN_PROGRESS, 2), T0) == []
    (ready,) = frames(s, 12, ticket("o-1", "grill", TicketState.READY, 3), T0)
    assert ready["order"]["state"] == "ready"
    (back,) = frames(s, 13, ticket("o-1", "bar", TicketState.IN_PROGRESS, 3), T0)  # recalled
    assert back["order"]["state"] == "preparing"
    # an order placed later comes whole in one commit: preparing until both are ready
    assert (
        frames(s, 14, ticket("o-2", "grill", TicketState.NEW, 1), T0)[0]["order"]["state"]
        == "preparing"
    )
    assert frames(s, 14, ticket("o-2", "bar", TicketState.NEW, 1), T0) == []
    assert frames(s, 15, ticket("o-2", "bar", TicketState.READY, 2), T0) == []
    assert (
        frames(s, 16, ticket("o-2", "grill", TicketState.VOIDED, 2), T0)[0]["order"]["state"]
        == "ready"
    )


def test_ready_orders_are_forgotten_after_ready_s() -> None:
    s = session(expo=True, ready_s=60)
    s.start([], [roll("o-1", ExpoState.READY, 1)], "e", 0, T0)
    served = roll("o-1", ExpoState.SERVED, 2).model_copy(update={"served_at": T0})
    assert frames(s, 1, served, T0)[0]["order"]["state"] == "ready"
    assert "o-1" in s.orders
    frames(s, 2, roll("o-2", ExpoState.OPEN, 1), T0 + timedelta(minutes=5))
    assert list(s.orders) == ["o-2"]


def test_services_outside_the_config_and_names_stay_off_the_board() -> None:
    s = session(expo=True, services=("pickup",))
    s.start([], [], "e", 0, T0)
    assert frames(s, 1, roll("o-1", ExpoState.OPEN, 1), T0) == []  # delivery
    (shown,) = frames(s, 2, roll("o-2", ExpoState.OPEN, 1, service="pickup"), T0)
    assert shown["order"]["name"] is None
    text = json.dumps(shown, ensure_ascii=False)
    assert "宫保鸡丁" not in text and "no cutlery" not in text and "MT-1" not in text


def test_a_config_that_changes_the_board_outdates_the_session() -> None:
    def config(**extra: Any) -> Entry:
        body = VersionedStoreConfig.model_validate(
            {**store_config(**extra), "store_id": "s-1", "version": 2}
        )
        return Entry(1, EntryKind.CONFIG, body.model_dump_json())

    base = VersionedStoreConfig.model_validate({**store_config(), "store_id": "s-1", "version": 1})
    s = BoardSession.for_config("s-1", base)
    assert s.expo and s.title == "Demo Noodle House"
    assert not s.outdated_by(config(failover_after_s=60))
    assert s.outdated_by(config(board={"names": True}))
    assert s.outdated_by(config(name="New name"))
    no_expo = [st for st in store_config()["stations"] if not st.get("expo")]
    assert s.outdated_by(config(stations=no_expo))
