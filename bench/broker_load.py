"""Load generator for the broker, in its own process (issue #4; results in docs/benchmarks.md).

Starts ``passline broker`` (and the bare relay of ``relay_baseline.py``) as subprocesses,
connects N simulated store clients (raw websockets, msgpack, acking every message), submits
M orders/s over REST to random stores for D seconds, and reports delivered messages/s and
submit-to-delivery latency (p50/p99). The same N clients and message rate then go through
the bare relay: the ratio of the two is the figure that says what the broker costs.

    python bench/broker_load.py --clients 1000 --rate 200 --duration 20
    python bench/broker_load.py --clients 10000 --rate 300 --duration 20 --store memory
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgpack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from broker.auth import issue_token  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
LISTEN = re.compile(r"ws=([\d.]+):(\d+)")
HTTP = re.compile(r"http=([\d.]+):(\d+)")
CONNECT_CONCURRENCY = 200


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    delivered: int = 0
    errors: int = 0
    closed: dict[int, int] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)
    connected: int = 0
    failed: int = 0
    clients: int = 0
    live: list[str] = field(default_factory=list)
    target: int = -1
    all_connected: asyncio.Event = field(default_factory=asyncio.Event)
    all_delivered: asyncio.Event = field(default_factory=asyncio.Event)

    def job(self, store: str, job: dict[str, Any]) -> None:
        """A job frame reached ``store``'s client (``cluster_load.py`` also checks its id)."""
        self.add(float(job["doc"]["note"][2:]))

    def add(self, sent_at: float) -> None:
        now = time.time()
        self.delivered += 1
        if self.window[0] <= now <= self.window[1] + 30:
            self.latencies.append(now - sent_at)
        if self.delivered == self.target:
            self.all_delivered.set()

    def up(self, ok: bool = True) -> None:
        if ok:
            self.connected += 1
        else:
            self.failed += 1
        if self.connected + self.failed == self.clients:
            self.all_connected.set()

    def expect(self, total: int) -> None:
        self.target = total
        if self.delivered >= total:
            self.all_delivered.set()

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        pct = (
            (lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1))
            if lat
            else (lambda p: None)
        )
        return {
            "delivered": self.delivered,
            "delivered_per_s": round(self.delivered / seconds, 1),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "errors": self.errors,
            "connect_failed": self.failed,
            "closes": self.closed,
        }


def order(store: str, n: int) -> dict[str, Any]:
    return {
        "store_id": store,
        "channel": "pos",
        "external_id": f"bench-{n}",
        "service": "takeout",
        "pickup_code": str(n % 1000),
        "placed_at": "2026-11-21T12:03:00+08:00",
        "note": f"t={time.time():.6f}",
        "items": [
            {
                "line_id": "1",
                "sku": "B01",
                "name": "Double cheeseburger",
                "qty": 2,
                "category": "burgers",
                "modifiers": ["no onion"],
            },
            {"line_id": "2", "sku": "N07", "name": "宫保鸡丁", "qty": 1, "category": "mains"},
            {
                "line_id": "3",
                "sku": "D02",
                "name": "Iced lemon tea",
                "qty": 2,
                "category": "drinks",
            },
        ],
    }


CONFIG = {
    "name": "Bench store",
    "printers": [
        {"printer_id": "kitchen", "name": "Hot line", "transport": "tcp://127.0.0.1:9100"},
        {"printer_id": "bar", "name": "Bar", "transport": "tcp://127.0.0.1:9102", "width_mm": 58},
        {"printer_id": "receipt", "name": "Front", "transport": "tcp://127.0.0.1:9104"},
    ],
    "stations": [
        {
            "station_id": "grill",
            "name": "Grill",
            "categories": ["burgers", "mains"],
            "printer": "kitchen",
        },
        {"station_id": "bar", "name": "Bar", "categories": ["drinks"], "printer": "bar"},
    ],
    "receipt_printer": "receipt",
}


async def start(
    cmd: list[str], env: dict[str, str], stderr: Any = None
) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = (await proc.stdout.readline()).decode()
    if "listening" not in line:
        raise RuntimeError(f"{cmd[0:4]} did not start: {line!r}")
    return proc, line


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client: httpx costs the generator more CPU than the
    broker spends on a submit, which would make the generator the bottleneck."""

    def __init__(self, base: str, tok: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.addr = (host, int(port))
        self.auth = f"Authorization: Bearer {tok}\r\n".encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """POST ``body`` as JSON: the status and the response body."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(*self.addr)
        reader, writer = self.streams
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
        ).encode()
        writer.write(head + self.auth + b"\r\n" + data)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, await reader.readexactly(length)


