"""Scheduled orders (issue 17, "fire at the right time"; docs/kds.md#scheduled-orders).

A broker on a fake clock, real sockets: an order due in 20 minutes whose longest line
takes 8 minutes reaches the grill screen and the store link 12 minutes after submit, not
before. "Nothing arrived yet" is shown without waiting on time: an ordinary order (a
marker) is submitted after the check, and the marker's ticket and job must be the first
frames the screen and the store link get.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from broker.app import Broker, start_broker
from tests.broker.conftest import test_settings as broker_settings
from tests.broker.helpers import (
    Endpoints,
    open_kds,
    open_store,
    order,
    recv_json,
    recv_msgpack,
    send_msgpack,
    store_config,
    token,
)

T0 = datetime(2031, 5, 6, 11, 40, tzinfo=UTC)
DUE = T0 + timedelta(minutes=20)
FIRE = T0 + timedelta(minutes=12)  # the grill's 8 minutes of prep before DUE


class FakeClock:
    """The broker's clock (``broker/clock.py``), moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def prep_config(**extra: Any) -> dict[str, Any]:
    config = store_config(**extra)
    for st in config["stations"]:
        st["prep_s"] = {"grill": 480, "bar": 60}.get(st["station_id"])
    return config


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@pytest.fixture
async def clocked(storage: str) -> AsyncIterator[tuple[Broker, Endpoints, FakeClock]]:
    clock = FakeClock(T0)
    async with start_broker(broker_settings(storage), now=clock) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-001/config", json=prep_config())
            assert r.status_code == 200, r.text
        yield b, ep, clock


async def submit(ep: Endpoints, external_id: str, due: datetime | None = DUE) -> dict[str, Any]:
    body = order(external_id=external_id)
    if due is not None:
        body["due_at"] = due.isoformat()
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=body)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


async def next_ticket(ws: ClientConnection) -> dict[str, Any]:
    """The next ticket frame on a station screen (all-day counts skipped)."""
    while True:
        msg = await recv_json(ws)
        if msg["type"] != "all_day":
            assert msg["type"] == "ticket", msg
            return msg


async def next_order(ws: ClientConnection) -> dict[str, Any]:
    msg = await recv_json(ws)
    assert msg["type"] == "order", msg
    order_: dict[str, Any] = msg["order"]
    return order_


async def next_job(ws: ClientConnection) -> dict[str, Any]:
    """The next job on the store link (config pushes acknowledged and skipped)."""
    while True:
        msg = await recv_msgpack(ws)
        await send_msgpack(ws, {"type": "ack", "offset": msg["offset"]})
        if msg["type"] != "config":
            assert msg["type"] == "job", msg
            job: dict[str, Any] = msg["job"]
            return job


async def nothing_before_a_marker(
    ep: Endpoints, marker: str, grill: ClientConnection, link: ClientConnection
) -> None:
    """What the grill screen and the store link get next is the marker order's."""
    sent = await submit(ep, marker, due=None)
    assert (await next_ticket(grill))["ticket"]["order_id"] == sent["order_id"]
    for _ in sent["jobs"]:
        assert (await next_job(link))["order_id"] == sent["order_id"]


