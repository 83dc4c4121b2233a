"""Issue #12.4: one store link per store across the fleet (DESIGN.md §8.2).

Two cashier PCs configured for one store, linked to two broker nodes on one Redis: the
newest takes over, the other is told 4503 and stops printing, and every chit is on paper
exactly once. Before the lease was kept in the backend, "newest hello takes over" held
within one node only, and both PCs printed every new job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from printer_drivers.emulator import PrinterEmulator
from store_client.daemon import ClientSettings, StoreClient
from store_client.link import Phase
from tests.broker.helpers import token
from tests.e2e.stack import FAST_WORKERS, assert_each_once_in_order, eventually, store_config
from tests.e2e.test_scale_out import HQ, INGEST, Node, an_order, cluster, linked

STORE = "s-two-pcs"


@contextlib.asynccontextmanager
async def pc(tmp: Path, name: str, node: Node) -> AsyncIterator[StoreClient]:
    """A cashier PC: its own spool, linked to ``node``."""
    settings = ClientSettings(
        broker=node.ws, store_id=STORE, token=token("store", store=STORE),
        spool_dir=tmp / f"spool-{name}", status_port=None, workers=FAST_WORKERS,
    )  # fmt: skip
    client = StoreClient(settings)
    started = asyncio.Event()
    task = asyncio.create_task(client.run(started))
    try:
        await asyncio.wait_for(started.wait(), 10)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def submit(node: Node, n: int) -> str:
    async with httpx.AsyncClient(base_url=node.http, headers=INGEST, timeout=10) as http:
        r = await http.post("/v1/orders", json=an_order(STORE, n))
    assert r.status_code == 202, r.text
    order_id: str = r.json()["order_id"]
    return order_id


async def all_printed(node: Node, order_ids: list[str]) -> bool:
    async with httpx.AsyncClient(base_url=node.http, headers=HQ, timeout=10) as http:
        for order_id in order_ids:
            jobs = (await http.get(f"/v1/orders/{order_id}")).json()["jobs"]
            if {j["state"] for j in jobs} != {"printed"}:
                return False
    return True


async def test_two_pcs_on_two_nodes_only_the_newest_prints(tmp_path: Path) -> None:
    async with (
        cluster(tmp_path, "AB") as c,
        PrinterEmulator(name="kitchen") as kitchen,
        PrinterEmulator(name="bar", width_mm=58) as bar,
        PrinterEmulator(name="receipt") as receipt,
    ):
        a, b = c.nodes["A"], c.nodes["B"]
        printers = {"kitchen": kitchen, "bar": bar, "receipt": receipt}
        async with httpx.AsyncClient(base_url=a.http, headers=HQ, timeout=10) as http:
            r = await http.put(f"/v1/stores/{STORE}/config", json=store_config(printers))
            assert r.status_code == 200, r.text
        async with pc(tmp_path, "first", a) as first:
            await eventually(lambda: linked(a, STORE), what="first PC online")
            before = [await submit(a, n) for n in range(10)]
            await eventually(lambda: all_printed(a, before), within=60, what="first orders")
            async with pc(tmp_path, "second", b) as second:
                await eventually(lambda: _phase(second, Phase.ONLINE), what="second PC online")
                after = [await submit((a, b)[n % 2], n) for n in range(10, 40)]
                await eventually(lambda: all_printed(b, after), within=90, what="later orders")
                await kitchen.wait_receipts(40, timeout_s=30)
                await asyncio.sleep(1.0)  # a second copy from the first PC would be out now
                texts = [r.text for r in kitchen.receipts]
                assert_each_once_in_order(texts, [f"Burger {n}" for n in range(40)])
                assert first.workers == {}  # the replaced PC drives no printer
                assert first.link.phase.value == "standby"  # told 4503


async def _phase(client: StoreClient, phase: Phase) -> bool:
    return client.link.phase is phase
