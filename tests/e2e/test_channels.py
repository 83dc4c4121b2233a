"""The delivery-platform adapter (issue 16, done-when 3; docs/channels.md): a platform's
own payload prints the right chits, once; a malformed one is refused naming the
platform's field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx

from tests.broker.helpers import token
from tests.e2e.stack import STORE, Stack, eventually, stack
from tests.e2e.test_store_client import all_jobs_in, texts

PATH = "/v1/channels/delivery-platform/orders"


def platform_order(n: int = 1) -> dict[str, Any]:
    return {
        "platform": "Hungry Panda",
        "id": f"HP-2026-{n:05d}",
        "display_id": f"A{n:03d}",
        "store": {"id": STORE, "name": "E2E Noodle House"},
        "type": "PICKUP",
        "placed_at": "2026-11-29T04:15:00Z",
        "customer": {"name": "Wei", "phone": "+86 138 0000 0000"},
        "notes": "no cutlery",
        "payment": {"total": 5600, "currency": "CNY"},  # not ours: ignored
        "items": [
            {"id": "li-1", "merchant_sku": "B01", "title": "Double cheeseburger", "quantity": 2,
             "category": "burgers", "special_instructions": "well done",
             "modifiers": [{"title": "no onion"}, {"title": "extra cheese", "quantity": 2}],
             "allergens": ["gluten", "dairy"]},
            {"id": "li-2", "merchant_sku": "D02", "title": "Iced lemon tea", "quantity": 1,
             "category": "drinks"},
        ],
    }  # fmt: skip


async def post(st: Stack, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=st.http, timeout=10) as http:
        return await http.post(
            PATH, json=body, headers={"Authorization": f"Bearer {token('ingest')}"}
        )


async def test_a_platform_order_prints_the_right_chits_once(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        await st.start_client()
        r = await post(st, platform_order())
        assert r.status_code == 202, r.text
        order_id = r.json()["order_id"]
        await eventually(lambda: all_jobs_in(st, [order_id], {"printed"}), what="printed")
        [kitchen] = texts(st, "kitchen")
        assert "Double cheeseburger" in kitchen and "no onion" in kitchen
        assert "2× extra cheese" in kitchen and "well done" in kitchen
        assert "A001" in kitchen and "Iced lemon tea" not in kitchen
        [bar] = texts(st, "bar")
        assert "Iced lemon tea" in bar and "Double cheeseburger" not in bar

        async with st.api() as http:
            view = (await http.get(f"/v1/orders/{order_id}")).json()
        order = view["order"]
        assert order["channel"] == "x-hungry-panda" and order["external_id"] == "HP-2026-00001"
        assert order["service"] == "pickup" and order["customer"] == "Wei"
        assert order["pickup_code"] == "A001" and order["note"] == "no cutlery"

        again = await post(st, platform_order())  # the platform retries its webhook
        assert again.status_code == 200 and again.json()["order_id"] == order_id
        assert again.json()["duplicate"] is True
        [second] = [(await post(st, platform_order(2))).json()["order_id"]]
        await eventually(lambda: all_jobs_in(st, [second], {"printed"}), what="second printed")
        assert len(texts(st, "kitchen")) == 2  # the retry printed nothing


async def test_a_malformed_payload_names_the_platforms_field(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:

        async def refused(body: Any) -> list[str]:
            r = await post(st, body)
            assert r.status_code == 422, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"].startswith("delivery-platform payload: ")
            return [e["path"] for e in r.json()["errors"]]

        bad = platform_order()
        bad["items"][0]["quantity"] = 0
        del bad["store"]["id"]
        assert await refused(bad) == ["store.id", "items.0.quantity"]

        long_title = platform_order()  # fine for the platform, too long for a chit
        long_title["items"][1]["title"] = "tea " * 60
        long_title["items"][0]["modifiers"][1]["title"] = "x" * 121
        assert await refused(long_title) == ["items.0.modifiers.1.title", "items.1.title"]

        twice = copy.deepcopy(platform_order())
        twice["items"][1]["id"] = "li-1"
        assert await refused(twice) == ["items"]
        assert await refused({"platform": "p"}) == ["id", "store", "placed_at", "items"]
        assert await refused([1, 2]) == [""]

        async with httpx.AsyncClient(base_url=st.http, timeout=10) as http:
            r = await http.post(
                "/v1/channels/nope/orders",
                json=platform_order(),
                headers={"Authorization": f"Bearer {token('ingest')}"},
            )
            assert r.status_code == 404 and "delivery-platform" in r.json()["detail"]
            r = await http.post(
                PATH,
                json=platform_order(),
                headers={"Authorization": f"Bearer {token('ingest', store='s-other')}"},
            )
            assert r.status_code == 403
        assert all(not p.receipts for p in st.printers.values())
