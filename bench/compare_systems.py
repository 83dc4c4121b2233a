"""The three systems of ``compare.py`` and their simulated store clients: passline (its own
store client protocol, ``broker_load.py``'s client), the bare relay and the python-socketio
peer (Engine.IO 4 / Socket.IO 5 spoken over a websocket directly), with what the clients saw
(``Meter``) and what the submits got (``Offer``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgpack
from broker_load import (
    CONFIG,
    LISTEN,
    ROOT,
    SECRET,
    RawHttp,
    Stats,
    configure,
    issue_token,
    order,
    quiet_gc,
    settle,
    start,
    store_client,
    submit,
)
from cluster_procs import Procs, start_node, start_redis
from socketio_peer import ROUTES, make_jobs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

CONNECT_CONCURRENCY = 100
# The store config passline gets: the order of broker_load.py (burgers, mains, drinks) makes
# one kitchen job with every category on the grill's printer and no receipt printer, or
# three jobs with broker_load's CONFIG (grill, bar, receipt) — socketio_peer.ROUTES alike.
CONFIGS = {
    1: {
        "name": "Bench store",
        "printers": [CONFIG["printers"][0]],
        "stations": [
            {
                "station_id": "grill",
                "name": "Grill",
                "categories": ["burgers", "mains", "drinks"],
                "printer": "kitchen",
            }
        ],
    },
    3: CONFIG,
}


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)


# -- what the clients saw --------------------------------------------------------------------
@dataclass
class Meter(Stats):
    """Deliveries of the current step: jobs submitted before ``t0`` (an earlier step's late
    ones) are counted as ``stale`` and left out."""

    t0: float = 0.0
    lat: list[float] = field(default_factory=list)
    last: float = 0.0
    stale: int = 0
    frame_bytes: int = 0
    owed: int = -1
    done: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    serial: int = 0

    async def connect_all(self, clients: list[Coroutine[Any, Any, None]]) -> None:
        self.tasks = [asyncio.create_task(c) for c in clients]
        async with asyncio.timeout(600):
            await self.all_connected.wait()
        quiet_gc()

    def order(self, _: int = 0) -> dict[str, Any]:
        """An order to a random connected store, numbered across the steps (passline answers
        a repeated ``external_id`` as a duplicate, without new jobs)."""
        self.serial += 1
        return order(random.choice(self.live), self.serial)

    def job(self, store: str, job: dict[str, Any]) -> None:
        if not self.frame_bytes:  # broker_load's client does not pass the frame: re-encode
            self.frame_bytes = len(msgpack.packb({"type": "job", "offset": 100_000, "job": job}))
        self.hit(float(job["doc"]["note"][2:]))

    def hit(self, sent: float) -> None:
        self.delivered += 1
        if sent < self.t0:
            self.stale += 1
            return
        self.last = time.time()
        self.lat.append(self.last - sent)
        if self.owed >= 0 and len(self.lat) >= self.owed:
            self.done.set()

    def begin(self) -> None:
        self.t0, self.lat, self.last, self.owed = time.time(), [], 0.0, -1
        self.done.clear()

    def owe(self, jobs: int) -> None:
        self.owed = jobs
        if len(self.lat) >= jobs:
            self.done.set()


@dataclass
class Offer:
    offered: int = 0
    accepted: int = 0
    shed: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def reply(self, _: int, __: dict[str, Any], ___: float, status: int, raw: bytes) -> None:
        if status == 202:
            self.accepted += 1
        else:
            self.refused[f"{status} {raw[:100].decode(errors='replace')}"] += 1


# -- the three systems -----------------------------------------------------------------------
class System(Protocol):
    name: str
    meter: Meter

    @property
    def pids(self) -> dict[str, int]: ...

    async def start(self) -> None: ...

    async def offer(self, rate: float, seconds: float) -> Offer: ...


class _Served:
    """A system whose server processes are in ``servers`` (name → pid)."""

    name = ""

    def __init__(self, procs: Procs, args: argparse.Namespace) -> None:
        self.procs, self.args = procs, args
        self.meter = Meter(clients=args.clients)
        self.servers: dict[str, int] = {}

    @property
    def pids(self) -> dict[str, int]:
        return self.servers


class Passline(_Served):
    name = "passline"

    async def start(self) -> None:
        a = self.args
        if a.store == "redis":
            port, r = await start_redis(self.procs, a.tmp, "everysec")
            await r.aclose()
            self.servers["redis"] = self.procs.running[-1].pid
            url = f"redis://127.0.0.1:{port}/0?prefix=cmp"
        else:
            url = "memory://" if a.store == "memory" else f"sqlite:///{a.tmp / 'passline.db'}"
            if a.store == "sqlite" and a.store_query:
                url += "?" + a.store_query
        node = await start_node(self.procs, url, a.tmp / "passline.log")
        self.servers = {"passline": node.proc.pid} | self.servers
        self.http, self.stores = node.http, [f"s-{i:05d}" for i in range(a.clients)]
        await configure(node.http, self.stores, 32, CONFIGS[a.jobs_per_order])
        await self.meter.connect_all(
            [store_client(node.ws, s, self.meter, a.ready) for s in self.stores]
        )
        await settle(node.http)

    async def offer(self, rate: float, seconds: float) -> Offer:
        o = Offer()
        o.offered, o.shed = await submit(
            [self.http],
            self.meter.order,
            o.reply,
            rate=rate,
            duration=seconds,
            workers=self.args.workers,
        )
        return o

    async def batch(self, size: int, seconds: float, concurrency: int) -> dict[str, Any]:
        """``POST /v1/orders:batch`` with ``size`` orders a call, ``concurrency`` calls at a
        time, for ``seconds``: accepted orders/s and what the clients then saw."""
        tok, o = issue_token(SECRET, "ingest"), Offer()
        calls: list[float] = []

        async def worker() -> None:
            client = RawHttp(self.http, tok)
            while time.monotonic() < end:
                sent = time.time()
                body = [self.meter.order() | {"note": f"t={sent:.6f}"} for _ in range(size)]
                o.offered += size
                status, raw = await client.request("/v1/orders:batch", {"orders": body})
                calls.append(time.time() - sent)
                if status != 207:
                    o.refused[f"{status} {raw[:100].decode(errors='replace')}"] += size
                    continue
                for r in json.loads(raw)["results"]:
                    o.reply(0, {}, 0.0, r["status"], json.dumps(r["body"])[:100].encode())

        end = time.monotonic() + seconds
        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
        return {"offer": o, "call_p50_ms": pct(calls, 0.5), "call_p99_ms": pct(calls, 0.99)}


class Relay:
    def __init__(self, procs: Procs, args: argparse.Namespace) -> None:
        self.name, self.procs, self.args = "relay", procs, args
        self.meter = Meter(clients=args.clients)
        self.routes = ROUTES[args.jobs_per_order]

    @property
    def pids(self) -> dict[str, int]:
        return {"relay": self.pid}

    async def start(self) -> None:
        cmd = [sys.executable, str(ROOT / "bench" / "relay_baseline.py")]
        proc, line = await start(cmd, dict(os.environ))
        self.pid = self.procs.add(proc).pid
        url = "ws://127.0.0.1:" + LISTEN.search(line).group(2)  # type: ignore[union-attr]
        stores = [f"s-{i:05d}" for i in range(self.args.clients)]
        await self.meter.connect_all([self.client(url, s) for s in stores])
        self.pub = await connect(f"{url}/pub", compression=None, ping_interval=None, max_size=2**20)
        # The jobs the socket.io peer would emit for a bench order, with slots for the
        # store and the submit time (building them per frame would load the generator).
        jobs = make_jobs(order("@TO@", 0) | {"note": "t=@T@"}, self.routes, datetime.now(UTC))
        self.templates = [json.dumps({"to": "@TO@", "job": j}) for j in jobs]

    async def client(self, url: str, store: str) -> None:
        try:
            async with self.args.ready:
                ws = await connect(
                    f"{url}/sub/{store}", open_timeout=60, compression=None, ping_interval=None
                )
        except (OSError, TimeoutError, ConnectionClosed, InvalidStatus):
            self.meter.up(ok=False)
            return
        self.meter.live.append(store)
        self.meter.up()
        await receive_jobs(ws, self.meter, relay_frame)

    async def offer(self, rate: float, seconds: float) -> Offer:
        o, t0 = Offer(), time.monotonic()
        while (elapsed := time.monotonic() - t0) < seconds:
            for _ in range(int(elapsed * rate) - o.offered):
                store, t = random.choice(self.meter.live), f"{time.time():.6f}"
                for tmpl in self.templates:
                    await self.pub.send(tmpl.replace("@TO@", store).replace("@T@", t))
                o.offered += 1
            await asyncio.sleep(0.005)
        o.accepted = o.offered
        return o


class SocketIO(_Served):
    name = "socketio"

    async def start(self) -> None:
        a = self.args
        port, r = await start_redis(self.procs, a.tmp, "everysec")
        await r.aclose()
        redis_pid = self.procs.running[-1].pid
        cmd = [sys.executable, str(ROOT / "bench" / "socketio_peer.py")]
        cmd += ["--redis", f"redis://127.0.0.1:{port}/0", "--jobs-per-order", str(a.jobs_per_order)]
        with (a.tmp / "socketio.log").open("ab") as err:
            proc, line = await start(cmd, dict(os.environ), stderr=err)
        self.servers = {"socketio": self.procs.add(proc).pid, "redis": redis_pid}
        http_port = LISTEN.search(line).group(2)  # type: ignore[union-attr]
        self.http = f"http://127.0.0.1:{http_port}"
        url = f"ws://127.0.0.1:{http_port}/socket.io/?EIO=4&transport=websocket"
        stores = [f"s-{i:05d}" for i in range(a.clients)]
        await self.meter.connect_all([self.client(url, s) for s in stores])

    async def client(self, url: str, store: str) -> None:
        try:
            async with self.args.ready:
                ws = await connect(url, open_timeout=60, compression=None, ping_interval=None)
                await expect(ws, "0")  # Engine.IO open
                await ws.send("40")  # Socket.IO connect, namespace "/"
                await expect(ws, "40")
                await ws.send(f'420["join","{store}"]')  # event "join" with ack id 0
                await expect(ws, "430")
        except (OSError, TimeoutError, ConnectionClosed, InvalidStatus):
            self.meter.up(ok=False)
            return
        self.meter.live.append(store)
        self.meter.up()
        await receive_jobs(ws, self.meter, sio_event)

    async def offer(self, rate: float, seconds: float) -> Offer:
        o = Offer()
        o.offered, o.shed = await submit(
            [self.http],
            self.meter.order,
            o.reply,
            rate=rate,
            duration=seconds,
            workers=self.args.workers,
            path="/orders",
        )
        return o


def relay_frame(frame: str | bytes) -> tuple[dict[str, Any], bytes]:
    """The relay forwards ``{"to", "job"}`` as sent; the ack is what a store client's costs."""
    return json.loads(frame)["job"], b"ack"


