"""Issue #5 end to end: real broker + store client + printer emulators over TCP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.broker.helpers import Endpoints, open_hq, recv_json
from tests.e2e.stack import (
    STORE,
    Stack,
    assert_each_once_in_order,
    eventually,
    order,
    stack,
    store_config,
)

OUTAGE_S = float(os.environ.get("PASSLINE_E2E_OUTAGE_S", "60"))


async def submit_all(st: Stack, orders: list[dict[str, Any]]) -> list[str]:
    return [(await st.submit(o))["order_id"] for o in orders]


async def all_jobs_in(st: Stack, order_ids: list[str], states: set[str]) -> bool:
    for order_id in order_ids:
        if not set((await st.job_states(order_id)).values()) <= states:
            return False
    return True


def texts(st: Stack, printer: str) -> list[str]:
    return [r.text for r in st.printers[printer].receipts]


async def test_200_orders_print_once_in_order_on_the_right_printer(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        await st.start_client()
        ids = await submit_all(st, [order(n) for n in range(200)])
        await eventually(
            lambda: asyncio.sleep(0, all(len(p.receipts) >= 200 for p in st.printers.values())),
            within=180, what="600 receipts",
        )  # fmt: skip
        await eventually(lambda: all_jobs_in(st, ids, {"printed"}), what="all jobs printed")
        kitchen, bar, front = texts(st, "kitchen"), texts(st, "bar"), texts(st, "receipt")
        assert_each_once_in_order(kitchen, [f"Burger {n}" for n in range(200)])
        assert_each_once_in_order(bar, [f"Tea {n}" for n in range(200)])
        assert_each_once_in_order(front, [f"P{n}" for n in range(200)])
        assert all("Tea" not in t for t in kitchen) and all("Burger" not in t for t in bar)
        assert all("no onion" in t and "gluten" in t.lower() for t in kitchen)
        assert all(f"Burger {n}" in t and f"Tea {n}" in t for n, t in enumerate(front))


async def hq_waits_for(ws: Any, printer: str, want: dict[str, Any]) -> dict[str, Any]:
    while True:
        msg = await recv_json(ws, within=10)
        if msg["type"] == "printer_status" and msg["printer_id"] == printer:
            status = msg["status"]
            if all(status.get(k) == v for k, v in want.items()):
                return dict(status)


async def test_paper_out_is_seen_held_then_printed_in_order(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        await st.start_client()
        ep = Endpoints(st.http, st.ws)
        hq, fleet = await open_hq(ep)
        assert fleet["type"] == "fleet"
        first = await submit_all(st, [order(0)])
        await eventually(lambda: all_jobs_in(st, first, {"printed"}), what="first order printed")

        await st.printers["kitchen"].set_state(paper="out")
        status = await hq_waits_for(hq, "kitchen", {"paper": "out"})  # the test waits up to 10 s
        assert status["state"] == "error" and "media-empty-error" in status["reasons"]
        async with st.api() as http:
            view = (await http.get(f"/v1/stores/{STORE}")).json()
        kitchen = next(p for p in view["printers"] if p["printer_id"] == "kitchen")
        assert kitchen["status"]["paper"] == "out"

        ids = await submit_all(st, [order(n) for n in range(1, 6)])
        await eventually(
            lambda: asyncio.sleep(0, len(st.printers["bar"].receipts) >= 6 and len(st.printers["receipt"].receipts) >= 6),
            what="bar and receipt keep printing",
        )  # fmt: skip
        await eventually(lambda: _kitchen_held(st, ids), what="kitchen jobs held")
        assert len(st.printers["kitchen"].receipts) == 1

        await st.printers["kitchen"].set_state(paper="ok")
        await hq_waits_for(hq, "kitchen", {"paper": "ok", "state": "ready"})
        await eventually(lambda: all_jobs_in(st, ids, {"printed"}), what="held jobs printed")
        assert_each_once_in_order(texts(st, "kitchen"), [f"Burger {n}" for n in range(6)])
        await hq.close()


async def _kitchen_held(st: Stack, ids: list[str]) -> bool:
    return all([(await st.job_states(i))["kitchen"] == "held" for i in ids])


async def test_failover_reroutes_to_backup(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        config = store_config(st.printers, failover_after_s=1)
        config["printers"][0]["backup"] = "receipt"
        async with st.api() as http:
            assert (await http.put(f"/v1/stores/{STORE}/config", json=config)).status_code == 200
        await st.printers["kitchen"].set_state(cover_open=True)
        await st.start_client()
        ids = await submit_all(st, [order(n, drinks=False) for n in range(3)])
        await eventually(lambda: all_jobs_in(st, ids, {"printed"}), what="rerouted and printed")
        front = texts(st, "receipt")
        rerouted = [t for t in front if "REROUTED" in t]
        assert len(rerouted) == 3 and all("Hot line" in t for t in rerouted)
        assert_each_once_in_order(rerouted, [f"Burger {n}" for n in range(3)])
        assert st.printers["kitchen"].receipts == []
        async with st.api() as http:
            job = next(
                j for j in (await http.get(f"/v1/orders/{ids[0]}")).json()["jobs"]
                if j["printer_id"] == "kitchen"
            )  # fmt: skip
        assert [h["state"] for h in job["history"]][-3:] == ["rerouted", "printing", "printed"]


async def test_kill_9_with_50_jobs_spooled(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        for name in ("kitchen", "receipt"):
            await st.printers[name].set_state(paper="out")
        proc = st.spawn_client()
        ids = await submit_all(st, [order(n, drinks=False) for n in range(25)])  # 50 jobs
        await eventually(lambda: all_jobs_in(st, ids, {"held"}), what="50 jobs spooled and held")
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        for name in ("kitchen", "receipt"):
            await st.printers[name].set_state(paper="ok")
        st.spawn_client()
        await eventually(lambda: all_jobs_in(st, ids, {"printed"}), within=60, what="all printed")
        assert_each_once_in_order(texts(st, "kitchen"), [f"Burger {n}" for n in range(25)])
        assert_each_once_in_order(texts(st, "receipt"), [f"P{n}" for n in range(25)])


async def test_broker_outage_keeps_printing_and_reports_later(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        for name in st.printers:
            await st.printers[name].set_state(paper="out")
        await st.start_client()
        ids = await submit_all(st, [order(n) for n in range(10)])
        await eventually(lambda: all_jobs_in(st, ids, {"held"}), what="30 jobs spooled")
        await st.stop_broker()
        loop = asyncio.get_running_loop()
        down_at = loop.time()
        for name in st.printers:
            await st.printers[name].set_state(paper="ok")
        await eventually(
            lambda: asyncio.sleep(0, all(len(p.receipts) == 10 for p in st.printers.values())),
            what="spooled jobs print with the broker down",
        )  # fmt: skip
        await asyncio.sleep(max(0.0, OUTAGE_S - (loop.time() - down_at)))
        await st.start_broker()
        await eventually(
            lambda: all_jobs_in(st, ids, {"printed"}), within=60, what="states reach the broker"
        )
        await asyncio.sleep(1.0)  # a replay or snapshot would print now, if it were going to
        assert_each_once_in_order(texts(st, "kitchen"), [f"Burger {n}" for n in range(10)])
        assert_each_once_in_order(texts(st, "bar"), [f"Tea {n}" for n in range(10)])
        assert_each_once_in_order(texts(st, "receipt"), [f"P{n}" for n in range(10)])


async def test_hang_is_uncertain_and_the_next_job_prints(tmp_path: Path) -> None:
    async with stack(tmp_path, cps=400) as st:  # slow printers: the hang starts mid-job
        await st.start_client()
        kitchen = st.printers["kitchen"]
        before = kitchen.engine.bytes_in
        [first] = await submit_all(st, [order(0, drinks=False)])
        await eventually(
            lambda: asyncio.sleep(0, kitchen.engine.bytes_in > before + 64), what="bytes arrive"
        )
        await kitchen.set_state(hang=True)
        await eventually(
            lambda: _state_is(st, first, "kitchen", "uncertain"), what="uncertain via the API"
        )
        await kitchen.set_state(hang=False)
        [second] = await submit_all(st, [order(1, drinks=False)])
        await eventually(
            lambda: _state_is(st, second, "kitchen", "printed"), what="next job prints"
        )
        assert await _state_is(st, first, "kitchen", "uncertain")  # never auto-reprinted
        assert sum("Burger 0" in t for t in texts(st, "kitchen")) <= 1


async def _state_is(st: Stack, order_id: str, printer: str, state: str) -> bool:
    return (await st.job_states(order_id))[printer] == state


async def test_jobs_past_expiry_are_expired_not_printed(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        config = store_config(st.printers, job_ttl_s=10)
        async with st.api() as http:
            assert (await http.put(f"/v1/stores/{STORE}/config", json=config)).status_code == 200
        await st.printers["kitchen"].set_state(offline=True)
        await st.start_client()
        [order_id] = await submit_all(st, [order(0, drinks=False)])
        await eventually(lambda: _state_is(st, order_id, "kitchen", "held"), what="held")
        await asyncio.sleep(10.5)  # the job's TTL passes while the printer is away
        await st.printers["kitchen"].set_state(offline=False)
        await eventually(lambda: _state_is(st, order_id, "kitchen", "expired"), what="expired")
        assert st.printers["kitchen"].receipts == []
        assert await _state_is(st, order_id, "receipt", "printed")


@pytest.mark.parametrize("path", ["/status", "/"])
async def test_local_status_page(tmp_path: Path, path: str) -> None:
    async with stack(tmp_path) as st:
        client = await st.start_client()
        await eventually(lambda: asyncio.sleep(0, client.link.phase == "online"), what="online")
        await eventually(lambda: asyncio.sleep(0, len(client.workers) == 3), what="workers")
        reader, writer = await asyncio.open_connection("127.0.0.1", client.status_port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        page = json.loads(body)
        assert page["store_id"] == STORE and page["link"]["state"] == "online"
        assert set(page["printers"]) == {"kitchen", "bar", "receipt"}


async def test_a_refused_handshake_waits_out_the_brokers_retry_after(tmp_path: Path) -> None:
    """Issue 14: a broker that turns a store's reconnect away (429, too many hellos for
    this store) says when to come back; the store client waits at least that long
    instead of knocking again on its own backoff (a stampede after a broker restart)."""
    from dataclasses import replace

    from store_client.daemon import StoreClient
    from tests.faults.proxy import LinkProxy

    kw = {"store_hello_rate": 0.05, "store_hello_burst": 1}  # one hello per 20 s per store
    async with stack(tmp_path, broker_kw=kw) as st:
        proxy = LinkProxy(st.ws_port)
        try:
            settings = replace(st.client_settings(), broker=f"ws://127.0.0.1:{proxy.port}")
            st.client = client = StoreClient(settings)
            ready = asyncio.Event()
            st.client_task = asyncio.create_task(client.run(ready))
            await eventually(lambda: _online(client), what="the first link")
            proxy.cut()  # the reconnect comes within a second, inside the broker's limit

            async def refused() -> bool:
                return "HTTP 429" in (client.link.last_error or "")

            await eventually(refused, what="the broker refused the reconnect")
            assert "retry after" in (client.link.last_error or "")
            attempts = proxy.connections
            await asyncio.sleep(5)  # a lower bound: a slow machine only makes this longer
            assert proxy.connections == attempts  # no knock before the broker's time
        finally:
            proxy.close()


async def _online(client: Any) -> bool:
    return bool(client.online)
