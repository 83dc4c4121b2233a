"""KDS screens and the HQ dashboard over real websockets (DESIGN.md §4, §5.3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import broker.fleet
import broker.ws_kds
from tests.broker.helpers import (
    Endpoints,
    open_hq,
    open_kds,
    open_store,
    order,
    recv_json,
    send_msgpack,
    token,
)

NOW = "2026-11-21T12:05:00+08:00"
REPLAY_LIMIT = 12  # stands in for broker.ws_kds.MAX_KDS_REPLAY (5,000) in one test


async def submit(ep: Endpoints, external_id: str = "k-1") -> dict[str, Any]:
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order(external_id=external_id))
        assert r.status_code == 202
        body: dict[str, Any] = r.json()
        return body


_INBOX: dict[int, list[dict[str, Any]]] = {}  # messages read past while waiting for a reply


async def until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """Next message of ``kind``; earlier messages of other kinds are skipped."""
    inbox = _INBOX.setdefault(id(ws), [])
    while inbox:
        msg = inbox.pop(0)
        if msg["type"] == kind:
            return msg
    while True:
        msg = await recv_json(ws)
        if msg["type"] == kind:
            return msg


async def act(ws: ClientConnection, **msg: Any) -> dict[str, Any]:
    """Send an action and wait for its ack/error; deltas meanwhile stay in the inbox."""
    await ws.send(json.dumps(msg))
    while True:
        reply = await recv_json(ws)
        if reply["type"] in ("ack", "error") and reply.get("ref") == msg["ref"]:
            return reply
        _INBOX.setdefault(id(ws), []).append(reply)


async def test_each_station_gets_only_its_tickets(ep: Endpoints, store: str) -> None:
    grill, snap = await open_kds(ep, station="grill")
    bar, _ = await open_kds(ep, station="bar")
    assert (
        snap["type"] == "snapshot"
        and snap["tickets"] == []
        and snap["station"]["station_id"] == "grill"
    )
    await submit(ep)
    msg = await recv_json(grill)
    assert msg["type"] == "ticket" and msg["ticket"]["station_id"] == "grill"
    assert [ln["name"] for ln in msg["ticket"]["lines"]] == ["Double cheeseburger", "宫保鸡丁"]
    all_day = await recv_json(grill)
    assert all_day == {
        "type": "all_day",
        "offset": msg["offset"],
        "counts": {"Double cheeseburger": 2, "宫保鸡丁": 1},
    }
    bar_msg = await recv_json(bar)
    assert bar_msg["type"] == "ticket" and bar_msg["ticket"]["station_id"] == "bar"
    # a late screen gets the same state as a snapshot
    late, snap = await open_kds(ep, station="grill")
    assert [t["ticket_id"] for t in snap["tickets"]] == [msg["ticket"]["ticket_id"]]
    assert snap["all_day"] == all_day["counts"] and snap["offset"] >= msg["offset"]
    for ws in (grill, bar, late):
        await ws.close()


async def test_actions_versions_and_idempotency(ep: Endpoints, store: str) -> None:
    grill, _ = await open_kds(ep, station="grill")
    await submit(ep)
    ticket = (await until(grill, "ticket"))["ticket"]
    tid = ticket["ticket_id"]
    started = await act(grill, type="start", ref="r1", ticket_id=tid, version=1)
    assert started["type"] == "ack" and started["ticket"]["version"] == 2
    assert started["ticket"]["state"] == "in_progress"
    again = await act(grill, type="start", ref="r1", ticket_id=tid, version=1)  # repeat: no-op
    assert again["type"] == "ack" and again["ticket"]["version"] == 2
    stale = await act(grill, type="bump", ref="r2", ticket_id=tid, version=1)
    assert stale["type"] == "error" and stale["code"] == "version_conflict"
    assert stale["ticket"]["version"] == 2
    line = await act(grill, type="bump_line", ref="r3", ticket_id=tid, line_id="2", version=2)
    assert [ln["state"] for ln in line["ticket"]["lines"]] == ["in_progress", "ready"]
    bumped = await act(grill, type="bump", ref="r4", ticket_id=tid, version=3)
    assert bumped["ticket"]["state"] == "ready" and bumped["ticket"]["bumped_at"]
    removed = await until(grill, "ticket_removed")
    assert removed["ticket_id"] == tid
    assert (await until(grill, "all_day"))["counts"] == {}
    recalled = await act(grill, type="recall", ref="r5", ticket_id=tid, version=4)
    assert recalled["ticket"]["state"] == "in_progress"
    assert (await until(grill, "ticket"))["ticket"]["version"] == 5
    rush = await act(grill, type="prioritize", ref="r6", ticket_id=tid, version=5)
    assert rush["ticket"]["priority"] == "normal"  # the order came in as rush: toggled
    bad = await act(grill, type="bump", ref="r7", ticket_id="t-nope", version=1)
    assert bad["type"] == "error" and bad["code"] == "not_found"
    await grill.close()


async def test_expo_rolls_up_and_serves(ep: Endpoints, store: str) -> None:
    expo, snap = await open_kds(ep, station="expo")
    assert snap["orders"] == []
    grill, _ = await open_kds(ep, station="grill")
    bar, _ = await open_kds(ep, station="bar")
    sub = await submit(ep)
    first = await until(expo, "order")
    assert first["order"]["state"] == "open" and len(first["order"]["stations"]) == 2
    for ws in (grill, bar):
        t = (await until(ws, "ticket"))["ticket"]
        assert (
            await act(ws, type="bump", ref="b", ticket_id=t["ticket_id"], version=t["version"])
        )["type"] == "ack"
    while (roll := await until(expo, "order"))["order"]["state"] != "ready":
        pass
    served = await act(
        expo, type="serve", ref="s1", order_id=sub["order_id"], version=roll["order"]["version"]
    )
    assert served["type"] == "ack" and served["order"]["state"] == "served"
    assert (await until(expo, "order"))["order"]["state"] == "served"
    for ws in (expo, grill, bar):
        await ws.close()


async def test_kds_resume_replays_missed_deltas(ep: Endpoints, store: str) -> None:
    grill, snap = await open_kds(ep, station="grill")
    await grill.close()
    sub = await submit(ep)
    resumed, first = await open_kds(
        ep, station="grill", resume={"epoch": snap["epoch"], "offset": snap["offset"]}
    )
    assert first["type"] == "ticket" and first["ticket"]["order_id"] == sub["order_id"]
    assert (await recv_json(resumed))["type"] == "all_day"
    await resumed.close()
    again, snap2 = await open_kds(ep, station="grill", resume={"epoch": "other", "offset": 1})
    assert snap2["type"] == "snapshot" and len(snap2["tickets"]) == 1
    await again.close()


async def test_kds_resume_past_the_replay_limit_gets_a_snapshot(
    ep: Endpoints, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A screen that missed more than the replay limit gets a snapshot; at the limit it
    still gets the missed deltas (docs/broker.md: "within 5,000 entries")."""
    monkeypatch.setattr(broker.ws_kds, "MAX_KDS_REPLAY", REPLAY_LIMIT)
    subs = [await submit(ep, f"lim-{i}") for i in range(3)]  # ~18 stream entries
    probe, snap = await open_kds(ep, station="grill")
    await probe.close()
    epoch, head = snap["epoch"], snap["offset"]
    tickets = {t["ticket_id"] for t in snap["tickets"]}
    assert {t["order_id"] for t in snap["tickets"]} == {s["order_id"] for s in subs}

    at_limit, first = await open_kds(
        ep, station="grill", resume={"epoch": epoch, "offset": head - REPLAY_LIMIT}
    )
    frames = [first]
    while frames[-1]["type"] != "all_day":
        frames.append(await recv_json(at_limit))
    assert {f["type"] for f in frames[:-1]} == {"ticket"}
    assert {f["ticket"]["ticket_id"] for f in frames[:-1]} == tickets
    assert frames[-1]["offset"] == head
    await at_limit.close()

    past, again = await open_kds(
        ep, station="grill", resume={"epoch": epoch, "offset": head - REPLAY_LIMIT - 1}
    )
    assert again["type"] == "snapshot" and again["epoch"] == epoch and again["offset"] == head
    assert {t["ticket_id"] for t in again["tickets"]} == tickets
    await past.close()


