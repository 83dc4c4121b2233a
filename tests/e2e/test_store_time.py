"""Store time end to end (DESIGN.md §8.7, issue 17 done-when 6): an order a channel stamped
in UTC prints in Shanghai time, through broker → store client → printer emulator over TCP,
and for orders the store's own LAN edge takes too."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx

from store_client.daemon import StoreClient
from store_client.edge_settings import EdgeSettings
from tests.e2e.stack import STORE, Stack, eventually, order, stack, store_config

STAMP = {"placed_at": "2026-11-29T07:46:00Z", "due_at": "2026-11-29T08:30:00Z"}


def chits(st: Stack, printer: str, marker: str) -> list[str]:
    return [r.text for r in st.printers[printer].receipts if marker in r.text]


async def one_chit_each(st: Stack, marker: str) -> bool:
    return all(len(chits(st, p, marker)) == 1 for p in ("kitchen", "receipt"))


async def test_a_utc_stamp_prints_shanghai_time(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        async with st.api() as http:
            config = store_config(st.printers, timezone="Asia/Shanghai")
            r = await http.put(f"/v1/stores/{STORE}/config", json=config)
            assert r.status_code == 200, r.text
        await st.start_client()
        await st.submit({**order(1), **STAMP})
        await eventually(lambda: one_chit_each(st, "Burger 1"), what="kitchen chit and receipt")
        for printer in ("kitchen", "receipt"):
            (text,) = chits(st, printer, "Burger 1")
            assert "Placed 15:46" in text and "DUE 16:30" in text, text
            assert "07:46" not in text


async def test_the_brokers_default_zone_reaches_the_store_edge(tmp_path: Path) -> None:
    """The config names no zone: the broker fills in its ``default_timezone`` in what it
    sends the store client, so an order taken on the LAN prints store time as well."""
    async with stack(tmp_path, broker_kw={"default_timezone": "Asia/Shanghai"}) as st:
        settings = replace(st.client_settings(), lan=EdgeSettings("127.0.0.1", 0))
        st.client = client = StoreClient(settings)
        ready = asyncio.Event()
        st.client_task = asyncio.create_task(client.run(ready))
        await asyncio.wait_for(ready.wait(), 10)

        async def linked() -> bool:
            return client.current_config() is not None and client.lan_port is not None

        await eventually(linked, what="the store client got its config")
        config = client.current_config()
        assert config is not None and config.timezone == "Asia/Shanghai"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{client.lan_port}") as lan:
            r = await lan.post(
                "/v1/orders",
                json={**order(2), **STAMP},
                headers={"Authorization": f"Bearer {settings.token}"},  # the store's own
                timeout=10,
            )
            assert r.status_code == 202, r.text
        await eventually(lambda: one_chit_each(st, "Burger 2"), what="LAN order printed")
        (text,) = chits(st, "kitchen", "Burger 2")
        assert "Placed 15:46" in text and "DUE 16:30" in text, text
