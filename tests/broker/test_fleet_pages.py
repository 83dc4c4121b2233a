"""The fleet lists page by id with ``limit``/``after`` and ``Link: rel="next"``; the HQ
screen's ``fleet`` is built a page at a time (issue 13: HQ at chain scale). On every
backend: the pages read each store's records by id (``Storage.store_ids``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broker.app import Broker
from broker.orders import put
from broker.records import PrinterRecord, printer_key
from broker.storage import Kind, Tx
from protocol.messages.hq import Fleet
from protocol.status import PrinterStatus, StatusSource
from tests.broker.helpers import Endpoints, open_hq, store_config, token

STORES = [f"s-{i:03d}" for i in range(1, 8)]
BROKEN = {("s-002", "kitchen"), ("s-004", "bar"), ("s-006", "receipt")}


@pytest.fixture
async def fleet(running: Broker, ep: Endpoints) -> Broker:
    async with ep.client(token("hq")) as http:
        for sid in reversed(STORES):  # configured out of order: pages go by id
            r = await http.put(f"/v1/stores/{sid}/config", json=store_config(f"Store {sid}"))
            assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    for sid, printer in BROKEN:  # as a link's printer_status writes them
        status = PrinterStatus(reachable=True, cover_open=True, source=StatusSource.ASB, since=now)
        rec = PrinterRecord(store_id=sid, printer_id=printer, status=status)
        await running.storage.commit(
            sid, Tx([put(Kind.PRINTER, printer_key(sid, printer), rec, 1)])
        )
    return running


async def all_pages(ep: Endpoints, url: str) -> tuple[list[list[Any]], list[str]]:
    pages, links = [], []
    async with ep.client(token("hq")) as http:
        next_url: str | None = url
        while next_url:
            r = await http.get(next_url)
            assert r.status_code == 200, r.text
            pages.append(r.json())
            next_url = r.links.get("next", {}).get("url")
            if next_url:
                links.append(next_url)
    return pages, links


async def test_stores_page_by_id_with_a_next_link(fleet: Broker, ep: Endpoints) -> None:
    pages, links = await all_pages(ep, "/v1/stores?limit=3")
    assert [[s["store_id"] for s in p] for p in pages] == [STORES[:3], STORES[3:6], STORES[6:]]
    assert links == ["/v1/stores?after=s-003&limit=3", "/v1/stores?after=s-006&limit=3"]
    whole, links = await all_pages(ep, "/v1/stores")
    assert [s["store_id"] for s in whole[0]] == STORES and links == []
    assert whole[0][1]["printers"][0]["status"]["state"] == "error"  # s-002's kitchen
    exact, links = await all_pages(ep, "/v1/stores?limit=7")
    assert len(exact) == 1 and len(exact[0]) == 7 and links == []  # no empty last page


async def test_printers_page_by_store_and_printer_id(fleet: Broker, ep: Endpoints) -> None:
    every = sorted((s, p) for s in STORES for p in ("bar", "kitchen", "receipt"))
    pages, links = await all_pages(ep, "/v1/printers?limit=4")  # pages end inside stores
    assert [(r["store_id"], r["printer_id"]) for p in pages for r in p] == every
    assert links[0] == "/v1/printers?limit=4&after=s-002%2Fbar"
    pages, _ = await all_pages(ep, "/v1/printers?state=error&limit=2")
    assert [[(r["store_id"], r["printer_id"]) for r in p] for p in pages] == [
        sorted(BROKEN)[:2],
        sorted(BROKEN)[2:],
    ]


async def test_bad_page_parameters_name_the_field(fleet: Broker, ep: Endpoints) -> None:
    async with ep.client(token("hq")) as http:
        for url, field in (
            ("/v1/stores?limit=0", "limit"),
            ("/v1/stores?limit=1001", "limit"),
            ("/v1/stores?after=%20x", "after"),
            ("/v1/printers?after=s-001", "after"),  # a printer cursor is store/printer
        ):
            r = await http.get(url)
            assert r.status_code == 422, url
            assert r.headers["content-type"] == "application/problem+json"
            assert [e["path"] for e in r.json()["errors"]] == [f"query.{field}"], url


async def test_the_hq_fleet_message_holds_every_store(fleet: Broker, ep: Endpoints) -> None:
    ws, first = await open_hq(ep)
    fleet_msg = Fleet.model_validate(first)
    assert [s.store_id for s in fleet_msg.stores] == STORES
    await ws.close()