async def view(ep: Endpoints, order_id: str) -> dict[str, Any]:
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_scheduled_order_fires_at_due_minus_prep_not_before(
    clocked: tuple[Broker, Endpoints, FakeClock],
) -> None:
    b, ep, clock = clocked
    link, welcome = await open_store(ep)
    assert welcome["jobs"] == []
    grill, snap = await open_kds(ep, station="grill")
    expo, expo_snap = await open_kds(ep, station="expo")
    assert snap["tickets"] == [] and expo_snap["orders"] == []

    sent = await submit(ep, "SCHED-1")
    assert parse(sent["fire_at"]) == FIRE
    assert {t["station_id"] for t in sent["tickets"]} == {"grill", "bar"}
    assert {j["printer_id"] for j in sent["jobs"]} == {"kitchen", "bar", "receipt"}
    scheduled = await next_order(expo)
    assert scheduled["state"] == "scheduled" and parse(scheduled["fire_at"]) == FIRE
    assert {s["station_id"] for s in scheduled["stations"]} == {"grill", "bar"}
    held = await view(ep, sent["order_id"])
    assert parse(held["fire_at"]) == FIRE and held["tickets"] == [] and held["jobs"] == []
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/jobs/{sent['jobs'][0]['job_id']}")
    assert r.status_code == 404  # the job exists from its fire time

    clock.at = FIRE - timedelta(seconds=1)
    assert await b.services.scheduler.run_due() == []
    await nothing_before_a_marker(ep, "MARK-1", grill, link)
    assert (await next_order(expo))["order"]["external_id"] == "MARK-1"

    clock.at = FIRE
    await b.services.scheduler.run_due()
    ticket = (await next_ticket(grill))["ticket"]
    assert ticket["order_id"] == sent["order_id"] and parse(ticket["created_at"]) == FIRE
    assert parse(ticket["order"]["due_at"]) == DUE
    jobs = [await next_job(link) for _ in sent["jobs"]]
    assert {j["job_id"] for j in jobs} == {j["job_id"] for j in sent["jobs"]}
    assert {parse(j["created_at"]) for j in jobs} == {FIRE}
    assert {parse(j["expires_at"]) for j in jobs} == {FIRE + timedelta(seconds=1800)}
    fired = await next_order(expo)
    assert (fired["order_id"], fired["state"], fired["fire_at"]) == (
        sent["order_id"],
        "open",
        None,
    )
    assert parse(fired["created_at"]) == FIRE  # the expo's timer counts from the fire

    after = await view(ep, sent["order_id"])
    assert after["fire_at"] is None and len(after["tickets"]) == 2
    assert {j["state"] for j in after["jobs"]} <= {"queued", "sent", "spooled"}
    clock.at = DUE
    assert await b.services.scheduler.run_due() == []  # fired once only
    await nothing_before_a_marker(ep, "MARK-2", grill, link)
    for ws in (link, grill, expo):
        await ws.close()


async def test_fire_now_over_rest(clocked: tuple[Broker, Endpoints, FakeClock]) -> None:
    b, ep, clock = clocked
    link, _ = await open_store(ep)
    grill, _ = await open_kds(ep, station="grill")
    sent = await submit(ep, "SCHED-2")
    order_id = sent["order_id"]
    async with ep.client(token("kds", store="s-001")) as http:
        assert (await http.post(f"/v1/orders/{order_id}/fire")).status_code == 403
    async with ep.client(token("ingest", stores=["s-999"])) as http:
        assert (await http.post(f"/v1/orders/{order_id}/fire")).status_code == 404
    async with ep.client(token("ingest", stores=["s-001"])) as http:
        r = await http.post(f"/v1/orders/{order_id}/fire")
        assert r.status_code == 200, r.text
        assert r.json()["duplicate"] is False and r.json()["fire_at"] is None
        assert {j["job_id"] for j in r.json()["jobs"]} == {j["job_id"] for j in sent["jobs"]}
        ticket = (await next_ticket(grill))["ticket"]
        assert ticket["order_id"] == order_id and parse(ticket["created_at"]) == T0
        assert {(await next_job(link))["job_id"] for _ in sent["jobs"]} == {
            j["job_id"] for j in sent["jobs"]
        }
        again = await http.post(f"/v1/orders/{order_id}/fire")
        assert again.status_code == 200
        assert again.json()["duplicate"] is True and again.json()["jobs"] == []
        missing = await http.post("/v1/orders/o-nothing/fire")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    clock.at = FIRE
    assert await b.services.scheduler.run_due() == []  # its time came: fired already
    await nothing_before_a_marker(ep, "MARK-3", grill, link)
    await link.close()
    await grill.close()


async def test_fire_now_from_the_expo(clocked: tuple[Broker, Endpoints, FakeClock]) -> None:
    _, ep, _ = clocked
    grill, _ = await open_kds(ep, station="grill")
    expo, _ = await open_kds(ep, station="expo")
    sent = await submit(ep, "SCHED-3")
    scheduled = await next_order(expo)
    fire = {"type": "fire", "ref": "f-1", "order_id": sent["order_id"], "version": 1}
    await grill.send(json.dumps(fire))
    refused = await recv_json(grill)
    assert (refused["type"], refused["code"]) == ("error", "forbidden")

    await expo.send(json.dumps({**fire, "version": scheduled["version"]}))
    replies = [await recv_json(expo), await recv_json(expo)]  # the ack and the roll-up
    ack = next(m for m in replies if m["type"] == "ack")
    assert ack["ref"] == "f-1" and ack["order"]["state"] == "open"
    assert (await next_ticket(grill))["ticket"]["order_id"] == sent["order_id"]
    await expo.send(json.dumps({**fire, "ref": "f-2"}))  # fired already: ack
    assert (await recv_json(expo))["type"] == "ack"
    await grill.close()
    await expo.close()


