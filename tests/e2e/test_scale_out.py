"""Issue #8 end to end: several ``passline broker`` processes on one Redis.

Real processes, a real ``redis-server`` (AOF on, ``appendfsync always``) of the test's own,
real store clients and printer emulators over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from printer_drivers.emulator import PrinterEmulator
from store_client.daemon import ClientSettings, StoreClient
from tests.broker.helpers import SECRET, Endpoints, open_hq, open_kds, recv_json, token
from tests.e2e.stack import (
    FAST_WORKERS,
    ROOT,
    assert_each_once_in_order,
    eventually,
    stable_port,
    store_config,
)
from tests.redis_server import RedisServer

INGEST = {"Authorization": f"Bearer {token('ingest')}"}
HQ = {"Authorization": f"Bearer {token('hq')}"}


@dataclass
class Node:
    name: str
    http_port: int
    ws_port: int
    proc: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def ep(self) -> Endpoints:
        return Endpoints(self.http, self.ws)


@dataclass
class Cluster:
    tmp: Path
    redis: RedisServer
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def store_url(self) -> str:
        return self.redis.url + "?prefix=e2e"

    async def start_node(self, name: str) -> Node:
        http, ws = stable_port(), stable_port()
        proc = self._spawn(name, http, ws)
        node = self.nodes[name] = Node(name, http, ws, proc)
        await eventually(lambda: ready(node), within=30, what=f"node {name} ready")
        return node

    def _spawn(self, name: str, http: int, ws: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PASSLINE_SECRET": SECRET,
            "PASSLINE_INGEST_RATE": "0",
            "PASSLINE_HELLO_RATE": "0",
            "PASSLINE_DRAIN_TIMEOUT": "5",
            "PASSLINE_CLOSE_TIMEOUT": "3",
        }
        return subprocess.Popen(
            [sys.executable, "-m", "passline", "broker", "--store", self.store_url,
             "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}"],
            cwd=self.tmp, env=env, stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"node-{name}.log", "ab"),
        )  # fmt: skip

    async def stop_node(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int:
        node = self.nodes[name]
        node.proc.send_signal(sig)
        return await asyncio.to_thread(node.proc.wait, 30)

    async def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(node.proc.wait, 30)
            if node.proc.poll() is None:
                node.proc.kill()


async def ready(node: Node) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(node.http + "/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.asynccontextmanager
async def cluster(tmp: Path, names: str = "ABC") -> AsyncIterator[Cluster]:
    server = RedisServer(tmp / "redis", aof=True)
    server.start()
    c = Cluster(tmp, server)
    try:
        for name in names:
            await c.start_node(name)
        yield c
    finally:
        await c.stop_all()
        server.stop()


@contextlib.asynccontextmanager
async def store(
    tmp: Path, store_id: str, brokers: list[Node], config_on: Node
) -> AsyncIterator[tuple[StoreClient, dict[str, PrinterEmulator]]]:
    """A store: three emulated printers, its config, a store client linked to ``brokers``."""
    async with (
        PrinterEmulator(name="kitchen") as kitchen,
        PrinterEmulator(name="bar", width_mm=58) as bar,
        PrinterEmulator(name="receipt") as receipt,
    ):
        printers = {"kitchen": kitchen, "bar": bar, "receipt": receipt}
        async with httpx.AsyncClient(base_url=config_on.http, headers=HQ, timeout=10) as http:
            r = await http.put(f"/v1/stores/{store_id}/config", json=store_config(printers))
            assert r.status_code == 200, r.text
        settings = ClientSettings(
            broker=",".join(n.ws for n in brokers), store_id=store_id,
            token=token("store", store=store_id), spool_dir=tmp / f"spool-{store_id}",
            status_port=None, workers=FAST_WORKERS,
        )  # fmt: skip
        client = StoreClient(settings)
        started = asyncio.Event()
        task = asyncio.create_task(client.run(started))
        try:
            await asyncio.wait_for(started.wait(), 10)
            await eventually(lambda: linked(config_on, store_id), what=f"{store_id} online")
            yield client, printers
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def linked(node: Node, store_id: str) -> bool:
    async with httpx.AsyncClient(base_url=node.http, headers=HQ, timeout=5) as http:
        r = await http.get(f"/v1/stores/{store_id}")
    return r.status_code == 200 and bool(r.json()["link"]["online"])


def an_order(store_id: str, n: int) -> dict[str, Any]:
    return {
        "store_id": store_id, "channel": "pos", "external_id": f"{store_id}-{n}",
        "service": "takeout", "pickup_code": f"P{n}", "placed_at": "2026-11-22T12:00:00+08:00",
        "items": [{"line_id": "1", "sku": "B01", "name": f"Burger {n}", "qty": 1,
                   "category": "burgers"}],
    }  # fmt: skip


async def printed_once_in_order(printer: PrinterEmulator, names: list[str]) -> bool:
    texts = [r.text for r in printer.receipts]
    if len(texts) < len(names):
        return False
    assert_each_once_in_order(texts, names)  # more chits than orders fails here too
    return True


# -- 2. any node serves any store --------------------------------------------------------------


async def test_order_on_a_reaches_b_and_a_bump_on_c_reaches_a(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        a, b, cc = c.nodes["A"], c.nodes["B"], c.nodes["C"]
        async with store(tmp_path, "s-x1", [b], config_on=a) as (_client, printers):
            hq, fleet = await open_hq(a.ep)  # an HQ screen on A, the store's link on B
            assert [s["store_id"] for s in fleet["stores"]] == ["s-x1"]
            screen_a, snap = await open_kds(a.ep, store="s-x1", station="grill")
            screen_c, _ = await open_kds(cc.ep, store="s-x1", station="grill")
            assert snap["tickets"] == []
            async with httpx.AsyncClient(base_url=a.http, headers=INGEST, timeout=10) as http:
                r = await http.post("/v1/orders", json=an_order("s-x1", 1))
            assert r.status_code == 202, r.text
            order_id = r.json()["order_id"]
            await eventually(
                lambda: printed_once_in_order(printers["kitchen"], ["Burger 1"]),
                what="the chit printed by the store client linked to B",
            )
            ticket = (await next_of(screen_c, "ticket"))["ticket"]
            assert (await next_of(screen_a, "ticket"))["ticket"]["ticket_id"] == ticket["ticket_id"]
            bump = {"type": "bump", "ref": "r1", "ticket_id": ticket["ticket_id"], "version": 1}
            await screen_c.send(json.dumps(bump))
            assert (await next_of(screen_c, "ack"))["ticket"]["state"] == "ready"
            removed = await next_of(screen_a, "ticket_removed")  # the bump on C, seen on A
            assert removed["ticket_id"] == ticket["ticket_id"]
            # the store client on B reported the job printed: every node's API shows it
            async with httpx.AsyncClient(base_url=cc.http, headers=HQ, timeout=10) as http:
                await eventually(
                    lambda: job_states_are(http, order_id, {"printed"}), what="printed on C"
                )
            # printer status reported on B reaches the HQ screen on A
            await printers["kitchen"].set_state(paper="out")
            while True:
                msg = await recv_json(hq, within=15)
                if msg["type"] == "printer_status" and msg["status"]["paper"] == "out":
                    assert msg["store_id"] == "s-x1" and msg["printer_id"] == "kitchen"
                    break
            for ws in (hq, screen_a, screen_c):
                await ws.close()


async def next_of(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg = await recv_json(ws, within=15)
        if msg["type"] == kind:
            return msg


async def job_states_are(http: httpx.AsyncClient, order_id: str, states: set[str]) -> bool:
    r = await http.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return {j["state"] for j in r.json()["jobs"]} <= states


# -- 3. a node stops during a burst ------------------------------------------------------------


class Submitter:
    """Submits orders one after another, each to the next node; a refused or failed submit
    is tried again on the next node (the same order: idempotent), as an integrator would."""

    def __init__(self, nodes: Callable[[], list[Node]]) -> None:
        self.nodes = nodes
        self.turn = 0
        self.acknowledged: list[str] = []
        self.refusals: list[tuple[int, str | None]] = []
        self.progress = asyncio.Event()

    async def reached(self, count: int) -> None:
        while len(self.acknowledged) < count:
            self.progress.clear()
            await self.progress.wait()

    async def burst(self, store_id: str, n_orders: int) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            for n in range(n_orders):
                await self.submit(http, an_order(store_id, n))

    async def submit(self, http: httpx.AsyncClient, body: dict[str, Any]) -> str:
        for _ in range(600):
            nodes = self.nodes()
            node = nodes[self.turn % len(nodes)]
            self.turn += 1
            try:
                r = await http.post(node.http + "/v1/orders", json=body, headers=INGEST)
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
                continue
            if r.status_code in (200, 202):
                self.acknowledged.append(body["external_id"])
                self.progress.set()
                return str(r.json()["order_id"])
            assert r.status_code == 503, r.text  # storage down: nothing else is expected
            self.refusals.append((r.status_code, r.headers.get("Retry-After")))
            await asyncio.sleep(0.1)
        raise AssertionError(f"order {body['external_id']} never accepted")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_node_stops_during_a_burst(tmp_path: Path, sig: signal.Signals) -> None:
    n_orders = 60
    async with cluster(tmp_path) as c:
        a, b, cc = c.nodes["A"], c.nodes["B"], c.nodes["C"]
        alive = {"A", "B", "C"}
        submitter = Submitter(lambda: [c.nodes[x] for x in sorted(alive)])
        async with (
            store(tmp_path, "s-y1", [b, cc, a], config_on=a) as (_c1, p1),
            store(tmp_path, "s-y2", [b, a, cc], config_on=cc) as (_c2, p2),
        ):

            async def stop_b() -> None:
                await submitter.reached(2 * n_orders // 3)
                code = await c.stop_node("B", sig)  # submits are on their way meanwhile
                assert code == (0 if sig is signal.SIGTERM else -signal.SIGKILL)
                alive.discard("B")

            await asyncio.gather(
                stop_b(), submitter.burst("s-y1", n_orders), submitter.burst("s-y2", n_orders)
            )
            names = [f"Burger {n}" for n in range(n_orders)]
            for printers in (p1, p2):
                await eventually(
                    lambda p=printers: printed_once_in_order(p["kitchen"], names),
                    within=90, what="every acknowledged order printed",
                )  # fmt: skip
                await eventually(
                    lambda p=printers: printed_once_in_order(p["receipt"], [f"P{n}" for n in range(n_orders)]),
                    within=30, what="every receipt printed",
                )  # fmt: skip
            assert len(submitter.acknowledged) == 2 * n_orders
            for store_id in ("s-y1", "s-y2"):  # both resumed on a node that is still up
                await eventually(lambda s=store_id: linked(a, s), within=30, what="relinked")
            await asyncio.sleep(1.0)  # nothing more arrives late: still exactly once
            for printers in (p1, p2):
                assert await printed_once_in_order(printers["kitchen"], names)


# -- 4. Redis restarts during a burst ----------------------------------------------------------


async def test_redis_restart_during_a_burst(tmp_path: Path) -> None:
    n_orders = 60
    async with cluster(tmp_path, "AB") as c:
        a, b = c.nodes["A"], c.nodes["B"]
        submitter = Submitter(lambda: [a, b])
        async with store(tmp_path, "s-z1", [a], config_on=a) as (client, printers):
            since = client.link_since

            async def restart_redis() -> None:
                await submitter.reached(n_orders // 3)
                await asyncio.to_thread(c.redis.stop)  # SIGTERM: redis writes its AOF, exits
                async with httpx.AsyncClient(timeout=10) as http:
                    for node in (a, b):
                        r = await http.get(node.http + "/readyz")
                        assert r.status_code == 503 and r.headers["Retry-After"], r.text
                await asyncio.sleep(2.0)
                await asyncio.to_thread(c.redis.start)

            await asyncio.gather(restart_redis(), submitter.burst("s-z1", n_orders))
            assert submitter.refusals, "no submit was refused while redis was down"
            assert all(code == 503 and after for code, after in submitter.refusals)
            for node in (a, b):  # recovered by itself
                await eventually(lambda n=node: ready(n), within=30, what="ready again")
            names = [f"Burger {n}" for n in range(n_orders)]
            await eventually(
                lambda: printed_once_in_order(printers["kitchen"], names),
                within=90, what="every acknowledged order printed",
            )  # fmt: skip
            assert client.link_since == since, "the store link went down with redis"
            async with httpx.AsyncClient(base_url=b.http, headers=HQ, timeout=10) as http:
                r = await http.get("/v1/stores/s-z1")
                assert r.status_code == 200 and r.json()["link"]["online"]
        # stores whose links open only now, on either node, get their jobs (issue 12 #9)
        for store_id, linked_to, ingest_on in (("s-z2", b, a), ("s-z3", a, b)):
            async with store(tmp_path, store_id, [linked_to], config_on=ingest_on) as (_, p):
                async with httpx.AsyncClient(base_url=ingest_on.http, headers=INGEST) as http:
                    r = await http.post("/v1/orders", json=an_order(store_id, 1), timeout=10)
                assert r.status_code == 202, r.text
                await eventually(
                    lambda p=p: printed_once_in_order(p["kitchen"], ["Burger 1"]),
                    within=30, what=f"{store_id}, linked after the restart, printed",
                )  # fmt: skip
