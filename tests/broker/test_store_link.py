"""The store link (DESIGN.md §4, §5.3): offsets, acks, job states, resume, takeover."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    open_kds,
    open_store,
    order,
    recv_msgpack,
    send_msgpack,
    store_config,
    token,
)

NOW = "2026-11-21T12:05:00+08:00"
#: A job's history from its submit to its paper, every step reported.
PRINTED_HISTORY = ["queued", "sent", "spooled", "printing", "printed"]
SMALL_BUFFER = 4096
REPLAYED_ORDERS = 100  # 300 job frames to replay
ORDERS_DURING_REPLAY = 10
READ_PER_ORDER = 5


async def submit(
    ep: Endpoints, n: int, prefix: str = "o", store: str = "s-001"
) -> list[dict[str, Any]]:
    async with ep.client(token("ingest")) as http:
        out = []
        for i in range(n):
            r = await http.post("/v1/orders", json=order(store, external_id=f"{prefix}-{i}"))
            assert r.status_code == 202, r.text
            out.append(r.json())
        return out


async def job_state(ep: Endpoints, job_id: str) -> dict[str, Any]:
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body


def state_is(ep: Endpoints, job_id: str, state: str) -> Callable[[], Awaitable[Any]]:
    async def check() -> dict[str, Any] | None:
        view = await job_state(ep, job_id)
        return view if view["state"] == state else None

    return check


async def eventually(check: Any) -> Any:
    """Poll a broker-side effect of a message we sent (bounded: never hangs)."""
    async with asyncio.timeout(WAIT):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.02)


async def report(ws: ClientConnection, job_id: str, state: str) -> None:
    await send_msgpack(ws, {"type": "job_state", "job_id": job_id, "state": state, "at": NOW})


async def errors_until(ws: ClientConnection, ref: str) -> list[dict[str, Any]]:
    """Read until the ``error`` about ``ref`` arrives; the other errors met on the way.

    Reports from one link are applied in order, so an error about an earlier report
    would arrive first. Frames of other types (jobs, report acks) are skipped.
    """
    others = []
    while True:
        msg = await recv_msgpack(ws)
        if msg["type"] != "error":
            continue
        if msg.get("ref") == ref:
            return others
        others.append(msg)


async def jobs_from(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    """The next ``n`` job frames (frames of other types are skipped)."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        msg = await recv_msgpack(ws)
        if msg["type"] == "job":
            out.append(msg)
    return out


async def expect_next_is_a_new_order(ep: Endpoints, ws: ClientConnection) -> None:
    """Nothing twice: the next frame is the first job of an order submitted now."""
    [marker] = await submit(ep, 1, "marker")
    msg = await recv_msgpack(ws)
    assert msg["type"] == "job" and msg["job"]["job_id"] == marker["jobs"][0]["job_id"], msg


async def test_ack_and_job_states_feed_job_history(ep: Endpoints, store: str) -> None:
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    job_id = msgs[0]["job"]["job_id"]
    await send_msgpack(ws, {"type": "ack", "offset": msgs[-1]["offset"]})
    await eventually(state_is(ep, job_id, "spooled"))
    for state in ("printing", "printed"):
        await send_msgpack(ws, {"type": "job_state", "job_id": job_id, "state": state, "at": NOW})
    view = await eventually(state_is(ep, job_id, "printed"))
    assert [h["state"] for h in view["history"]] == PRINTED_HISTORY
    await ws.close()


async def test_report_that_skips_ahead_records_the_implied_steps(ep: Endpoints, store: str) -> None:
    """The client reports before its ack arrived: ``sent`` and ``spooled`` are recorded
    first (DESIGN.md §3: every transition visible), and the late ack changes nothing."""
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    early, other = msgs[0]["job"]["job_id"], msgs[1]["job"]["job_id"]
    assert (await job_state(ep, early))["state"] == "queued"  # nothing acked yet
    await report(ws, early, "printing")
    view = await eventually(state_is(ep, early, "printing"))
    assert [h["state"] for h in view["history"]] == ["queued", "sent", "spooled", "printing"]
    # the ack arrives now; it covers both jobs and is applied to both at once
    await send_msgpack(ws, {"type": "ack", "offset": msgs[-1]["offset"]})
    await eventually(state_is(ep, other, "spooled"))
    await report(ws, early, "printed")
    view = await eventually(state_is(ep, early, "printed"))
    states = [h["state"] for h in view["history"]]
    assert states == ["queued", "sent", "spooled", "printing", "printed"]
    await ws.close()


