from __future__ import annotations

from tests.broker.helpers import Endpoints, open_store, order, recv_msgpack, token


async def test_submit_reaches_store(ep: Endpoints, store: str) -> None:
    ws, welcome = await open_store(ep)
    assert welcome["recovered"] is False and welcome["config"]["version"] == 1
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order())
        assert r.status_code == 202, r.text
        body = r.json()
    jobs = [await recv_msgpack(ws) for _ in body["jobs"]]
    assert [m["type"] for m in jobs] == ["job"] * len(body["jobs"])
    await ws.close()