def quiet_gc() -> None:
    """Freeze the load generator's own heap once its clients are connected. With 10,000
    client links in this process, its full collections held this loop up to 0.6 s while
    deliveries waited unread: that was counted as the broker's latency (2026-11-30)."""
    gc.collect()
    gc.freeze()


async def settle(http: str, quiet_s: float = 1.0, limit_s: float = 120.0) -> None:
    """Wait until the broker's storage is idle: no new commits, the WAL checkpointed."""
    last, quiet_since, t0 = -1.0, time.monotonic(), time.monotonic()
    async with httpx.AsyncClient(base_url=http) as c:
        while time.monotonic() - t0 < limit_s:
            stats = {}
            for line in (await c.get("/metrics")).text.splitlines():
                if line.startswith("passline_storage_writer{"):
                    stats[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
            commits = stats.get("commits", 0.0)
            if commits != last:
                last, quiet_since = commits, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s and not stats.get("wal_pending"):
                return
            await asyncio.sleep(0.2)


# -- broker run ----------------------------------------------------------------------------
async def configure(
    http: str, stores: list[str], concurrency: int = 64, config: dict[str, Any] | None = None
) -> None:
    """``PUT /v1/stores/{id}/config`` with ``config`` (default ``CONFIG``) for every store."""
    hq = issue_token(SECRET, "hq")
    async with httpx.AsyncClient(
        base_url=http, headers={"Authorization": f"Bearer {hq}"}, timeout=60
    ) as c:
        sem = asyncio.Semaphore(concurrency)

        async def put(s: str) -> None:
            async with sem:
                r = await c.put(f"/v1/stores/{s}/config", json=config or CONFIG)
                r.raise_for_status()

        await asyncio.gather(*(put(s) for s in stores))


async def store_client(url: str, store: str, stats: Stats, ready: asyncio.Semaphore) -> None:
    tok = issue_token(SECRET, "store", store=store)
    hello = {
        "type": "hello",
        "store_id": store,
        "client_version": "bench",
        "protocol": 1,
        "resume": None,
    }
    try:
        async with ready:
            ws = await connect(
                url,
                subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Bearer {tok}"},
                open_timeout=60,
                compression=None,
                ping_interval=None,
            )
            await ws.send(msgpack.packb(hello))
            await ws.recv()
    except (OSError, TimeoutError, ConnectionClosed, InvalidStatus):
        stats.up(ok=False)
        return
    stats.live.append(store)
    stats.up()
    try:
        async for frame in ws:
            msg = msgpack.unpackb(frame)
            if msg["type"] == "job":
                stats.job(store, msg["job"])
                await ws.send(msgpack.packb({"type": "ack", "offset": msg["offset"]}))
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else 1006
        stats.closed[code] = stats.closed.get(code, 0) + 1


Reply = Callable[[int, dict[str, Any], float, int, bytes], None]


async def submit(
    https: list[str],
    make: Callable[[int], dict[str, Any]],
    on_reply: Reply,
    *,
    rate: float = 0.0,
    duration: float = 0.0,
    total: int = 0,
    workers: int = 32,
    path: str = "/v1/orders",
) -> tuple[int, int]:
    """Orders round-robin over the nodes: ``rate``/s for ``duration`` s, a full queue sheds
    (the nodes are not keeping up); or, with no rate, ``total`` as fast as they answer.
    ``path`` is where they are POSTed (``compare.py``'s socket.io peer takes ``/orders``).
    Returns (offered, shed)."""
    tok = issue_token(SECRET, "ingest")
    queues = [asyncio.Queue[dict[str, Any]](maxsize=workers * 4) for _ in https]

    async def worker(i: int) -> None:
        client = RawHttp(https[i], tok)
        while True:
            body = await queues[i].get()
            sent = time.time()
            body["note"] = f"t={sent:.6f}"
            try:
                status, raw = await client.request(path, body)
            except (OSError, EOFError, IndexError, ValueError) as exc:
                if client.streams is not None:
                    client.streams[1].close()
                client.streams = None
                status, raw = 0, repr(exc).encode()
            on_reply(i, body, sent, status, raw)
            queues[i].task_done()

    offered = shed = 0
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(worker(i)) for i in range(len(https)) for _ in range(workers)]
        t0 = time.monotonic()
        while (rate and time.monotonic() - t0 < duration) or (not rate and offered < total):
            due = int((time.monotonic() - t0) * rate) - offered if rate else total - offered
            for _ in range(due):
                q = queues[offered % len(https)]
                if not rate:
                    await q.put(make(offered))
                elif q.full():
                    shed += 1
                else:
                    q.put_nowait(make(offered))
                offered += 1
            await asyncio.sleep(0.005)
        for q in queues:
            await q.join()
        for t in tasks:
            t.cancel()
    return offered, shed


