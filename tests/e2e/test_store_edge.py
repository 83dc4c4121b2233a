"""Issue 15, the store edge: orders taken on the store's LAN print with the uplink cut, reach
the broker when it returns, and nothing prints twice (DESIGN.md §8.6, docs/store-edge.md).

Real broker, real store client with ``--lan`` (in-process, or a subprocess to kill -9),
emulated printers over TCP, and a TCP proxy between the store client and the broker that
black-holes the uplink (``tests/faults/proxy.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol.ids import order_id_for
from store_client.daemon import StoreClient
from store_client.edge_settings import EdgeSettings
from tests.broker.helpers import token
from tests.e2e.stack import ROOT, STORE, Stack, eventually, order, stable_port, stack
from tests.faults.proxy import LinkProxy

STORE_TOKEN = token("store", store=STORE)


@contextlib.asynccontextmanager
async def edge_store(tmp: Path) -> AsyncIterator[tuple[Stack, LinkProxy, StoreClient]]:
    """A linked store client with its LAN edge on, its uplink through a cuttable proxy."""
    async with stack(tmp) as st:
        proxy = LinkProxy(st.ws_port)
        try:
            settings = replace(
                st.client_settings(),
                broker=f"ws://127.0.0.1:{proxy.port}",
                token=STORE_TOKEN,
                lan=EdgeSettings("127.0.0.1", 0),
                open_timeout_s=2,
            )
            st.client = StoreClient(settings)
            ready = asyncio.Event()
            st.client_task = asyncio.create_task(st.client.run(ready))
            await asyncio.wait_for(ready.wait(), 10)
            client = st.client
            await eventually(lambda: _has_config(client), what="the client got its config")
            yield st, proxy, client
        finally:
            proxy.close()


async def _has_config(client: StoreClient) -> bool:
    """Linked (welcome and snapshot done), with a config and the edge listening."""
    return client.online and client.current_config() is not None and client.lan_port is not None


async def cut_uplink(proxy: LinkProxy, client: StoreClient | None = None) -> None:
    """A dead uplink: open connections drop, new ones hang (a black hole, not a refusal)."""
    proxy.stall()
    proxy.cut()
    if client is not None:

        async def noticed() -> bool:
            return not client.online

        await eventually(noticed, what="the store client saw its link drop")


async def lan_submit(port: int, body: dict[str, Any], tok: str = STORE_TOKEN) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        return await http.post("/v1/orders", json=body, headers={"Authorization": f"Bearer {tok}"})


def order_id(body: dict[str, Any]) -> str:
    return order_id_for(body["store_id"], body["channel"], body["external_id"])


def printed(st: Stack, printer: str, marker: str) -> int:
    """How many chits on ``printer`` carry ``marker`` as a word."""
    pattern = re.compile(rf"(?<![\w]){re.escape(marker)}(?![\w])")
    return sum(1 for r in st.printers[printer].receipts if pattern.search(r.text))


async def broker_states(st: Stack, oid: str) -> set[str] | None:
    async with st.api() as http:
        r = await http.get(f"/v1/orders/{oid}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return {j["state"] for j in r.json()["jobs"]}


async def at_broker_printed(st: Stack, oids: list[str]) -> bool:
    for oid in oids:
        if await broker_states(st, oid) != {"printed"}:
            return False
    return True


# -- done when 1 and 2: the uplink cut, orders on the LAN, then reconciliation ---------------


async def test_lan_orders_print_while_the_uplink_is_cut_and_reach_the_broker_after(
    tmp_path: Path,
) -> None:
    async with edge_store(tmp_path) as (st, proxy, client):
        assert client.lan_port is not None
        await cut_uplink(proxy, client)
        lan = [order(n) for n in range(1, 61)]
        for body in lan:
            r = await lan_submit(client.lan_port, body)
            assert r.status_code == 202, r.text
            assert r.json()["order_id"] == order_id(body)
        cloud = [order(n) for n in range(101, 106)]  # a delivery platform, via the broker
        for body in cloud:
            await st.submit(body)

        async def lan_all_printed() -> bool:
            return all(
                printed(st, "kitchen", f"Burger {n}") == 1 and printed(st, "bar", f"Tea {n}") == 1
                for n in range(1, 61)
            )

        await eventually(lan_all_printed, within=60, what="every LAN order printed offline")
        assert all(printed(st, "kitchen", f"Burger {n}") == 0 for n in range(101, 106))
        assert [await broker_states(st, order_id(b)) for b in lan] == [None] * len(lan)

        proxy.resume()
        every = [order_id(b) for b in lan + cloud]
        await eventually(
            lambda: at_broker_printed(st, every), within=60, what="the broker has every order"
        )
        for n in [*range(1, 61), *range(101, 106)]:
            assert printed(st, "kitchen", f"Burger {n}") == 1, n
            assert printed(st, "bar", f"Tea {n}") == 1, n
            assert printed(st, "receipt", f"Burger {n}") == 1, n
        await eventually(lambda: _outbox_empty(client), what="every report acknowledged")
        async with st.api() as http:
            link = (await http.get(f"/v1/stores/{STORE}")).json()["link"]
        assert link["last_outage"]["lan_orders"] == 60  # HQ sees what the edge took offline
        assert link["last_outage"]["ended"] == link["since"]


# -- done when 3: one order from two channels prints once -----------------------------------


async def test_an_order_posted_to_the_lan_and_to_the_broker_prints_once(tmp_path: Path) -> None:
    async with edge_store(tmp_path) as (st, _, client):
        assert client.lan_port is not None
        lan_first, cloud_first = order(7), order(8)
        r = await lan_submit(client.lan_port, lan_first)
        assert r.status_code == 202, r.text
        await st.submit(lan_first)  # the gateway's copy of the same order
        await st.submit(cloud_first)
        await eventually(
            lambda: at_broker_printed(st, [order_id(cloud_first)]), what="cloud order printed"
        )
        again = await lan_submit(client.lan_port, cloud_first)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True  # its jobs were all spooled already
        repeat = await lan_submit(client.lan_port, lan_first)
        assert (repeat.status_code, repeat.json()["duplicate"]) == (200, True)

        oids = [order_id(lan_first), order_id(cloud_first)]
        await eventually(lambda: at_broker_printed(st, oids), what="both printed")
        await eventually(lambda: _outbox_empty(client), what="every forward acknowledged")
        for n in (7, 8):
            for printer, marker in (("kitchen", "Burger"), ("bar", "Tea"), ("receipt", "Burger")):
                assert printed(st, printer, f"{marker} {n}") == 1, (printer, n)


async def _outbox_empty(client: StoreClient) -> bool:
    return await client.spool.outbox_size() == 0


# -- the edge's answers are the broker's ------------------------------------------------------


async def test_the_lan_ingest_answers_like_the_broker(tmp_path: Path) -> None:
    async with edge_store(tmp_path) as (st, _, client):
        port = client.lan_port
        assert port is not None
        bad = order(1)
        bad["items"][0]["qty"] = 0
        lan, cloud = await lan_submit(port, bad), None
        async with httpx.AsyncClient(base_url=st.http, timeout=10) as http:
            cloud = await http.post(
                "/v1/orders", json=bad, headers={"Authorization": f"Bearer {token('ingest')}"}
            )
        assert lan.status_code == cloud.status_code == 422
        assert lan.headers["content-type"] == cloud.headers["content-type"]
        assert lan.json() == cloud.json()  # the same problem+json, field path and all

        unroutable = order(2)
        unroutable["items"][0]["category"] = "desserts"
        r = await lan_submit(port, unroutable)
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "items.0.category"

        other_store = {**order(3), "store_id": "s-other"}
        assert (await lan_submit(port, other_store)).status_code == 403
        assert (await lan_submit(port, order(4), tok="nope")).status_code == 401
        foreign = token("store", store="s-other")
        assert (await lan_submit(port, order(4), tok=foreign)).status_code == 401
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            big = await http.post(
                "/v1/orders",
                content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                headers={"Authorization": f"Bearer {STORE_TOKEN}"},
            )
            assert big.status_code == 413
            health = await http.get("/healthz")
            assert health.json() == {"status": "ok", "store_id": STORE, "link": "online"}

        ok = await lan_submit(port, order(5))  # the refused ones disturbed nothing
        assert ok.status_code == 202, ok.text
        await eventually(
            lambda: at_broker_printed(st, [order_id(order(5))]), what="the good order printed"
        )
        assert printed(st, "kitchen", "Burger 5") == 1
        for n in (1, 2, 3, 4):
            assert printed(st, "kitchen", f"Burger {n}") == 0


# -- done when 4: kill -9 during the outage ---------------------------------------------------


def spawn_edge_client(st: Stack, proxy_port: int, lan_port: int) -> subprocess.Popen[bytes]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PASSLINE_TOKEN": STORE_TOKEN}
    return subprocess.Popen(
        [sys.executable, "-m", "passline", "store-client", "--broker",
         f"ws://127.0.0.1:{proxy_port}", "--store", STORE, "--spool", str(st.tmp / "spool"),
         "--status-port", "0", "--lan", f"127.0.0.1:{lan_port}"],
        cwd=st.tmp, env=env, stdout=subprocess.DEVNULL,
        stderr=open(st.tmp / "client.log", "ab"),
    )  # fmt: skip


async def _edge_up(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            r = await http.get(f"http://127.0.0.1:{port}/healthz")
        return r.status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.timeout(180)
async def test_a_kill_9_during_the_outage_loses_nothing_the_lan_accepted(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        proxy = LinkProxy(st.ws_port)
        lan_port = stable_port()
        process = spawn_edge_client(st, proxy.port, lan_port)
        try:
            await eventually(lambda: _edge_up(lan_port), what="the edge listens")

            async def linked() -> bool:
                async with st.api() as http:
                    r = await http.get(f"/v1/stores/{STORE}")
                return bool(r.status_code == 200 and r.json()["link"]["online"])

            await eventually(linked, what="the store client linked once (config spooled)")
            await cut_uplink(proxy)
            accepted = []
            for n in range(1, 41):
                r = await lan_submit(lan_port, order(n))
                assert r.status_code == 202, r.text
                accepted.append(n)
            process.send_signal(signal.SIGKILL)  # maybe mid-print, maybe mid-write
            await asyncio.to_thread(process.wait, 30)

            process = spawn_edge_client(st, proxy.port, lan_port)
            await eventually(lambda: _edge_up(lan_port), what="the edge is back")
            proxy.resume()
            oids = [order_id(order(n)) for n in accepted]

            async def all_at_broker() -> bool:
                for oid in oids:
                    states = await broker_states(st, oid)
                    if states is None or not states <= {"printed", "uncertain"}:
                        return False
                return True

            await eventually(all_at_broker, within=90, what="every accepted order at the broker")
            for n in accepted:
                for printer, marker in (("kitchen", "Burger"), ("bar", "Tea")):
                    assert printed(st, printer, f"{marker} {n}") <= 1, (printer, n)
            uncertain = [oid for oid in oids if "uncertain" in (await broker_states(st, oid) or ())]
            assert len(uncertain) <= 3  # at most the chit on each printer when the kill hit
        finally:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, 30)
            proxy.close()


# -- amend and cancel on the LAN ----------------------------------------------------------


async def lan_post(port: int, path: str, body: dict[str, Any] | None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        return await http.post(path, json=body, headers={"Authorization": f"Bearer {STORE_TOKEN}"})


async def test_orders_taken_on_the_lan_are_amended_and_cancelled_there_offline(
    tmp_path: Path,
) -> None:
    async with edge_store(tmp_path) as (st, proxy, client):
        port = client.lan_port
        assert port is not None
        await cut_uplink(proxy, client)
        kept, dropped = order(21), order(22)
        for body in (kept, dropped):
            assert (await lan_submit(port, body)).status_code == 202
        await eventually(
            lambda: _printed_all(st, ["Burger 21", "Burger 22"]), what="both printed offline"
        )
        fries = {"line_id": "9", "sku": "F1", "name": "Fries 21", "qty": 1, "category": "burgers"}
        r = await lan_post(port, f"/v1/orders/{order_id(kept)}/amend", {"add": [fries]})
        assert r.status_code == 200, r.text
        assert r.json()["revision"] == 2 and [j["printer_id"] for j in r.json()["jobs"]]
        r = await lan_post(port, f"/v1/orders/{order_id(dropped)}/cancel", {"reason": "left"})
        assert r.status_code == 200, r.text
        again = await lan_post(port, f"/v1/orders/{order_id(dropped)}/cancel", None)
        assert (again.status_code, again.json()["duplicate"]) == (200, True)
        amend_cancelled = await lan_post(
            port, f"/v1/orders/{order_id(dropped)}/amend", {"add": [fries]}
        )
        assert amend_cancelled.status_code == 409
        unknown = await lan_post(port, "/v1/orders/o-not-here/cancel", None)
        assert unknown.status_code == 404 and "at the broker" in unknown.json()["detail"]
        await eventually(
            lambda: _printed_all(st, ["Fries 21", "VOID"]), what="delta and void chits offline"
        )

        proxy.resume()

        async def reconciled() -> bool:
            async with st.api() as http:
                a = (await http.get(f"/v1/orders/{order_id(kept)}")).json()
                b = (await http.get(f"/v1/orders/{order_id(dropped)}")).json()
            return bool(
                a.get("revision") == 2
                and b.get("cancelled")
                and await client.spool.outbox_size() == 0
            )

        await eventually(reconciled, within=60, what="the broker has the amend and the cancel")
        assert printed(st, "kitchen", "Fries 21") == 1  # the delta chit: once, by the edge
        assert printed(st, "kitchen", "Burger 21") == 1
        voids = [r.text for r in st.printers["kitchen"].receipts if "VOID" in r.text]
        assert len(voids) == 1 and "Burger 22" in voids[0]


async def _printed_all(st: Stack, markers: list[str]) -> bool:
    return all(printed(st, "kitchen", m) >= 1 for m in markers)


async def test_with_a_lan_token_the_store_token_is_not_taken_on_the_lan(tmp_path: Path) -> None:
    """``--lan-token``: the POS holds a token that only the edge takes, never the store's
    own (which also opens the store link, and could take it over)."""
    lan_token = "l" * 40
    async with stack(tmp_path) as st:
        settings = replace(
            st.client_settings(), token=STORE_TOKEN, lan=EdgeSettings("127.0.0.1", 0, lan_token)
        )
        st.client = client = StoreClient(settings)
        ready = asyncio.Event()
        st.client_task = asyncio.create_task(client.run(ready))
        await asyncio.wait_for(ready.wait(), 10)
        await eventually(lambda: _has_config(client), what="linked")
        assert client.lan_port is not None
        refused = await lan_submit(client.lan_port, order(31))  # the store's own token
        assert refused.status_code == 401 and "LAN token" in refused.json()["detail"]
        taken = await lan_submit(client.lan_port, order(31), tok=lan_token)
        assert taken.status_code == 202, taken.text
        await eventually(lambda: at_broker_printed(st, [order_id(order(31))]), what="printed")


async def test_a_restart_during_the_outage_keeps_local_screens_and_their_tickets(
    tmp_path: Path,
) -> None:
    """The edge keeps in its spool which screens the broker admitted and the orders it
    took: a store client restarted while the uplink is cut still serves the screen in
    local mode, with the LAN order's ticket."""
    import json

    from websockets.asyncio.client import connect

    kds_token = token("kds", store=STORE)

    async def screen(port: int) -> dict[str, Any]:
        async with connect(
            f"ws://127.0.0.1:{port}/v1/ws/kds", subprotocols=["passline.v1.json"]
        ) as ws:  # type: ignore[list-item]
            hello = {"type": "hello", "token": kds_token, "store": STORE, "station": "grill"}
            await ws.send(json.dumps(hello))
            first: dict[str, Any] = json.loads(await ws.recv())
            return first

    async with edge_store(tmp_path) as (st, proxy, client):
        assert client.lan_port is not None
        relayed = await screen(client.lan_port)  # the broker admits it, through the edge
        assert relayed["type"] == "snapshot" and not relayed.get("local")
        r = await lan_submit(client.lan_port, order(41))
        assert r.status_code == 202, r.text
        await cut_uplink(proxy, client)
        await st.stop_client()  # the PC restarts during the outage

        settings = replace(client.settings, lan=EdgeSettings("127.0.0.1", 0))
        st.client = again = StoreClient(settings)
        ready = asyncio.Event()
        st.client_task = asyncio.create_task(again.run(ready))
        await asyncio.wait_for(ready.wait(), 10)
        await eventually(lambda: _listening(again), what="the edge listens again")
        assert again.lan_port is not None
        local = await screen(again.lan_port)
        assert local["type"] == "snapshot" and local["local"] is True
        names = [ln["name"] for t in local["tickets"] for ln in t["lines"]]
        assert "Burger 41" in names


async def _listening(client: StoreClient) -> bool:
    return client.lan_port is not None


async def test_stopping_the_client_with_a_screen_open_leaves_no_socket_behind(
    tmp_path: Path,
) -> None:
    """A store client stopped (service stop, shutdown) while a screen is relayed through
    its edge ends that screen's socket and its handler: nothing is left running to be
    collected after the loop is gone (it was: uvicorn's websocket task, cut off)."""
    import json

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with edge_store(tmp_path) as (st, _proxy, client):
        assert client.lan_port is not None
        async with connect(
            f"ws://127.0.0.1:{client.lan_port}/v1/ws/kds", subprotocols=["passline.v1.json"]
        ) as ws:  # type: ignore[list-item]
            hello = {"type": "hello", "token": token("kds", store=STORE), "store": STORE,
                     "station": "grill"}  # fmt: skip
            await ws.send(json.dumps(hello))
            assert json.loads(await ws.recv())["type"] == "snapshot"
            await st.stop_client()
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()  # the edge closes the screen's socket
            assert ws.close_code is not None
        left = [t for t in asyncio.all_tasks() if "run_asgi" in repr(t.get_coro())]
        assert left == [], left
