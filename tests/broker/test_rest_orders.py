"""REST ingest: submit (idempotent), batch, amend, cancel, reprint, lookups (DESIGN.md §5.2, §6)."""

from __future__ import annotations

from typing import Any

from tests.broker.helpers import Endpoints, open_store, order, recv_msgpack, store_config, token


def by_printer(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(j["printer_id"], j["template"]) for j in body["jobs"]}


async def test_submit_routes_tickets_and_jobs(ep: Endpoints, store: str) -> None:
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order())
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["revision"] == 1 and body["duplicate"] is False
    assert {t["station_id"] for t in body["tickets"]} == {"grill", "bar"}
    assert by_printer(body) == {("kitchen", "kitchen"), ("bar", "kitchen"), ("receipt", "receipt")}
    assert all(j["state"] == "queued" for j in body["jobs"])


async def test_repeat_submit_is_a_noop_returning_the_first_result(
    ep: Endpoints, store: str
) -> None:
    ws, _ = await open_store(ep)
    async with ep.client(token("ingest")) as http:
        first = (await http.post("/v1/orders", json=order())).json()
        again = await http.post("/v1/orders", json=order(note="changed text is ignored"))
        assert again.status_code == 200
        assert again.json() == {**first, "duplicate": True}
        marker = await http.post("/v1/orders", json=order(external_id="next"))
    got = [await recv_msgpack(ws) for _ in range(len(first["jobs"]) + len(marker.json()["jobs"]))]
    ids = [m["job"]["job_id"] for m in got]
    assert ids == [j["job_id"] for j in first["jobs"]] + [
        j["job_id"] for j in marker.json()["jobs"]
    ]
    offsets = [m["offset"] for m in got]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    await ws.close()


async def test_invalid_orders_get_problem_json_with_field_paths(ep: Endpoints, store: str) -> None:
    bad_qty = order()
    bad_qty["items"][0]["qty"] = 0
    unroutable = order()
    unroutable["items"][1]["category"] = "desserts"
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=bad_qty)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["path"] == "items.0.qty"
        r = await http.post("/v1/orders", json=order(store="nowhere"))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["store_id"]
        r = await http.post("/v1/orders", json=unroutable)
        assert r.status_code == 422
        assert r.json()["errors"][0]["path"] == "items.1.category" and "'2'" in r.json()["detail"]
        r = await http.post(
            "/v1/orders", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        assert (await http.get("/v1/orders/o-missing")).status_code == 404


async def test_default_station_and_overrides(ep: Endpoints) -> None:
    async with ep.client(token("hq")) as hq:
        cfg = store_config(default_station="grill", sku_routes={"D09": "grill"})
        assert (await hq.put("/v1/stores/s-002/config", json=cfg)).status_code == 200
    o = order(store="s-002")
    o["items"][1]["category"] = "desserts"  # -> default_station grill
    o["items"][2]["sku"] = "D09"  # drinks, but routed to grill by sku
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=o)
    assert r.status_code == 202
    assert [t["station_id"] for t in r.json()["tickets"]] == ["grill"]


async def test_batch_answers_each_order_in_submit_order(ep: Endpoints, store: str) -> None:
    bad = order(external_id="bad")
    bad["items"][0]["qty"] = 0
    orders = [
        order(external_id="a"),
        bad,
        order(external_id="a"),
        order(external_id="b"),
        order(store="x"),
    ]
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders:batch", json={"orders": orders})
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results][1:] == [422, 200, 202, 422]
    assert results[0]["status"] in (200, 202)  # a and its repeat race inside one batch
    assert results[1]["body"]["errors"][0]["path"] == "items.0.qty"
    assert results[2]["body"]["order_id"] == results[0]["body"]["order_id"]


