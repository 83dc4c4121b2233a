"""Issue #12 end to end: delivery under ordinary faults (DESIGN.md §4, §8.2).

Real broker, real store client, printer emulators over TCP; a cuttable TCP proxy plays the
store's flaky uplink where a test needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker.helpers import token
from tests.e2e.stack import (
    STORE,
    Stack,
    assert_each_once_in_order,
    eventually,
    order,
    stack,
    store_config,
)
from tests.faults.parts import SpoolDisk
from tests.kds_web.netcut import CuttableProxy


def kitchen_and_bar_only(st: Stack) -> dict[str, Any]:
    """One job per order: no receipt printer."""
    config = store_config(st.printers)
    config["receipt_printer"] = None
    return config


async def submit_batch(st: Stack, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=st.http, timeout=60) as http:
        for i in range(0, len(orders), 500):
            r = await http.post(
                "/v1/orders:batch",
                json={"orders": orders[i : i + 500]},
                headers={"Authorization": f"Bearer {token('ingest')}"},
            )
            assert r.status_code in (200, 207), r.text
            for res in r.json()["results"]:
                assert res["status"] == 202, res
                results.append(res["body"])
    return results


async def put_config(st: Stack, config: dict[str, Any]) -> None:
    async with st.api() as http:
        r = await http.put(f"/v1/stores/{STORE}/config", json=config)
        assert r.status_code == 200, r.text


async def job_state(st: Stack, job_id: str) -> str:
    async with st.api() as http:
        r = await http.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    state: str = r.json()["state"]
    return state


@contextlib.asynccontextmanager
async def uplink(st: Stack) -> AsyncIterator[CuttableProxy]:
    """The store client reaches the broker only through this proxy."""
    proxy = CuttableProxy(st.ws_port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.timeout(900)
async def test_a_snapshot_of_5000_live_jobs_prints_every_job_once(tmp_path: Path) -> None:
    """#12.1: over the client's frame limit, a one-frame welcome closed the link 1009
    for good; the snapshot now comes in pages and every job prints once, in order."""
    async with stack(tmp_path) as st:
        await put_config(st, kitchen_and_bar_only(st))
        orders = [order(n, drinks=False) if n % 2 else drink_only(n) for n in range(5000)]
        await submit_batch(st, orders)
        await st.start_client()
        kitchen = [f"Burger {n}" for n in range(5000) if n % 2]
        bar = [f"Tea {n}" for n in range(5000) if not n % 2]
        await st.printers["kitchen"].wait_receipts(len(kitchen), timeout_s=600)
        await st.printers["bar"].wait_receipts(len(bar), timeout_s=600)
        assert st.client is not None and st.client.link.phase.value == "online"
        assert_each_once_in_order([r.text for r in st.printers["kitchen"].receipts], kitchen)
        assert_each_once_in_order([r.text for r in st.printers["bar"].receipts], bar)


def drink_only(n: int) -> dict[str, Any]:
    body = order(n)
    body["items"] = [item for item in body["items"] if item["category"] == "drinks"]
    return body


async def test_a_cancel_during_an_outage_is_not_printed_after_a_snapshot(tmp_path: Path) -> None:
    """#12.7: after ``recovered: false`` the client kept spooled jobs absent from the
    broker's live set, so an order cancelled while it was away still printed."""
    async with stack(tmp_path, broker_kw={"stream_max_len": 5}) as st:
        await put_config(st, kitchen_and_bar_only(st))
        kitchen = st.printers["kitchen"]
        await kitchen.set_state(paper="out")
        await st.start_client()
        doomed = await st.submit(order(1, drinks=False))
        doomed_job = doomed["jobs"][0]["job_id"]
        await eventually(lambda: _is(st, doomed_job, "held"), what="job held for paper")
        await st.stop_client()
        async with httpx.AsyncClient(base_url=st.http, timeout=10) as http:
            r = await http.post(
                f"/v1/orders/{doomed['order_id']}/cancel",
                headers={"Authorization": f"Bearer {token('ingest')}"},
            )
            assert r.status_code == 200, r.text
        later = [await st.submit(order(n, drinks=False)) for n in range(2, 40)]  # trims
        client = await st.start_client()  # the paper is still out: nothing prints yet

        async def settled() -> bool:
            got = await client.spool.get(doomed_job)
            return got is not None and got.state.value != "held"

        await eventually(lambda: _all_in(st, later, "held"), what="later orders held")
        await eventually(settled, what="the cancelled job settled at the store")
        await kitchen.set_state(paper="ok")
        await eventually(lambda: _all_in(st, later, "printed"), what="later orders printed")
        await kitchen.wait_receipts(1 + len(later), timeout_s=60)
        await asyncio.sleep(1.0)  # a wrong print of the cancelled job would be out by now
        texts = [r.text for r in kitchen.receipts]
        assert "ORDER CANCELLED" in texts[0]  # the void chit, and never the order's own
        assert_each_once_in_order(texts, [f"Burger {n}" for n in range(1, 40)])
        spooled = await client.spool.get(doomed_job)
        assert spooled is not None and spooled.state.value == "cancelled"