async def test_kds_token_checks(ep: Endpoints, store: str) -> None:
    for tok, station in [
        (token("kds", store="s-001", station="bar"), "grill"),  # token for another station
        (token("kds", store="s-002"), "grill"),  # another store
        (token("hq"), "grill"),  # wrong scope
        ("not-a-token", "grill"),
        (token("kds", store="s-001"), "nope"),  # unknown station
    ]:
        ws, _ = await _closed(ep, tok, station)
        assert ws == 1008


async def _closed(ep: Endpoints, tok: str, station: str) -> tuple[int, str]:
    try:
        _, first = await open_kds(ep, station=station, tok=tok)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code, exc.rcvd.reason
    pytest.fail(f"expected a close, got {first}")


async def test_hq_gets_fleet_and_deltas(ep: Endpoints, store: str) -> None:
    hq, fleet = await open_hq(ep)
    assert fleet["type"] == "fleet" and [s["store_id"] for s in fleet["stores"]] == ["s-001"]
    assert fleet["stores"][0]["link"]["online"] is False
    store_ws, _ = await open_store(ep)
    link = await until(hq, "store_link")
    assert link["online"] is True and link["client_version"] == "test/1"
    status = {
        "reachable": True,
        "online": False,
        "cover_open": True,
        "source": "realtime",
        "since": NOW,
    }
    await send_msgpack(store_ws, {"type": "printer_status", "printer_id": "bar", "status": status})
    delta = await until(hq, "printer_status")
    assert delta["printer_id"] == "bar" and delta["status"]["state"] == "error"
    assert "cover-open-error" in delta["status"]["reasons"]
    sub = await submit(ep)
    job = sub["jobs"][0]["job_id"]
    await send_msgpack(
        store_ws,
        {"type": "job_state", "job_id": job, "state": "held", "at": NOW, "reason": "cover open"},
    )
    alert = await until(hq, "job_alert")
    assert alert["job_id"] == job and alert["state"] == "held" and alert["reason"] == "cover open"
    await store_ws.close()
    assert (await until(hq, "store_link"))["online"] is False
    await hq.close()
    code, _ = await _hq_closed(ep, token("ingest"))
    assert code == 1008


async def test_an_hq_screen_opened_while_a_links_presence_is_unwritten_hears_it(
    ep: Endpoints, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Presence is written in batches (``FLUSH_S``; here 1.5 s, as on a busy disk). An HQ
    screen whose fleet was read after a store came online but before that was written
    showed the store "never connected" until its next change: the link-up had gone out
    to the screens attached before it, and the write was not told to anyone."""
    monkeypatch.setattr(broker.fleet, "RETRY_S", (1.5, 1.5))
    store_ws, _ = await open_store(ep)
    await asyncio.sleep(0.2)  # the link is up (set after the welcome), not yet written
    hq, fleet = await open_hq(ep)
    assert fleet["stores"][0]["link"]["online"] is False  # the stored state, as read
    link = await until(hq, "store_link")
    assert link["store_id"] == store and link["online"] is True
    async with ep.client(token("hq")) as http:
        assert (await http.get(f"/v1/stores/{store}")).json()["link"]["online"] is True
    await store_ws.close()
    assert (await until(hq, "store_link"))["online"] is False
    await hq.close()


async def _hq_closed(ep: Endpoints, tok: str) -> tuple[int, str]:
    try:
        await open_hq(ep, tok=tok)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code, exc.rcvd.reason
    pytest.fail("expected a close")
