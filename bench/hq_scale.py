"""HQ at chain scale (issue 13, done-when 7): with N configured stores, an HQ screen
connects and ``GET /v1/stores`` / ``GET /v1/printers?state=error`` answer while a
``/healthz`` poll measures how long the broker's loop keeps everyone else waiting.

The database is seeded through the broker's own storage API before the broker starts
(N store configs with the load bench's three printers, each printer's status record as a
store link writes it, one in ten in ``error``, and a link record per store), then a real
``passline broker`` (sqlite) serves it. One step at a time, with ``/healthz`` polled every
10 ms from a process of its own: the HQ websocket (hello → ``fleet``); ``GET /v1/stores``
whole, then in pages of 1,000 (following ``Link: rel="next"``); ``GET
/v1/printers?state=error``. Reported per step: how long it took, the bytes answered, and the longest
``/healthz`` round trip meanwhile (the goal: never over 100 ms).

    .venv/bin/python bench/hq_scale.py --stores 16000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from broker_load import CONFIG, SECRET
from cluster_procs import Procs, start_node
from websockets.asyncio.client import connect

from broker.auth import issue_token
from broker.orders import Orders, put
from broker.records import LinkRecord, PrinterRecord, printer_key
from broker.storage import Kind, Tx, open_storage
from protocol.config import StoreConfig
from protocol.status import PrinterStatus, StatusSource

REALTIME = StatusSource.REALTIME

SEED_BATCH = 200


async def seed(db: Path, n: int) -> None:
    storage = await open_storage(f"sqlite:///{db}")
    orders = Orders(storage)
    config = StoreConfig.model_validate(CONFIG)
    now = datetime.now(UTC)
    ids = [f"s-{i:05d}" for i in range(n)]
    for c in range(0, n, SEED_BATCH):
        chunk = ids[c : c + SEED_BATCH]
        await asyncio.gather(*(orders.put_config(s, config) for s in chunk))

        async def rest(i: int, sid: str) -> None:
            puts = [put(Kind.LINK, sid, LinkRecord(store_id=sid, online=False, since=now), 1)]
            for j, p in enumerate(config.printers):
                broken = (i + j) % 10 == 0  # a cover open: state "error"
                status = PrinterStatus(
                    reachable=True, online=True, cover_open=broken, source=REALTIME, since=now
                )
                rec = PrinterRecord(store_id=sid, printer_id=p.printer_id, status=status)
                puts.append(put(Kind.PRINTER, printer_key(sid, p.printer_id), rec, 1))
            await storage.commit(sid, Tx(puts))

        await asyncio.gather(*(rest(c + k, sid) for k, sid in enumerate(chunk)))
    await storage.aclose()


POLLER = """
import sys, time, httpx
with httpx.Client(base_url=sys.argv[1], timeout=30) as c:
    while True:
        t0 = time.time()
        c.get("/healthz").raise_for_status()
        print(f"{t0:.4f} {time.time() - t0:.4f}", flush=True)
        time.sleep(0.01)
"""


class Poll:
    """``/healthz`` every 10 ms from a process of its own (this one parses 20 MB answers,
    which would stall a poller in its loop), each round trip stamped with its start."""

    def __init__(self, http: str) -> None:
        self.http = http
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", POLLER, self.http, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        try:
            async for line in proc.stdout:
                at, took = line.split()
                self.samples.append((float(at), float(took)))
        finally:
            proc.kill()
            await proc.wait()

    def worst(self, start: float, end: float) -> tuple[float, int]:
        """The longest round trip that started in [start, end], and how many did."""
        window = [took for at, took in self.samples if start <= at <= end]
        return max(window, default=0.0), len(window)


async def pages(http: str, path: str, tok: str) -> tuple[int, int, int]:
    """(items, bytes, pages) of every page of a list route."""
    items = size = n = 0
    url: str | None = path
    async with httpx.AsyncClient(
        base_url=http, headers={"Authorization": f"Bearer {tok}"}, timeout=120
    ) as c:
        while url:
            r = await c.get(url)
            r.raise_for_status()
            items, size, n = items + len(r.json()), size + len(r.content), n + 1
            url = r.links.get("next", {}).get("url")
    return items, size, n


async def hq_fleet(ws: str, tok: str) -> tuple[int, int, int]:
    """(stores, bytes, frames) of the HQ screen's fleet, until ``fleet_end`` or one
    ``fleet`` without ``more``."""
    stores = size = frames = 0
    async with connect(ws, subprotocols=["passline.v1.json"], max_size=None) as c:  # type: ignore[list-item]
        await c.send(json.dumps({"type": "hello", "token": tok}))
        while True:
            raw = await asyncio.wait_for(c.recv(), 120)
            msg = json.loads(raw)
            size, frames = size + len(raw), frames + 1
            if msg["type"] in ("fleet", "fleet_page"):
                stores += len(msg["stores"])
                if not msg.get("more"):
                    break
            elif msg["type"] == "fleet_end":
                break
    return stores, size, frames


async def main(n: int) -> None:
    procs = Procs()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "hq.db"
        t0 = time.perf_counter()
        await seed(db, n)
        print(f"seeded {n} stores in {time.perf_counter() - t0:.1f} s", flush=True)
        node = await start_node(procs, f"sqlite:///{db}", Path(tmp) / "broker.log")
        try:
            ws = node.ws.replace("/v1/ws/store", "/v1/ws/hq")
            tok = issue_token(SECRET, "hq")
            poll = Poll(node.http)
            poller = asyncio.create_task(poll.run())
            await asyncio.sleep(1)
            out: dict[str, Any] = {"stores": n}
            steps = (
                ("hq_screen_fleet", lambda: hq_fleet(ws, tok)),
                ("GET /v1/stores", lambda: pages(node.http, "/v1/stores", tok)),
                (
                    "GET /v1/stores?limit=1000",
                    lambda: pages(node.http, "/v1/stores?limit=1000", tok),
                ),
                (
                    "GET /v1/printers?state=error",
                    lambda: pages(node.http, "/v1/printers?state=error", tok),
                ),
            )
            for name, step in steps:
                t0, wall0 = time.perf_counter(), time.time()
                items, size, frames = await step()
                took = time.perf_counter() - t0
                await asyncio.sleep(0.5)  # the poll of the last moments comes in
                worst_s, polls = poll.worst(wall0, wall0 + took)
                worst = worst_s * 1000
                print(
                    f"{name:30s} {items:6d} items, {size / 1e6:5.2f} MB in {frames} frames/pages, "
                    f"{took:5.2f} s; /healthz worst {worst:6.1f} ms over {polls} polls",
                    flush=True,
                )
                out[name] = {"items": items, "bytes": size, "frames": frames, "s": round(took, 3),
                             "healthz_worst_ms": round(worst, 1)}  # fmt: skip
            poller.cancel()
            print(json.dumps(out))
        finally:
            await procs.stop_all()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stores", type=int, default=16000)
    a = p.parse_args()
    sys.exit(asyncio.run(main(a.stores)))