async def test_a_repeated_report_is_ignored(ep: Endpoints, store: str) -> None:
    """At least once on the wire: a report sent twice records one transition, no error."""
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    job_id = msgs[0]["job"]["job_id"]
    await send_msgpack(ws, {"type": "ack", "offset": msgs[-1]["offset"]})
    await eventually(state_is(ep, job_id, "spooled"))
    for state in ("printing", "printing", "printed", "printed"):
        await report(ws, job_id, state)
    sentinel = "j-sentinel-unknown"
    await report(ws, sentinel, "printing")  # reports apply in order: this one comes last
    assert await errors_until(ws, sentinel) == []
    view = await job_state(ep, job_id)
    assert view["state"] == "printed"
    assert [h["state"] for h in view["history"]] == PRINTED_HISTORY
    await ws.close()


async def test_reports_that_cannot_apply_get_an_error_and_change_nothing(
    ep: Endpoints, store: str
) -> None:
    """An illegal transition, an unknown job and another store's job: each gets an error
    reply, the link stays open, and no job changes."""
    async with ep.client(token("hq")) as http:
        r = await http.put("/v1/stores/s-002/config", json=store_config("Second"))
        assert r.status_code == 200, r.text
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    printed, queued = msgs[0]["job"]["job_id"], msgs[1]["job"]["job_id"]
    for state in ("printing", "printed"):
        await report(ws, printed, state)
    await eventually(state_is(ep, printed, "printed"))
    history = (await job_state(ep, printed))["history"]

    await report(ws, printed, "held")  # printed is terminal
    assert await errors_until(ws, printed) == []
    assert (await job_state(ep, printed))["history"] == history
    await report(ws, queued, "printed")  # printed only follows printing
    assert await errors_until(ws, queued) == []
    assert (await job_state(ep, queued))["state"] == "queued"
    await report(ws, "j-nope", "printing")
    assert await errors_until(ws, "j-nope") == []
    async with ep.client(token("hq")) as http:
        assert (await http.get("/v1/jobs/j-nope")).status_code == 404

    other, _ = await open_store(ep, store="s-002")  # s-002 reports s-001's job
    await report(other, queued, "printing")
    assert await errors_until(other, queued) == []
    assert [h["state"] for h in (await job_state(ep, queued))["history"]] == ["queued"]
    # both links still work
    [sub2] = await submit(ep, 1, "second", store="s-002")
    assert [m["job"]["job_id"] for m in await jobs_from(other, len(sub2["jobs"]))] == [
        j["job_id"] for j in sub2["jobs"]
    ]
    await report(ws, queued, "printing")
    await eventually(state_is(ep, queued, "printing"))
    await other.close()
    await ws.close()


async def test_a_cancelled_job_reported_printed_is_recorded_printed(
    ep: Endpoints, store: str
) -> None:
    """The order was cancelled while the store was printing: paper wins (docs/broker.md)."""
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    stepwise, direct = msgs[0]["job"]["job_id"], msgs[1]["job"]["job_id"]
    await send_msgpack(ws, {"type": "ack", "offset": msgs[-1]["offset"]})
    await eventually(state_is(ep, direct, "spooled"))
    async with ep.client(token("ingest")) as http:
        r = await http.post(f"/v1/orders/{sub['order_id']}/cancel", json={"reason": "left"})
        assert r.status_code == 200, r.text
    for job_id in (stepwise, direct):
        assert (await job_state(ep, job_id))["state"] == "cancelled"
    for state in ("printing", "printed"):
        await report(ws, stepwise, state)
    await report(ws, direct, "printed")
    for job_id in (stepwise, direct):
        await eventually(state_is(ep, job_id, "printed"))
    tail = [h["state"] for h in (await job_state(ep, stepwise))["history"]][-3:]
    assert tail == ["cancelled", "printing", "printed"]
    tail = [h["state"] for h in (await job_state(ep, direct))["history"]][-2:]
    assert tail == ["cancelled", "printed"]
    await ws.close()