async def _is(st: Stack, job_id: str, state: str) -> bool:
    return await job_state(st, job_id) == state


async def _all_in(st: Stack, subs: list[dict[str, Any]], state: str) -> bool:
    for sub in subs:
        if set((await st.job_states(sub["order_id"])).values()) != {state}:
            return False
    return True


async def test_a_report_written_while_the_link_drops_reaches_the_broker(
    tmp_path: Path, caplog: Any
) -> None:
    """#12.5: the client dropped a report once its frame was written to the socket; one
    written into a link that then died never reached the broker."""
    caplog.set_level(logging.INFO)
    async with stack(tmp_path) as st, uplink(st) as proxy:
        await put_config(st, kitchen_and_bar_only(st))
        kitchen = st.printers["kitchen"]
        await kitchen.set_state(paper="out")
        st_client_settings = st.client_settings
        st.client_settings = lambda: _via(st_client_settings(), proxy.port)  # type: ignore[method-assign]
        client = await st.start_client()
        sub = await st.submit(order(1, drinks=False))
        job_id = sub["jobs"][0]["job_id"]
        await eventually(lambda: _is(st, job_id, "held"), what="job held for paper")
        proxy.hold()  # the uplink goes dark: frames vanish, nothing closes
        await kitchen.set_state(paper="ok")
        await kitchen.wait_receipts(1, timeout_s=30)

        async def printed_locally() -> bool:
            got = await client.spool.get(job_id)
            return got is not None and got.state.value == "printed"

        await eventually(printed_locally, what="printed at the store")
        await asyncio.sleep(0.5)  # the report has gone into the dead link
        assert await job_state(st, job_id) == "held"
        proxy.restore()  # the old connection dies; the client reconnects
        await eventually(lambda: _is(st, job_id, "printed"), within=60, what="report delivered")
        assert len(kitchen.receipts) == 1


def _via(settings: Any, port: int) -> Any:
    settings.broker = f"ws://127.0.0.1:{port}"
    return settings


async def test_a_full_spool_disk_restarts_the_link_not_the_store_client(
    tmp_path: Path, caplog: Any
) -> None:
    """Found by the fault run: a failed spool write ended the whole daemon (exit 1), so
    every printer stopped. Now the link restarts; nothing unwritten was acknowledged, so
    the broker sends it again once there is room."""
    disk = SpoolDisk(tmp_path / "spool", size_mb=8)
    problem = disk.mount()
    assert problem is None, problem  # CI runs as root; tmpfs mounts work there
    try:
        async with stack(tmp_path) as st:
            await put_config(st, kitchen_and_bar_only(st))
            client = await st.start_client()
            first = await st.submit(order(1, drinks=False))
            await eventually(lambda: _all_in(st, [first], "printed"), what="first order")
            disk.fill()
            during = [await st.submit(order(n, drinks=False)) for n in range(2, 6)]
            await asyncio.sleep(2.0)  # the writes fail meanwhile
            assert st.client_task is not None and not st.client_task.done()
            assert "spool write failed" in caplog.text  # the fault did happen
            disk.drain()
            await eventually(lambda: _all_in(st, during, "printed"), within=60, what="later")
            texts = [r.text for r in st.printers["kitchen"].receipts]
            assert_each_once_in_order(texts, [f"Burger {n}" for n in range(1, 6)])
            assert client.link.phase.value == "online"
    finally:
        disk.unmount()