async def test_cancel_of_a_scheduled_order_never_fires(
    clocked: tuple[Broker, Endpoints, FakeClock],
) -> None:
    b, ep, clock = clocked
    link, _ = await open_store(ep)
    grill, _ = await open_kds(ep, station="grill")
    expo, _ = await open_kds(ep, station="expo")
    sent = await submit(ep, "SCHED-4")
    assert (await next_order(expo))["state"] == "scheduled"
    async with ep.client(token("ingest")) as http:
        r = await http.post(f"/v1/orders/{sent['order_id']}/cancel", json={"reason": "guest"})
        assert r.status_code == 200, r.text
        assert r.json()["tickets"] == [] and r.json()["jobs"] == []  # nothing to void
        again = await http.post(f"/v1/orders/{sent['order_id']}/cancel")
        assert again.json()["duplicate"] is True
        fire = await http.post(f"/v1/orders/{sent['order_id']}/fire")
        assert fire.status_code == 409
        assert fire.headers["content-type"] == "application/problem+json"
    assert (await next_order(expo))["state"] == "cancelled"
    clock.at = DUE
    assert await b.services.scheduler.run_due() == []
    await nothing_before_a_marker(ep, "MARK-4", grill, link)
    gone = await view(ep, sent["order_id"])
    assert gone["cancelled"] is True and gone["tickets"] == [] and gone["jobs"] == []
    assert gone["fire_at"] is None
    for ws in (link, grill, expo):
        await ws.close()