async def test_resume_gets_exactly_the_missing_messages(ep: Endpoints, store: str) -> None:
    ws, welcome = await open_store(ep)
    before = await submit(ep, 2, "before")
    got = [await recv_msgpack(ws) for _ in range(sum(len(s["jobs"]) for s in before))]
    last = got[-1]["offset"]
    await send_msgpack(ws, {"type": "ack", "offset": last})
    await ws.close()

    missed = await submit(ep, 100, "during")
    expected = [j["job_id"] for s in missed for j in s["jobs"]]
    ws, welcome2 = await open_store(ep, resume={"epoch": welcome["epoch"], "offset": last})
    assert welcome2["recovered"] is True and welcome2["jobs"] == []
    replay = [await recv_msgpack(ws) for _ in expected]
    assert [m["job"]["job_id"] for m in replay] == expected
    offsets = [m["offset"] for m in replay]
    assert offsets == sorted(offsets) and offsets[0] > last and offsets[-1] <= welcome2["offset"]
    await expect_next_is_a_new_order(ep, ws)
    await ws.close()


async def test_resume_while_orders_keep_committing(broker_with: Any) -> None:
    """Orders committed while a resume replay is still being sent reach the client once
    each, after the replay, in offset order, with nothing missing (DESIGN.md §4)."""
    async with broker_with(write_limit=SMALL_BUFFER) as (b, ep):
        # accepted sockets inherit the listening socket's (small) send buffer
        for sock in b.ws.server.sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        ws, welcome = await open_store(ep)
        before = await submit(ep, 2, "before")
        got = [await recv_msgpack(ws) for _ in range(sum(len(s["jobs"]) for s in before))]
        last = got[-1]["offset"]
        await send_msgpack(ws, {"type": "ack", "offset": last})
        await ws.close()
        missed = await submit(ep, REPLAYED_ORDERS, "missed")

        slow = socket.socket()  # a small receive window: the broker cannot run far ahead
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        slow.connect(("127.0.0.1", b.ws_port))
        slow.setblocking(False)
        resume = {"epoch": welcome["epoch"], "offset": last}
        ws, welcome2 = await open_store(ep, resume=resume, sock=slow, max_queue=1)
        assert welcome2["recovered"] is True
        head = welcome2["offset"]
        # The replay is ~300 job frames of ~1 KB; the socket buffers and the broker's write
        # limit between us hold a few dozen. Reading a few frames per order, every order
        # below commits while most of the replay is still to be sent.
        during: list[dict[str, Any]] = []
        received: list[dict[str, Any]] = []
        for i in range(ORDERS_DURING_REPLAY):
            during += await submit(ep, 1, f"late-{i}")
            received += [await recv_msgpack(ws) for _ in range(READ_PER_ORDER)]
        expected = [j["job_id"] for s in missed + during for j in s["jobs"]]
        while len(received) < len(expected):
            received.append(await recv_msgpack(ws))
        assert [m["job"]["job_id"] for m in received] == expected
        offsets = [m["offset"] for m in received]
        assert offsets == sorted(set(offsets)) and offsets[0] > last
        replayed = sum(len(s["jobs"]) for s in missed)
        assert max(offsets[:replayed]) <= head < min(offsets[replayed:])
        await expect_next_is_a_new_order(ep, ws)
        await ws.close()


async def test_wrong_epoch_gets_a_snapshot(ep: Endpoints, store: str) -> None:
    subs = await submit(ep, 3)
    ws, welcome = await open_store(ep, resume={"epoch": "not-the-epoch", "offset": 5})
    assert welcome["recovered"] is False
    assert welcome["config"]["store_id"] == "s-001"
    assert {j["job_id"] for j in welcome["jobs"]} == {j["job_id"] for s in subs for j in s["jobs"]}
    await ws.close()
    # an offset past the head is not recoverable either
    ws, again = await open_store(
        ep, resume={"epoch": welcome["epoch"], "offset": welcome["offset"] + 50}
    )
    assert again["recovered"] is False
    await ws.close()


