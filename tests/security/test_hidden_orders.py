"""An order or job a token may not see is answered exactly as an absent one (issue 14
point 2a): before, ``GET /v1/orders/{id}`` and ``GET /v1/jobs/{id}`` (and amend, cancel,
reprint) said 403 for another store's order and 404 for no order, so any token could
probe which ids exist, and the 403 named the store."""

from __future__ import annotations

from typing import Any

from tests.broker.helpers import Endpoints, order, store_config, token

ABSENT_ORDER = "o-00000000000000000000000000000000"
ABSENT_JOB = "j-00000000000000000000000000000000"
BODIES: dict[str, Any] = {"amend": {"change": [{"line_id": "1", "qty": 3}]}, "cancel": {}}


async def answer(ep: Endpoints, tok: str, method: str, path: str, hide: str) -> tuple[int, Any]:
    """Status and problem body, with the id in the path written as ``ID``."""
    async with ep.client(tok) as http:
        body = BODIES.get(path.rsplit("/", 1)[-1], {}) if method == "POST" else None
        r = await http.request(method, path, json=body)
    return r.status_code, r.text.replace(hide, "ID")


async def test_another_stores_order_is_as_absent_as_no_order(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-002/config", json=store_config("Other"))
            assert r.status_code == 200, r.text
        async with ep.client(token("ingest", stores=["s-001"])) as http:
            r = await http.post("/v1/orders", json=order(external_id="hidden-1"))
            assert r.status_code == 202, r.text
        oid, jid = r.json()["order_id"], r.json()["jobs"][0]["job_id"]
        stranger = token("ingest", stores=["s-002"])
        calls = [
            ("GET", "/v1/orders/{}", oid, ABSENT_ORDER),
            ("GET", "/v1/jobs/{}", jid, ABSENT_JOB),
            ("POST", "/v1/orders/{}/amend", oid, ABSENT_ORDER),
            ("POST", "/v1/orders/{}/cancel", oid, ABSENT_ORDER),
            ("POST", "/v1/orders/{}/reprint", oid, ABSENT_ORDER),
            ("POST", "/v1/orders/{}/fire", oid, ABSENT_ORDER),
        ]
        for method, path, real, absent in calls:
            seen = await answer(ep, stranger, method, path.format(real), real)
            none = await answer(ep, stranger, method, path.format(absent), absent)
            assert seen == none, (method, path)
            assert seen[0] == 404 and "s-001" not in seen[1], seen
        for scope in ("store", "kds"):  # no order is theirs to read: 403 whether it exists
            tok = token(scope, store="s-001")
            for method, path, real, absent in calls[:2]:
                seen = await answer(ep, tok, method, path.format(real), real)
                assert seen == await answer(ep, tok, method, path.format(absent), absent)
                assert seen[0] == 403
        for tok in (token("hq"), token("ingest", stores=["s-001"]), token("ingest")):
            async with ep.client(tok) as http:
                assert (await http.get(f"/v1/orders/{oid}")).status_code == 200
                assert (await http.get(f"/v1/jobs/{jid}")).status_code == 200