async def test_amend_cancel_reprint(ep: Endpoints, store: str) -> None:
    ws, _ = await open_store(ep)
    async with ep.client(token("ingest")) as http:
        sub = (await http.post("/v1/orders", json=order())).json()
        oid = sub["order_id"]
        amend = {
            "add": [
                {"line_id": "4", "sku": "B02", "name": "Fries", "qty": 1, "category": "burgers"}
            ],
            "change": [{"line_id": "3", "qty": 3}],
            "void": ["2"],
        }
        r = await http.post(f"/v1/orders/{oid}/amend", json=amend)
        assert r.status_code == 200, r.text
        am = r.json()
        assert am["revision"] == 2
        assert by_printer(am) == {("kitchen", "delta"), ("bar", "delta")}
        view = (await http.get(f"/v1/orders/{oid}")).json()
        grill = next(t for t in view["tickets"] if t["station_id"] == "grill")
        changes = {ln["line_id"]: (ln["change"], ln["state"]) for ln in grill["lines"]}
        assert changes == {"1": (None, "new"), "2": ("voided", "voided"), "4": ("added", "new")}
        assert grill["version"] == 2
        r = await http.post(f"/v1/orders/{oid}/amend", json={"void": ["2"]})
        assert r.status_code == 422  # line 2 is gone

        r = await http.post(f"/v1/orders/{oid}/cancel", json={"reason": "customer left"})
        assert r.status_code == 200, r.text
        cancel = r.json()
        assert by_printer(cancel) == {("kitchen", "void"), ("bar", "void")}
        again = await http.post(f"/v1/orders/{oid}/cancel")
        assert again.json() == {**cancel, "duplicate": True}
        view = (await http.get(f"/v1/orders/{oid}")).json()
        assert view["cancelled"] and all(t["state"] == "voided" for t in view["tickets"])
        states = {j["job_id"]: j["state"] for j in view["jobs"]}
        assert all(states[j["job_id"]] == "cancelled" for j in sub["jobs"] + am["jobs"])
        assert (await http.post(f"/v1/orders/{oid}/amend", json=amend)).status_code == 409

        sub2 = (await http.post("/v1/orders", json=order(external_id="r"))).json()
        r = await http.post(
            f"/v1/orders/{sub2['order_id']}/reprint",
            json={"templates": ["kitchen"], "printer_id": "bar"},
        )
        assert r.status_code == 202, r.text
        assert by_printer(r.json()) == {("bar", "kitchen")}
        assert r.json()["jobs"][0]["job_id"] not in {j["job_id"] for j in sub2["jobs"]}
        reprinted = r.json()["jobs"]
    # the store link got each change once, in the order the requests were answered
    ids = [j["job_id"] for j in sub["jobs"]]
    delta_ids = [j["job_id"] for j in am["jobs"]]
    void_ids = [j["job_id"] for j in cancel["jobs"]]
    later_ids = [j["job_id"] for j in sub2["jobs"] + reprinted]
    cancelled = ids + delta_ids  # nothing was acked: every job may still be cancelled
    n = len(ids) + len(delta_ids) + len(cancelled) + len(void_ids) + len(later_ids)
    seen = [await recv_msgpack(ws) for _ in range(n)]
    frames = [(m["type"], m["job"]["job_id"] if m["type"] == "job" else m["job_id"]) for m in seen]
    first = len(ids) + len(delta_ids)
    assert frames[:first] == [("job", j) for j in ids + delta_ids]
    cancel_group = frames[first : first + len(cancelled) + len(void_ids)]
    assert sorted(cancel_group) == sorted(
        [("cancel", j) for j in cancelled] + [("job", j) for j in void_ids]
    )
    assert frames[first + len(cancel_group) :] == [("job", j) for j in later_ids]
    offsets = [m["offset"] for m in seen]
    assert offsets == sorted(set(offsets))
    reprint = seen[-1]["job"]
    assert reprint["doc"]["reprint"] is True and reprint["printer_id"] == "bar"
    await ws.close()


async def test_job_lookup_has_history(ep: Endpoints, store: str) -> None:
    async with ep.client(token("ingest")) as http:
        sub = (await http.post("/v1/orders", json=order())).json()
        job = sub["jobs"][0]
        r = await http.get(f"/v1/jobs/{job['job_id']}")
        assert r.status_code == 200
        assert r.json()["state"] == "queued" and r.json()["history"][0]["state"] == "queued"
        assert (await http.get("/v1/jobs/j-nope")).status_code == 404


async def test_config_versions_and_is_pushed_live(ep: Endpoints, store: str) -> None:
    ws, welcome = await open_store(ep)
    assert welcome["config"]["version"] == 1
    async with ep.client(token("hq")) as hq:
        r = await hq.put("/v1/stores/s-001/config", json=store_config(name="Renamed"))
        assert r.json() == {"store_id": "s-001", "version": 2}
        bad = store_config()
        bad["stations"][0]["printer"] = "nope"
        r = await hq.put("/v1/stores/s-001/config", json=bad)
        assert r.status_code == 422 and r.json()["errors"]
    msg = await recv_msgpack(ws)
    assert (
        msg["type"] == "config"
        and msg["config"]["name"] == "Renamed"
        and msg["config"]["version"] == 2
    )
    await ws.close()


async def test_health_metrics_docs(ep: Endpoints) -> None:
    async with ep.client() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        assert "passline_orders_total" in (await http.get("/metrics")).text
        assert (await http.get("/docs")).status_code == 200
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert "/v1/orders:batch" in paths and "/v1/stores/{store_id}/config" in paths
