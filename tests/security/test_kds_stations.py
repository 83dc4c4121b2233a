"""A kitchen screen acts only on its own station's tickets, and only the expo station
serves (issue 14 point 2d; kitchen/actions.py, broker/kds_actions.py). A refused action is an ``error`` reply with
code ``forbidden``, and the ticket or order is as it was: its owner's next action at the
version it saw still applies."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.broker.helpers import Endpoints, open_kds, order, recv_json, token


class Screen:
    """A KDS screen that keeps the deltas it reads past while waiting for a reply."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, ep: Endpoints, station: str) -> Screen:
        ws, snapshot = await open_kds(ep, station=station)
        assert snapshot["type"] == "snapshot", snapshot
        return cls(ws)

    async def next(self, kind: str) -> dict[str, Any]:
        while self.inbox:
            msg = self.inbox.pop(0)
            if msg["type"] == kind:
                return msg
        while (msg := await recv_json(self.ws))["type"] != kind:
            pass
        return msg

    async def act(self, **action: Any) -> dict[str, Any]:
        await self.ws.send(json.dumps(action))
        while True:
            reply = await recv_json(self.ws)
            if reply["type"] in ("ack", "error") and reply.get("ref") == action["ref"]:
                return reply
            self.inbox.append(reply)


async def submit(ep: Endpoints, external_id: str) -> str:
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order(external_id=external_id))
    assert r.status_code == 202, r.text
    order_id: str = r.json()["order_id"]
    return order_id


async def tickets_of(ep: Endpoints, order_id: str) -> dict[str, Any]:
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/orders/{order_id}")
    return {t["station_id"]: t for t in r.json()["tickets"]}


async def test_a_station_cannot_act_on_another_stations_ticket(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        grill, bar = await Screen.open(ep, "grill"), await Screen.open(ep, "bar")
        order_id = await submit(ep, "stations-1")
        ticket = (await grill.next("ticket"))["ticket"]
        tid, version = ticket["ticket_id"], ticket["version"]
        before = await tickets_of(ep, order_id)
        actions = [
            {"type": "start"},
            {"type": "bump"},
            {"type": "bump_line", "line_id": "1"},
            {"type": "recall"},
            {"type": "prioritize"},
        ]
        for n, action in enumerate(actions):
            reply = await bar.act(**action, ref=f"x{n}", ticket_id=tid, version=version)
            assert reply["type"] == "error" and reply["code"] == "forbidden", reply
            assert "another station" in reply["message"] and reply.get("ticket") is None
        assert await tickets_of(ep, order_id) == before
        own = await grill.act(type="start", ref="own", ticket_id=tid, version=version)
        assert own["type"] == "ack" and own["ticket"]["version"] == version + 1


async def test_only_the_expo_station_serves(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        expo = await Screen.open(ep, "expo")
        grill, bar = await Screen.open(ep, "grill"), await Screen.open(ep, "bar")
        order_id = await submit(ep, "stations-2")
        for screen in (grill, bar):
            t = (await screen.next("ticket"))["ticket"]
            bumped = await screen.act(
                type="bump", ref="b", ticket_id=t["ticket_id"], version=t["version"]
            )
            assert bumped["type"] == "ack", bumped
        while (roll := (await expo.next("order"))["order"])["state"] != "ready":
            pass
        for n, screen in enumerate((grill, bar)):
            refused = await screen.act(
                type="serve", ref=f"s{n}", order_id=order_id, version=roll["version"]
            )
            assert refused["type"] == "error" and refused["code"] == "forbidden", refused
            assert refused["message"] == "only the expo station serves orders"
        served = await expo.act(type="serve", ref="s", order_id=order_id, version=roll["version"])
        assert served["type"] == "ack" and served["order"]["state"] == "served"
        assert served["order"]["version"] == roll["version"] + 1  # the refusals changed nothing
