"""The store link (DESIGN.md §4, §5.3): offsets, acks, job states, resume, takeover."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    open_store,
    order,
    recv_msgpack,
    send_msgpack,
    token,
)

NOW = "2026-11-21T12:05:00+08:00"


async def submit(ep: Endpoints, n: int, prefix: str = "o") -> list[dict[str, Any]]:
    async with ep.client(token("ingest")) as http:
        out = []
        for i in range(n):
            r = await http.post("/v1/orders", json=order(external_id=f"{prefix}-{i}"))
            assert r.status_code == 202, r.text
            out.append(r.json())
        return out


async def job_state(ep: Endpoints, job_id: str) -> dict[str, Any]:
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body


async def eventually(check: Any) -> Any:
    """Poll a broker-side effect of a message we sent (bounded: never hangs)."""
    async with asyncio.timeout(WAIT):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.02)


async def test_ack_and_job_states_feed_job_history(ep: Endpoints, store: str) -> None:
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    job_id = msgs[0]["job"]["job_id"]
    await send_msgpack(ws, {"type": "ack", "offset": msgs[-1]["offset"]})

    async def spooled() -> bool:
        return (await job_state(ep, job_id))["state"] == "spooled"

    await eventually(spooled)
    for state in ("printing", "printed"):
        await send_msgpack(ws, {"type": "job_state", "job_id": job_id, "state": state, "at": NOW})

    async def printed() -> dict[str, Any] | None:
        view = await job_state(ep, job_id)
        return view if view["state"] == "printed" else None

    view = await eventually(printed)
    assert [h["state"] for h in view["history"]] == [
        "queued",
        "sent",
        "spooled",
        "printing",
        "printed",
    ]
    # an illegal report gets an error message, not a close
    await send_msgpack(ws, {"type": "job_state", "job_id": job_id, "state": "held", "at": NOW})
    err = await recv_msgpack(ws)
    assert err["type"] == "error" and err["code"] == "illegal_transition" and err["ref"] == job_id
    # a report that skips ahead records the implied steps
    other = msgs[1]["job"]["job_id"]
    await send_msgpack(
        ws,
        {"type": "job_state", "job_id": msgs[2]["job"]["job_id"], "state": "printing", "at": NOW},
    )
    await send_msgpack(ws, {"type": "ack", "offset": msgs[-1]["offset"]})
    assert other
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
    with pytest.raises(TimeoutError):  # nothing more: no duplicates
        await recv_msgpack(ws, within=0.3)
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

    assert await hello(token("store", store="s-001"), protocol=2) == 4502
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