async def test_amend_replans_a_scheduled_order(
    clocked: tuple[Broker, Endpoints, FakeClock],
) -> None:
    b, ep, clock = clocked
    link, _ = await open_store(ep)
    grill, _ = await open_kds(ep, station="grill")
    sent = await submit(ep, "SCHED-5")
    order_id = sent["order_id"]
    async with ep.client(token("ingest")) as http:
        r = await http.post(f"/v1/orders/{order_id}/amend", json={"void": ["3"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["revision"] == 2 and parse(body["fire_at"]) == FIRE
        assert [t["station_id"] for t in body["tickets"]] == ["grill"]  # the bar had only "3"
        assert {(j["printer_id"], j["template"]) for j in body["jobs"]} == {
            ("kitchen", "kitchen"),
            ("receipt", "receipt"),
        }  # first chits at the new revision, no delta
        r = await http.post(f"/v1/orders/{order_id}/reprint")
        assert r.status_code == 409  # nothing printed yet
        cake = {"line_id": "9", "sku": "C09", "name": "Slow cake", "qty": 1, "category": "mains"}
        async with ep.client(token("hq")) as hq:
            config = prep_config(prep_s_by_sku={"C09": 1500})  # 25 minutes: past due - now
            assert (await hq.put("/v1/stores/s-001/config", json=config)).status_code == 200
        r = await http.post(f"/v1/orders/{order_id}/amend", json={"add": [cake]})
        assert r.status_code == 200, r.text
        assert r.json()["revision"] == 3 and r.json()["fire_at"] is None  # fired at once
    ticket = (await next_ticket(grill))["ticket"]
    assert ticket["revision"] == 3 and [ln["line_id"] for ln in ticket["lines"]] == ["1", "2", "9"]
    assert all(ln["change"] is None for ln in ticket["lines"])
    jobs = [await next_job(link) for _ in r.json()["jobs"]]
    assert {(j["printer_id"], j["template"], j["revision"]) for j in jobs} == {
        ("kitchen", "kitchen", 3),
        ("receipt", "receipt", 3),
    }
    clock.at = DUE
    assert await b.services.scheduler.run_due() == []
    await nothing_before_a_marker(ep, "MARK-5", grill, link)
    await link.close()
    await grill.close()


async def test_orders_without_prep_times_or_already_due_fire_at_submit(
    clocked: tuple[Broker, Endpoints, FakeClock],
) -> None:
    _, ep, _ = clocked
    grill, _ = await open_kds(ep, station="grill")
    late = await submit(ep, "LATE-1", due=T0 + timedelta(minutes=5))  # 8 min prep: past
    assert late["fire_at"] is None
    assert (await next_ticket(grill))["ticket"]["order_id"] == late["order_id"]
    async with ep.client(token("hq")) as http:  # a config from before prep times
        assert (await http.put("/v1/stores/s-001/config", json=store_config())).status_code == 200
    old = await submit(ep, "OLD-1")
    assert old["fire_at"] is None
    assert (await next_ticket(grill))["ticket"]["order_id"] == old["order_id"]
    async with ep.client(token("hq")) as http:
        assert (await http.put("/v1/stores/s-001/config", json=prep_config())).status_code == 200
    body = order(external_id="FAR-1", due_at=(T0 + timedelta(days=4)).isoformat())
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "due_at"
        repeat = await http.post(
            "/v1/orders", json=order(external_id="SCHED-6", due_at=DUE.isoformat())
        )
        assert repeat.status_code == 202
        again = await http.post(
            "/v1/orders", json=order(external_id="SCHED-6", due_at=DUE.isoformat())
        )
        assert again.status_code == 200
        assert again.json() == {**repeat.json(), "duplicate": True}
    await grill.close()


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_a_restarted_broker_still_fires_what_it_held(storage: str, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    settings = broker_settings(storage)
    async with start_broker(settings, now=clock) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        async with ep.client(token("hq")) as http:
            assert (
                await http.put("/v1/stores/s-001/config", json=prep_config())
            ).status_code == 200
        sent = await submit(ep, "SCHED-7")
    clock.at = FIRE + timedelta(minutes=30)  # the broker was down at the fire time
    async with start_broker(settings, now=clock) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        grill, snap = await open_kds(ep, station="grill")
        if not snap["tickets"]:  # fired after the snapshot was read
            ticket = (await next_ticket(grill))["ticket"]
        else:
            ticket = snap["tickets"][0]
        assert ticket["order_id"] == sent["order_id"]
        assert parse(ticket["created_at"]) == clock.at  # the station's timer starts now
        await grill.close()


@pytest.mark.parametrize("storage", ["redis"], indirect=True)
async def test_two_nodes_fire_a_held_order_once(storage: str) -> None:
    """Two broker nodes on one redis fire the same held order at the same moment: the
    order record's version check lets one commit through, the other finds it fired. Then
    both schedulers (the second read the order from storage, as its periodic rescan
    does) reach its fire time: nothing fires again."""
    clock = FakeClock(T0)
    async with (
        start_broker(broker_settings(storage), now=clock) as a,
        start_broker(broker_settings(storage), now=clock) as b,
    ):
        ep_a = Endpoints(f"http://127.0.0.1:{a.http_port}", f"ws://127.0.0.1:{a.ws_port}")
        ep_b = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        async with ep_a.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-001/config", json=prep_config())
            assert r.status_code == 200
        link, _ = await open_store(ep_b)
        grill, _ = await open_kds(ep_b, station="grill")
        sent = await submit(ep_a, "SCHED-8")
        order_id = sent["order_id"]
        assert await b.services.scheduler.load() == 1  # what B's rescan would find
        both = await asyncio.gather(
            a.services.orders.fire(order_id), b.services.orders.fire(order_id)
        )
        assert sorted(done for done, _ in both) == [False, True]
        assert (await next_ticket(grill))["ticket"]["order_id"] == order_id
        jobs = [await next_job(link) for _ in sent["jobs"]]
        assert sorted(j["job_id"] for j in jobs) == sorted(j["job_id"] for j in sent["jobs"])
        clock.at = FIRE
        fired = await asyncio.gather(a.services.scheduler.run_due(), b.services.scheduler.run_due())
        assert fired == [[], []]
        await nothing_before_a_marker(ep_a, "MARK-8", grill, link)  # no second fire
        await link.close()
        await grill.close()