async def submitter(
    http: str, stores: list[str], rate: float, duration: float, stats: Stats, workers: int = 256
) -> int:
    """``rate`` orders/s to random stores for ``duration`` s; refusals, errors and orders the
    generator could not send in time (shed) all count as ``stats.errors``."""

    def reply(_: int, __: dict[str, Any], ___: float, status: int, ____: bytes) -> None:
        if status != 202:
            stats.errors += 1

    def make(n: int) -> dict[str, Any]:
        return order(random.choice(stores), n)

    sent, shed = await submit([http], make, reply, rate=rate, duration=duration, workers=workers)
    stats.errors += shed
    return sent


async def run_broker(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="passline-bench-"))
    store_url = "memory://" if args.store == "memory" else f"sqlite:///{tmp / 'bench.db'}"
    if args.store == "sqlite-normal":
        store_url += "?synchronous=normal"
    toml = tmp / "broker.toml"
    toml.write_text(
        f'[broker]\nhttp = "127.0.0.1:0"\nws = "127.0.0.1:0"\nstore = "{store_url}"\n'
        'hello_rate = 0.0\ningest_rate = 0.0\nlog_level = "warning"\nping_interval = 60.0\n'
        "ws_max_per_address = 0\n"  # every simulated store connects from 127.0.0.1
    )
    env = {**os.environ, "PASSLINE_SECRET": SECRET}
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    cmd = [sys.executable, *profile, "-m", "passline", "broker", "--config", str(toml)]
    proc, line = await start(cmd, env)
    http = "http://127.0.0.1:" + HTTP.search(line).group(2)  # type: ignore[union-attr]
    ws = "ws://127.0.0.1:" + LISTEN.search(line).group(2) + "/v1/ws/store"  # type: ignore[union-attr]
    stores = [f"s-{i:05d}" for i in range(args.clients)]
    stats = Stats(clients=args.clients)
    try:
        await configure(http, stores)
        ready = asyncio.Semaphore(CONNECT_CONCURRENCY)
        t_conn = time.monotonic()
        clients = [asyncio.create_task(store_client(ws, s, stats, ready)) for s in stores]
        async with asyncio.timeout(600):
            await stats.all_connected.wait()
        connect_s = time.monotonic() - t_conn
        quiet_gc()
        await settle(http)  # measure the steady state, not the tail of the connect storm
        rss_idle = rss_mb(proc.pid)
        cpu0 = cpu_s(proc.pid)
        stats.window = (time.time(), time.time() + args.duration)
        t0 = time.monotonic()
        sent = await submitter(http, stats.live, args.rate, args.duration, stats)
        stats.expect(3 * (sent - stats.errors))
        async with asyncio.timeout(60):
            await stats.all_delivered.wait()
        elapsed = time.monotonic() - t0
        cpu = cpu_s(proc.pid) - cpu0
        out = stats.summary(elapsed)
        out.update(
            system="broker",
            store=args.store,
            clients=args.clients,
            orders_per_s=args.rate,
            orders=sent,
            seconds=round(elapsed, 1),
            connect_s=round(connect_s, 1),
            rss_idle_mb=rss_idle,
            rss_end_mb=rss_mb(proc.pid),
            broker_cpu_pct=round(100 * cpu / elapsed, 1),
            kib_per_connection=round(rss_idle * 1024 / args.clients, 1),
        )
        async with httpx.AsyncClient(base_url=http) as c:
            metrics = (await c.get("/metrics")).text
        for line in metrics.splitlines():
            if line.startswith("passline_storage_writer{"):
                key = line.split('"')[1]
                out[f"writer_{key}"] = round(float(line.rsplit(" ", 1)[1]), 3)
        for c in clients:
            c.cancel()
        return out
    finally:
        proc.terminate()
        await proc.wait()