@pytest.mark.parametrize("storage", ["redis"], indirect=True)
async def test_a_reset_stream_closes_links_1013_and_resume_gets_a_snapshot(
    ep: Endpoints, store: str, storage: str
) -> None:
    """Redis lost the store's stream (restarted without persistence): the next commit
    starts a new epoch; links on the old one close with 1013 (try again later) and a
    resume with the old epoch is answered with a snapshot (DESIGN.md §4, §5.3)."""
    ws, welcome = await open_store(ep)
    kds, snap = await open_kds(ep, station="grill")
    assert snap["type"] == "snapshot" and snap["epoch"] == welcome["epoch"]
    [sub] = await submit(ep, 1)
    got = await jobs_from(ws, len(sub["jobs"]))
    await lose_stream(storage, "s-001")
    [after] = await submit(ep, 1, "after")  # the first commit of a new stream
    assert (await close_code(ws))[0] == 1013
    assert (await close_code(kds))[0] == 1013
    ws, again = await open_store(
        ep, resume={"epoch": welcome["epoch"], "offset": got[-1]["offset"]}
    )
    assert again["recovered"] is False and again["epoch"] != welcome["epoch"]
    snapshot_ids = {j["job_id"] for j in again["jobs"]}
    assert {j["job_id"] for j in after["jobs"]} <= snapshot_ids
    kds, snap = await open_kds(
        ep, station="grill", resume={"epoch": snap["epoch"], "offset": snap["offset"]}
    )
    assert snap["type"] == "snapshot" and snap["epoch"] == again["epoch"]
    await kds.close()
    await ws.close()


async def lose_stream(storage: str, store_id: str) -> None:
    """Delete a store's stream keys (docs: broker/storage/redis.py key layout)."""
    import redis.asyncio as aioredis

    parts = urlsplit(storage)
    query = parse_qs(parts.query)
    prefix = query.pop("prefix")[0]
    client = aioredis.from_url(urlunsplit(parts._replace(query=urlencode(query, doseq=True))))
    try:
        deleted = await client.delete(f"{prefix}:{{{store_id}}}:m", f"{prefix}:{{{store_id}}}:x")
        assert deleted == 2
    finally:
        await client.aclose()


async def close_code(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert info.value.rcvd is not None, "closed without a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_newest_hello_takes_over(ep: Endpoints, store: str) -> None:
    old, _ = await open_store(ep)
    new, _ = await open_store(ep)
    with pytest.raises(ConnectionClosed) as info:
        await recv_msgpack(old)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4503
    [sub] = await submit(ep, 1)
    assert (await recv_msgpack(new))["job"]["job_id"] == sub["jobs"][0]["job_id"]
    await new.close()


async def test_protocol_and_store_checks(ep: Endpoints, store: str) -> None:
    from websockets.asyncio.client import connect

    from tests.broker.helpers import auth

    async def hello(tok: str, **fields: Any) -> int:
        ws = await connect(
            f"{ep.ws}/v1/ws/store",
            subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
            additional_headers=auth(tok),
            open_timeout=WAIT,
        )
        msg = {
            "type": "hello",
            "store_id": "s-001",
            "client_version": "t",
            "protocol": 1,
            "resume": None,
        }
        await send_msgpack(ws, {**msg, **fields})
        with pytest.raises(ConnectionClosed) as info:
            await recv_msgpack(ws)
        assert info.value.rcvd is not None
        return info.value.rcvd.code

    assert await hello(token("store", store="s-001"), protocol=3) == 4502
    assert await hello(token("store", store="s-002")) == 1008  # another store's token


async def test_printer_status_reaches_fleet_views(ep: Endpoints, store: str) -> None:
    ws, _ = await open_store(ep)
    status = {"reachable": True, "online": True, "paper": "out", "source": "realtime", "since": NOW}
    await send_msgpack(ws, {"type": "printer_status", "printer_id": "kitchen", "status": status})

    async def error_printers() -> list[Any]:
        async with ep.client(token("hq")) as http:
            body: list[Any] = (await http.get("/v1/printers", params={"state": "error"})).json()
            return body

    async def online_view() -> dict[str, Any] | None:
        # link presence is written with the next batch of acks (every 50 ms)
        async with ep.client(token("hq")) as http:
            view: dict[str, Any] = (await http.get("/v1/stores/s-001")).json()
        return view if view["link"]["online"] else None

    rows = await eventually(error_printers)
    assert [(r["store_id"], r["printer_id"]) for r in rows] == [("s-001", "kitchen")]
    view = await eventually(online_view)
    async with ep.client(token("hq")) as http:
        assert view["link"]["client_version"] == "test/1"
        assert {p["printer_id"]: (p["status"] or {}).get("state") for p in view["printers"]} == {
            "kitchen": "error",
            "bar": None,
            "receipt": None,
        }
        assert (await http.get("/v1/stores/s-404")).status_code == 404
        assert [s["store_id"] for s in (await http.get("/v1/stores")).json()] == ["s-001"]
    await ws.close()
