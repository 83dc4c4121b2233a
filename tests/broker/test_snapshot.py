"""Snapshots, numbered reports and the link lease on the store link (DESIGN.md §8.2)."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from protocol.ids import order_id_for
from tests.broker.helpers import (
    WAIT,
    Endpoints,
    auth,
    open_store,
    order,
    read_snapshot,
    recv_msgpack,
    send_msgpack,
    token,
)
from tests.broker.test_store_link import NOW, eventually, job_state, state_is, submit

PAGE_LIMIT = 48 * 1024


async def hello(
    ep: Endpoints, client_id: str, resume: dict[str, Any] | None = None
) -> tuple[ClientConnection, dict[str, Any]]:
    """A store link that says which client (spool) it is."""
    ws = await connect(
        f"{ep.ws}/v1/ws/store",
        subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
        additional_headers=auth(token("store", store="s-001")),
        open_timeout=WAIT,
        max_size=None,
    )
    await send_msgpack(
        ws,
        {"type": "hello", "store_id": "s-001", "client_version": "test/1", "protocol": 1,
         "resume": resume, "printers": [], "client_id": client_id},
    )  # fmt: skip
    welcome = await recv_msgpack(ws)
    assert welcome["type"] == "welcome", welcome
    if welcome.get("paged"):
        await read_snapshot(ws, welcome)
    return ws, welcome


async def test_a_big_snapshot_comes_in_pages_in_stream_order(ep: Endpoints, store: str) -> None:
    subs = await submit(ep, 120)  # 3 jobs an order, ~1 KiB each: several pages
    ws, welcome = await open_store(ep, max_size=None)
    assert welcome["recovered"] is False and welcome["paged"] is True
    assert len(welcome["pages"]) > 1 and max(welcome["pages"]) <= PAGE_LIMIT
    snapshot = [j["job_id"] for j in welcome["jobs"]]
    await ws.close()
    resume = {"epoch": welcome["epoch"], "offset": 0}
    ws, replayed = await open_store(ep, resume=resume)  # the stream itself, for comparison
    assert replayed["recovered"] is True
    stream: list[str] = []
    while len(stream) < len(snapshot):
        msg = await recv_msgpack(ws)
        if msg["type"] == "job":
            stream.append(msg["job"]["job_id"])
    assert snapshot == stream
    await send_msgpack(ws, {"type": "ack", "offset": welcome["offset"]})
    last = subs[-1]["jobs"][-1]["job_id"]
    await eventually(state_is(ep, last, "spooled"))
    await ws.close()


async def test_a_fresh_spool_is_not_sent_what_the_old_one_was_printing(
    ep: Endpoints, store: str
) -> None:
    """Point 11: a snapshot to an empty spool resent jobs the broker had as ``printing``;
    their bytes may be on paper already, so they are ``uncertain`` instead."""
    [sub] = await submit(ep, 1)
    printing, *rest = [j["job_id"] for j in sub["jobs"]]
    ws, welcome = await hello(ep, "c-old")
    await send_msgpack(ws, {"type": "ack", "offset": welcome["offset"]})
    await send_msgpack(
        ws, {"type": "job_state", "job_id": printing, "state": "printing", "at": NOW, "seq": 1}
    )
    assert (await recv_msgpack(ws)) == {"type": "reports_ack", "seq": 1}
    await ws.close()
    new, again = await hello(ep, "c-new")  # a new PC: no resume
    assert [j["job_id"] for j in again["jobs"]] == rest
    view = await eventually(state_is(ep, printing, "uncertain"))
    assert "spool was reset" in view["history"][-1]["reason"]
    await new.close()


async def test_another_client_gets_a_snapshot_not_the_replay_of_the_first(
    ep: Endpoints, store: str
) -> None:
    """The stream is replayed only to the client that held the store last: a second PC
    resuming from its own old position would be sent what the first PC printed."""
    first, w1 = await hello(ep, "c-one")
    await send_msgpack(first, {"type": "ack", "offset": w1["offset"]})
    position = {"epoch": w1["epoch"], "offset": w1["offset"]}
    [sub] = await submit(ep, 1)
    for _ in sub["jobs"]:
        await recv_msgpack(first)
    second, w2 = await hello(ep, "c-two", resume=position)
    assert w2["recovered"] is False  # not a replay of what c-one was sent
    first_close = await _closed(first)
    assert first_close == 4503
    await second.close()
    third, w3 = await hello(ep, "c-two", resume={"epoch": w2["epoch"], "offset": w2["offset"]})
    assert w3["recovered"] is True  # the same client again: a replay is right
    await third.close()


async def _closed(ws: ClientConnection) -> int | None:
    try:
        while True:
            await recv_msgpack(ws)
    except Exception:
        pass
    return ws.close_code


async def test_reports_apply_in_order_once_and_are_acknowledged(ep: Endpoints, store: str) -> None:
    [sub] = await submit(ep, 1)
    job = sub["jobs"][0]["job_id"]
    ws, welcome = await open_store(ep)
    await send_msgpack(ws, {"type": "ack", "offset": welcome["offset"]})

    async def send(state: str, seq: int) -> None:
        await send_msgpack(
            ws, {"type": "job_state", "job_id": job, "state": state, "at": NOW, "seq": seq}
        )

    await send("printing", 5)
    assert await recv_msgpack(ws) == {"type": "reports_ack", "seq": 5}
    await send("printed", 7)  # after a gap: dropped, the client sends from 6 again
    await send("printing", 5)  # a repeat: acknowledged again, applied once
    assert await recv_msgpack(ws) == {"type": "reports_ack", "seq": 5}
    assert (await job_state(ep, job))["state"] == "printing"
    await send("printed", 6)
    assert await recv_msgpack(ws) == {"type": "reports_ack", "seq": 6}
    view = await eventually(state_is(ep, job, "printed"))
    assert [h["state"] for h in view["history"]].count("printing") == 1
    await ws.close()


async def test_lan_orders_are_submitted_in_report_order_and_refusals_acknowledged(
    ep: Endpoints, store: str
) -> None:
    """Issue 15: an order the store edge took comes up as ``lan_order`` in the report
    sequence; the broker submits it with the ids the edge computed, acknowledges it like a
    report, and answers one it can never take with an ``error`` (acknowledged too, so the
    client's outbox moves on)."""
    ws, welcome = await open_store(ep)
    await send_msgpack(ws, {"type": "ack", "offset": welcome["offset"]})
    body = order(store, external_id="LAN-1")
    await send_msgpack(ws, {"type": "lan_order", "order": body, "taken_at": NOW, "seq": 1})
    oid = order_id_for(store, body["channel"], body["external_id"])
    seen: list[dict[str, Any]] = []
    while {"type": "reports_ack", "seq": 1} not in seen:
        seen.append(await recv_msgpack(ws))
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/orders/{oid}")
    assert r.status_code == 200, r.text
    jobs = {j["job_id"] for j in r.json()["jobs"]}
    assert len(jobs) == 3 and {j["state"] for j in r.json()["jobs"]} <= {"queued", "sent"}
    # its jobs come down the stream as any order's (the edge's spool has them: deduped)
    while len(pushed := {m["job"]["job_id"] for m in seen if m["type"] == "job"}) < 3:
        seen.append(await recv_msgpack(ws))
    assert pushed == jobs

    await send_msgpack(ws, {"type": "lan_order", "order": body, "taken_at": NOW, "seq": 2})
    assert await recv_msgpack(ws) == {"type": "reports_ack", "seq": 2}  # a duplicate

    other = order("s-002", external_id="LAN-2")
    unroutable = order(store, external_id="LAN-3")
    unroutable["items"][0]["category"] = "desserts"
    for seq, bad in ((3, other), (4, unroutable)):
        await send_msgpack(ws, {"type": "lan_order", "order": bad, "taken_at": NOW, "seq": seq})
        got = [await recv_msgpack(ws), await recv_msgpack(ws)]
        assert {"type": "reports_ack", "seq": seq} in got
        [error] = [m for m in got if m["type"] == "error"]
        assert error["code"] == "bad_request"
        assert error["ref"] == order_id_for(bad["store_id"], bad["channel"], bad["external_id"])
    async with ep.client(token("hq")) as http:
        for bad in (other, unroutable):
            oid = order_id_for(bad["store_id"], bad["channel"], bad["external_id"])
            assert (await http.get(f"/v1/orders/{oid}")).status_code == 404
    await ws.close()


async def test_a_lan_amendment_is_applied_once_however_often_it_comes(
    ep: Endpoints, store: str
) -> None:
    """A forwarded amendment whose ack was lost comes again on the next link (its seq
    numbering starts over there): its ``ref`` keeps it from applying twice."""
    body = order(store, external_id="LAN-AM")
    oid = order_id_for(store, body["channel"], body["external_id"])
    amend = {"type": "lan_amend", "order_id": oid, "ref": f"lan-{oid}-r2", "taken_at": NOW,
             "amendment": {"change": [{"line_id": "1", "qty": 5}]}}  # fmt: skip
    ws, _ = await open_store(ep)
    await send_msgpack(ws, {"type": "lan_order", "order": body, "taken_at": NOW, "seq": 1})
    await send_msgpack(ws, {**amend, "seq": 2})
    seen: list[dict[str, Any]] = []
    while {"type": "reports_ack", "seq": 2} not in seen:
        seen.append(await recv_msgpack(ws))
    await ws.close()
    again, _ = await open_store(ep)
    await send_msgpack(again, {**amend, "seq": 1})  # a new link: the sequence starts over
    while await recv_msgpack(again) != {"type": "reports_ack", "seq": 1}:
        pass
    cancel = {"type": "lan_cancel", "order_id": oid, "taken_at": NOW, "seq": 2}
    await send_msgpack(again, cancel)
    while await recv_msgpack(again) != {"type": "reports_ack", "seq": 2}:
        pass
    async with ep.client(token("hq")) as http:
        view = (await http.get(f"/v1/orders/{oid}")).json()
    assert view["revision"] == 3 and view["cancelled"] is True  # submit, one amend, cancel
    assert view["order"]["items"][0]["qty"] == 5
    await again.close()


async def test_screen_actions_from_the_edge_apply_to_the_ticket_as_it_is_now(
    ep: Endpoints, store: str
) -> None:
    """Issue 15, local mode: a bump a screen took on the edge offline carries the edge's
    version; the broker applies it to its current ticket, once per ref, and drops (with an
    error) one the ticket no longer allows."""
    [sub] = await submit(ep, 1, prefix="edge")
    grill = next(t for t in sub["tickets"] if t["station_id"] == "grill")
    ws, _ = await open_store(ep)

    def bump(ref: str, seq: int) -> dict[str, Any]:
        action = {"type": "bump", "ref": ref, "ticket_id": grill["ticket_id"], "version": 77}
        return {"type": "kds_action", "station_id": "grill", "action": action,
                "taken_at": NOW, "seq": seq}  # fmt: skip

    async def reply_to(seq: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while {"type": "reports_ack", "seq": seq} not in got:
            got.append(await recv_msgpack(ws))
        return [m for m in got if m["type"] == "error"]

    await send_msgpack(ws, bump("b-1", 1))
    assert await reply_to(1) == []
    await send_msgpack(ws, bump("b-1", 2))  # the same ref again: applied once, no error
    assert await reply_to(2) == []
    await send_msgpack(ws, bump("b-2", 3))  # a second bump: the ticket is ready already
    [error] = await reply_to(3)
    assert error["code"] == "bad_request" and error["ref"] == "b-2"
    async with ep.client(token("hq")) as http:
        view = (await http.get(f"/v1/orders/{sub['order_id']}")).json()
    states = {t["station_id"]: (t["state"], t["version"]) for t in view["tickets"]}
    assert states["grill"] == ("ready", grill["version"] + 1)
    await ws.close()
