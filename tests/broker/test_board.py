"""The pickup board's feed, ``/v1/ws/board``, over real sockets on every backend
(docs/kds.md#pickup-board): preparing → ready (expo serves, or every station bumps where
there is no expo) → gone; only numbers, never items or (by default) names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    open_kds,
    order,
    recv_json,
    store_config,
    token,
)
from tests.broker.test_kds_hq import act

SECRETS = ("Double cheeseburger", "宫保鸡丁", "Li", "no cutlery", "少辣", "MT-2026")


async def open_board(
    ep: Endpoints,
    store: str = "s-001",
    tok: str | None = None,
    resume: dict[str, Any] | None = None,
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(f"{ep.ws}/v1/ws/board", subprotocols=["passline.v1.json"], open_timeout=WAIT)  # type: ignore[list-item]
    hello: dict[str, Any] = {"type": "hello", "token": tok or token("board", store=store)}
    hello["store"] = store
    if resume is not None:
        hello["resume"] = resume
    await ws.send(json.dumps(hello))
    return ws, await recv_json(ws)


def no_expo_config(**extra: Any) -> dict[str, Any]:
    config = store_config(**extra)
    config["stations"] = [s for s in config["stations"] if not s.get("expo")]
    return config


async def configure(ep: Endpoints, config: dict[str, Any], store: str = "s-001") -> None:
    async with ep.client(token("hq")) as http:
        r = await http.put(f"/v1/stores/{store}/config", json=config)
        assert r.status_code == 200, r.text


async def submit(ep: Endpoints, external_id: str, **extra: Any) -> dict[str, Any]:
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order(external_id=external_id, **extra))
        assert r.status_code == 202, r.text
        body: dict[str, Any] = r.json()
        return body


async def bump_all(ep: Endpoints, order_id: str, stations: tuple[str, ...]) -> None:
    for station in stations:
        ws, snap = await open_kds(ep, station=station)
        (t,) = [t for t in snap["tickets"] if t["order_id"] == order_id]
        reply = await act(ws, type="bump", ref=f"b-{station}", ticket_id=t["ticket_id"], version=t["version"])  # fmt: skip
        assert reply["type"] == "ack", reply
        await ws.close()


def shows_nothing_private(*messages: dict[str, Any]) -> None:
    text = json.dumps(messages, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text, secret
    assert '"lines"' not in text and '"items"' not in text


async def test_an_order_is_preparing_then_ready_when_expo_serves_it(
    ep: Endpoints, store: str
) -> None:
    board, snap = await open_board(ep)
    assert snap["type"] == "snapshot" and snap["preparing"] == [] and snap["ready"] == []
    assert snap["title"] == "Demo Noodle House" and snap["ready_s"] == 600
    sub = await submit(ep, "b-1")
    oid = sub["order_id"]
    preparing = await recv_json(board)
    assert preparing["type"] == "board_order"
    assert preparing["order"] == {
        "order_id": oid,
        "number": "42",
        "state": "preparing",
        "since": preparing["order"]["since"],
        "name": None,
    }
    await bump_all(ep, oid, ("grill", "bar"))  # every station done: still preparing for the guest
    expo, esnap = await open_kds(ep, station="expo")
    (roll,) = esnap["orders"]
    assert roll["state"] == "ready"
    served = await act(expo, type="serve", ref="s", order_id=oid, version=roll["version"])
    assert served["type"] == "ack" and served["order"]["served_at"]
    ready = await recv_json(board)
    assert ready["type"] == "board_order" and ready["order"]["state"] == "ready"
    assert ready["order"]["since"] == served["order"]["served_at"]
    assert ready["offset"] > preparing["offset"]
    # a board that starts now finds the ready order in the recent stream
    late, snap2 = await open_board(ep)
    assert [o["order_id"] for o in snap2["ready"]] == [oid] and snap2["preparing"] == []
    shows_nothing_private(snap, preparing, ready, snap2)
    for ws in (board, late, expo):
        await ws.close()


async def test_without_expo_an_order_is_ready_when_every_station_bumped(
    ep: Endpoints,
) -> None:
    await configure(ep, no_expo_config())
    sub = await submit(ep, "b-2", pickup_code="A17")
    oid = sub["order_id"]
    board, snap = await open_board(ep)
    assert [(o["number"], o["state"]) for o in snap["preparing"]] == [("A17", "preparing")]
    await bump_all(ep, oid, ("grill",))
    late, mid = await open_board(ep)  # one station left: preparing, loaded with all tickets
    assert [o["order_id"] for o in mid["preparing"]] == [oid] and mid["ready"] == []
    await bump_all(ep, oid, ("bar",))
    ready = await recv_json(board)
    assert ready["type"] == "board_order" and ready["order"]["state"] == "ready"
    assert (await recv_json(late))["order"]["state"] == "ready"
    # a station recalls its ticket: preparing again, ready again on its next bump
    grill, _ = await open_kds(ep, station="grill")
    async with ep.client(token("hq")) as http:
        view = (await http.get(f"/v1/orders/{oid}")).json()
    (t,) = [t for t in view["tickets"] if t["station_id"] == "grill"]
    recall_ack = await act(grill, type="recall", ref="r", ticket_id=t["ticket_id"], version=t["version"])  # fmt: skip
    assert recall_ack["type"] == "ack"
    assert (await recv_json(board))["order"]["state"] == "preparing"
    again = await act(grill, type="bump", ref="b2", ticket_id=t["ticket_id"], version=t["version"] + 1)  # fmt: skip
    assert again["type"] == "ack"
    assert (await recv_json(board))["order"]["state"] == "ready"
    shows_nothing_private(snap, mid, ready)
    for ws in (board, late, grill):
        await ws.close()


async def test_a_cancelled_order_leaves_and_a_resumed_board_learns_it(
    ep: Endpoints, store: str
) -> None:
    board, snap = await open_board(ep)
    sub = await submit(ep, "b-3")
    first = await recv_json(board)
    assert first["order"]["state"] == "preparing"
    await board.close()
    async with ep.client(token("ingest")) as http:
        r = await http.post(f"/v1/orders/{sub['order_id']}/cancel", json={})
        assert r.status_code == 200
    resumed, snap2 = await open_board(
        ep, resume={"epoch": snap["epoch"], "offset": first["offset"]}
    )
    assert snap2["preparing"] == [] and snap2["gone"] == [sub["order_id"]]
    await resumed.close()
    live, _ = await open_board(ep)
    other = await submit(ep, "b-4")
    assert (await recv_json(live))["order"]["order_id"] == other["order_id"]
    async with ep.client(token("ingest")) as http:
        await http.post(f"/v1/orders/{other['order_id']}/cancel", json={})
    removed = await recv_json(live)
    assert removed["type"] == "board_removed" and removed["order_id"] == other["order_id"]
    await live.close()


async def test_names_services_and_scheduled_orders_follow_the_config(ep: Endpoints) -> None:
    board_cfg = {"names": True, "ready_s": 120, "services": ["delivery", "pickup"]}
    prep = {"burgers": 60, "mains": 60, "drinks": 60}
    await configure(ep, store_config(board=board_cfg, prep_s_by_category=prep))
    board, snap = await open_board(ep)
    assert snap["ready_s"] == 120
    await submit(ep, "b-5", service="dine_in", table="12", pickup_code=None)  # not this board's
    due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    held = await submit(ep, "b-6", due_at=due)
    assert held["fire_at"]  # held: not preparing yet
    shown = await submit(ep, "b-7", pickup_code=None, customer="王先生")
    msg = await recv_json(board)
    assert msg["order"]["order_id"] == shown["order_id"]
    assert msg["order"]["name"] == "王先生" and msg["order"]["number"] == "b-7"
    async with ep.client(token("hq")) as http:  # fired early: now it is preparing
        r = await http.post(f"/v1/orders/{held['order_id']}/fire")
        assert r.status_code == 200, r.text
    fired = await recv_json(board)
    assert (fired["order"]["order_id"], fired["order"]["state"]) == (held["order_id"], "preparing")
    await board.close()


async def test_a_config_change_that_matters_restarts_the_board(ep: Endpoints, store: str) -> None:
    board, _ = await open_board(ep)
    await configure(ep, store_config(board={"names": True}))
    try:
        while True:
            await recv_json(board)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1013


async def test_a_board_token_opens_only_its_own_stores_board(ep: Endpoints, store: str) -> None:
    """The other half of the matrix (every REST route, the other websockets) is
    ``tests/security/test_board_scope.py``."""
    for who, tok in {
        "board of another store": token("board", store="s-002"),
        "kds": token("kds", store="s-001"),
        "hq": token("hq"),
        "store": token("store", store="s-001"),
        "ingest": token("ingest"),
    }.items():
        with pytest.raises(ConnectionClosed) as closed:
            await open_board(ep, tok=tok)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, who
    board, _ = await open_board(ep)
    await board.send(json.dumps({"type": "hello", "token": token("board", store="s-001"), "store": "s-001"}))  # fmt: skip
    with pytest.raises(ConnectionClosed) as closed:
        await recv_json(board)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
