"""Snapshots, numbered reports and the link lease on the store link (DESIGN.md §8.2)."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    auth,
    open_store,
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