# -- relay run -----------------------------------------------------------------------------
async def relay_client(url: str, name: str, stats: Stats, ready: asyncio.Semaphore) -> None:
    try:
        async with ready:
            ws = await connect(
                f"{url}/sub/{name}", open_timeout=60, compression=None, ping_interval=None
            )
    except (OSError, TimeoutError, ConnectionClosed, InvalidStatus):
        stats.up(ok=False)
        return
    stats.up()
    try:
        async for frame in ws:
            stats.add(json.loads(frame)["t"])
            await ws.send(b"ack")  # the same upstream traffic as a store client's ack
    except ConnectionClosed:
        pass


async def run_relay(args: argparse.Namespace, msgs_per_s: float) -> dict[str, Any]:
    proc, line = await start(
        [sys.executable, str(ROOT / "bench" / "relay_baseline.py")], dict(os.environ)
    )
    url = "ws://127.0.0.1:" + LISTEN.search(line).group(2)  # type: ignore[union-attr]
    names = [f"c{i}" for i in range(args.clients)]
    stats = Stats(clients=args.clients)
    pad = "x" * 1100  # about a job frame's size
    try:
        ready = asyncio.Semaphore(CONNECT_CONCURRENCY)
        clients = [asyncio.create_task(relay_client(url, n, stats, ready)) for n in names]
        async with asyncio.timeout(600):
            await stats.all_connected.wait()
        quiet_gc()
        await asyncio.sleep(1.0)
        rss_idle = rss_mb(proc.pid)
        pub = await connect(f"{url}/pub", compression=None, ping_interval=None, max_size=2**20)
        stats.window = (time.time(), time.time() + args.duration)
        cpu0, t0, sent = cpu_s(proc.pid), time.monotonic(), 0
        while (elapsed := time.monotonic() - t0) < args.duration:
            for _ in range(int(elapsed * msgs_per_s) - sent):
                await pub.send(
                    json.dumps({"to": random.choice(names), "t": time.time(), "pad": pad})
                )
                sent += 1
            await asyncio.sleep(0.005)
        stats.expect(sent)
        async with asyncio.timeout(60):
            await stats.all_delivered.wait()
        elapsed = time.monotonic() - t0
        out = stats.summary(elapsed)
        out.update(
            system="relay",
            clients=args.clients,
            msgs=sent,
            seconds=round(elapsed, 1),
            rss_idle_mb=rss_idle,
            relay_cpu_pct=round(100 * (cpu_s(proc.pid) - cpu0) / elapsed, 1),
            kib_per_connection=round(rss_idle * 1024 / args.clients, 1),
        )
        for c in clients:
            c.cancel()
        await pub.close()
        return out
    finally:
        proc.terminate()
        await proc.wait()


async def main(args: argparse.Namespace) -> None:
    results = []
    if not args.relay_only:
        results.append(await run_broker(args))
        print(json.dumps(results[-1]), flush=True)
    if not args.no_relay:
        results.append(await run_relay(args, 3 * args.rate))
        print(json.dumps(results[-1]), flush=True)
    if len(results) == 2:
        b, r = results
        print(
            json.dumps(
                {
                    "ratio_delivered": round(b["delivered_per_s"] / r["delivered_per_s"], 3),
                    "ratio_p50": round(b["p50_ms"] / r["p50_ms"], 1)
                    if b["p50_ms"] and r["p50_ms"]
                    else None,
                    "ratio_p99": round(b["p99_ms"] / r["p99_ms"], 1)
                    if b["p99_ms"] and r["p99_ms"]
                    else None,
                }
            ),
            flush=True,
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = f"broker_load-{args.store}-{args.clients}-{args.rate}-{int(time.time())}.json"
    (out / name).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=1000, help="simulated store clients (N)")
    p.add_argument("--rate", type=float, default=200, help="orders per second (M); 3 jobs each")
    p.add_argument("--duration", type=float, default=20, help="seconds of load")
    p.add_argument("--store", choices=["sqlite", "sqlite-normal", "memory"], default="sqlite")
    p.add_argument("--no-relay", action="store_true", help="skip the bare relay baseline")
    p.add_argument("--relay-only", action="store_true")
    p.add_argument("--profile", help="run the broker under cProfile, writing stats to this file")
    import uvloop

    uvloop.run(main(p.parse_args()))