async def expect(ws: ClientConnection, prefix: str) -> None:
    """Read until a frame starting with ``prefix``, answering Engine.IO pings meanwhile."""
    async with asyncio.timeout(60):
        while not (frame := str(await ws.recv())).startswith(prefix):
            if frame == "2":
                await ws.send("3")


def sio_event(frame: str | bytes) -> tuple[dict[str, Any] | None, str | None]:
    """``42<ack id>["job", {...}]`` → the job and the ack ``43<ack id>[]``; ``2`` (ping) →
    no job and ``3`` (pong)."""
    if frame == "2":
        return None, "3"
    head, _, rest = str(frame).partition("[")
    if not head.startswith("42"):
        return None, None
    _, job = json.loads("[" + rest)
    return job, f"43{head[2:]}[]"


Parse = Callable[[str | bytes], tuple[dict[str, Any] | None, str | bytes | None]]


async def receive_jobs(ws: ClientConnection, meter: Meter, parse: Parse) -> None:
    try:
        async for frame in ws:
            job, answer = parse(frame)
            if job is not None:
                meter.frame_bytes = meter.frame_bytes or len(frame)
                meter.hit(float(job["doc"]["note"][2:]))
            if answer is not None:
                await ws.send(answer)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else 1006
        meter.closed[code] = meter.closed.get(code, 0) + 1


SYSTEMS = {"passline": Passline, "relay": Relay, "socketio": SocketIO}
