"""Issue 14 point 5: one store token cannot hurt others (DESIGN.md §7, §8.5).

A store client's token lets it report its own printers and jobs. It must not create
records for printers its config does not name, grow a job's history without bound, or
flood the broker with messages; a well-behaved store on the same broker keeps receiving.
"""

from __future__ import annotations

from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.broker.helpers import (
    Endpoints,
    open_hq,
    open_store,
    recv_json,
    recv_msgpack,
    send_msgpack,
    store_config,
    token,
)
from tests.broker.test_store_link import NOW, eventually, job_state, submit

STATUS = {
    "reachable": True, "online": True, "paper": "out", "cover_open": False,
    "cutter_error": False, "mechanical_error": False, "unrecoverable_error": False,
    "auto_recoverable_error": False, "drawer_open": False, "feed_button": False,
    "source": "realtime", "since": NOW,
}  # fmt: skip


async def test_a_status_for_a_printer_not_in_the_config_creates_nothing(
    ep: Endpoints, store: str
) -> None:
    hq, _ = await open_hq(ep)
    ws, _ = await open_store(ep)
    ghost = {"type": "printer_status", "printer_id": "ghost-1", "status": STATUS}
    await send_msgpack(ws, ghost)
    real = {"type": "printer_status", "printer_id": "kitchen", "status": STATUS}
    await send_msgpack(ws, real)
    while True:  # the first printer delta HQ hears of is the real printer's
        delta = await recv_json(hq)
        if delta["type"] == "printer_status":
            break
    assert delta["printer_id"] == "kitchen", delta
    async with ep.client(token("hq")) as http:
        view = (await http.get(f"/v1/stores/{store}")).json()
        printers = (await http.get("/v1/printers")).json()
    assert {p["printer_id"] for p in view["printers"]} == {"kitchen", "bar", "receipt"}
    assert "ghost-1" not in {p["printer_id"] for p in printers}
    await ws.close()
    await hq.close()


async def test_a_job_flapping_printing_and_held_keeps_a_bounded_history(
    ep: Endpoints, store: str
) -> None:
    [sub] = await submit(ep, 1)
    job = sub["jobs"][0]["job_id"]
    ws, welcome = await open_store(ep)
    await send_msgpack(ws, {"type": "ack", "offset": welcome["offset"]})
    for seq in range(1, 301):
        state = "printing" if seq % 2 else "held"
        await send_msgpack(
            ws, {"type": "job_state", "job_id": job, "state": state, "at": NOW, "seq": seq}
        )
    await eventually(lambda: _acked(ws, 300))
    view = await job_state(ep, job)
    assert view["state"] == "held"
    states = [h["state"] for h in view["history"]]
    assert len(states) <= 64
    assert states[:3] == ["queued", "sent", "spooled"] and states[-1] == "held"
    await ws.close()


async def _acked(ws: Any, seq: int) -> bool:
    msg = await recv_msgpack(ws)
    return msg.get("type") == "reports_ack" and msg["seq"] >= seq


async def test_a_flooding_link_is_closed_4008_and_another_store_keeps_receiving(
    broker_with: Any,
) -> None:
    async with broker_with(link_msg_rate=50.0, link_msg_burst=200) as (_, ep):
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-002/config", json=store_config("Other"))
            assert r.status_code == 200
        calm, _ = await open_store(ep, store="s-002")
        flood, welcome = await open_store(ep)
        try:
            for _ in range(1000):
                await send_msgpack(flood, {"type": "ack", "offset": welcome["offset"]})
            await recv_msgpack(flood)
        except ConnectionClosed:
            pass
        assert flood.close_code == 4008 and "rate" in (flood.close_reason or "")
        [sub] = await submit(ep, 1, store="s-002")
        got = [(await recv_msgpack(calm))["job"]["job_id"] for _ in sub["jobs"]]
        assert got == [j["job_id"] for j in sub["jobs"]]
        await calm.close()
