"""Store client figures (issue #5; results in docs/benchmarks.md).

1. Idle: RSS and CPU of a linked ``passline store-client`` with three idle printers,
   sampled for ``--idle-seconds`` (5 minutes by default).
2. Latency at a steady rate: orders submitted over REST at ``--rate`` per second; for each
   kitchen chit, the time from the submit call to the chit being cut on the emulated
   printer (receipt → printer bytes), as p50/p99. The baseline in the same run is the floor
   of that path: the same rendered bytes written straight to the emulator over TCP.
3. Paper out on a printer to the ``printer_status`` delta on an HQ socket (and back), the
   path HQ's dashboard depends on, ``--status-rounds`` times each way.

The broker and the store client run as subprocesses (``passline broker``, ``passline
store-client``); the emulators and the load generator run in this process.

    .venv/bin/python bench/store_client.py --idle-seconds 300 --rate 10 --seconds 60
    .venv/bin/python bench/store_client.py --idle-seconds 300 --skip-latency   # part 1 only
    .venv/bin/python bench/store_client.py --imports   # RSS of each import step, no run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from broker.auth import issue_token  # noqa: E402
from printer_drivers import RenderProfile, render  # noqa: E402
from printer_drivers.emulator import PrinterEmulator  # noqa: E402
from protocol.config import PrinterConfig  # noqa: E402
from protocol.jobs import DocLine, TicketDoc  # noqa: E402

SECRET = "bench-secret-" + "y" * 40
STORE = "s-bench"
PORTS = re.compile(r"http=\S*:(\d+).*ws=\S*:(\d+)")


class TimedEmulator(PrinterEmulator):
    """Records when each chit is cut, keyed by its pickup code."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.cut_at: dict[str, float] = {}

    def _on_receipt(self, receipt: Any) -> None:
        now = time.monotonic()
        match = re.search(r"#(B\d+)", receipt.text)
        if match:
            self.cut_at.setdefault(match.group(1), now)
        super()._on_receipt(receipt)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(ports: dict[str, int]) -> dict[str, Any]:
    def printer(pid: str, name: str) -> dict[str, Any]:
        return {"printer_id": pid, "name": name, "transport": f"tcp://127.0.0.1:{ports[pid]}"}

    return {
        "name": "Bench House",
        "printers": [
            printer("kitchen", "Kitchen"),
            printer("bar", "Bar"),
            printer("receipt", "Front"),
        ],
        "stations": [
            {
                "station_id": "grill",
                "name": "Grill",
                "categories": ["burgers"],
                "printer": "kitchen",
            },
            {"station_id": "bar", "name": "Bar", "categories": ["drinks"], "printer": "bar"},
        ],
        "receipt_printer": "receipt",
    }


def order(n: int) -> dict[str, Any]:
    return {
        "store_id": STORE, "channel": "pos", "external_id": f"B-{n}", "service": "takeout",
        "pickup_code": f"B{n}", "placed_at": "2026-11-21T12:00:00+08:00",
        "items": [{"line_id": "1", "sku": "B1", "name": "Cheeseburger", "qty": 2,
                   "category": "burgers", "modifiers": ["no onion"], "allergens": ["gluten"]}],
    }  # fmt: skip


async def start_broker(tmp: Path) -> tuple[asyncio.subprocess.Process, int, int]:
    env = {**os.environ, "PASSLINE_SECRET": SECRET}
    cmd = [sys.executable, "-m", "passline", "broker", "--http", "127.0.0.1:0", "--ws",
           "127.0.0.1:0", "--store", f"sqlite:///{tmp / 'broker.db'}"]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=tmp, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = (await proc.stdout.readline()).decode()
    found = PORTS.search(line)
    if not found:
        raise RuntimeError(f"broker did not start: {line!r}")
    return proc, int(found.group(1)), int(found.group(2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_client(tmp: Path, ws_port: int) -> asyncio.subprocess.Process:
    """The daemon as a store runs it: its local status page is on (the default), idle."""
    env = {**os.environ, "PASSLINE_TOKEN": issue_token(SECRET, "store", store=STORE)}
    cmd = [sys.executable, "-m", "passline", "store-client", "--broker", f"ws://127.0.0.1:{ws_port}",
           "--store", STORE, "--spool", str(tmp / "spool"), "--status-port", str(free_port()),
           "--log-level", "warning"]  # fmt: skip
    return await asyncio.create_subprocess_exec(*cmd, cwd=tmp, env=env)


async def wait_printers_polled(emus: dict[str, TimedEmulator], within: float = 30) -> None:
    async with asyncio.timeout(within):
        while not all(e.sessions for e in emus.values()):
            await asyncio.sleep(0.1)


async def idle(pid: int, seconds: float) -> dict[str, Any]:
    """RSS every few seconds (min/max/first/last show creep) and CPU over ``seconds``."""
    samples, cpu0, t0 = [], cpu_s(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        samples.append(rss_mb(pid))
        await asyncio.sleep(min(5.0, seconds / 10))
    samples.append(rss_mb(pid))
    cpu = cpu_s(pid) - cpu0
    elapsed = time.monotonic() - t0
    return {
        "seconds": round(elapsed),
        "samples": len(samples),
        "rss_mb_first": round(samples[0], 1),
        "rss_mb_last": round(samples[-1], 1),
        "rss_mb_min": round(min(samples), 1),
        "rss_mb_max": round(max(samples), 1),
        "rss_mb_mean": round(statistics.mean(samples), 1),
        **rss_split_mb(pid),
        "cpu_percent": round(100 * cpu / elapsed, 2),
    }


def rss_split_mb(pid: int) -> dict[str, float]:
    """Heap (anonymous) versus mapped files (interpreter, extension modules) at the end."""
    split = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem"):
            split[f"{key.lower()}_mb"] = round(int(value.split()[0]) / 1024, 1)
    return split


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def steady(http: str, emu: TimedEmulator, rate: float, seconds: float) -> dict[str, Any]:
    sent: dict[str, float] = {}
    tok = issue_token(SECRET, "ingest")
    async with httpx.AsyncClient(base_url=http, headers={"Authorization": f"Bearer {tok}"}) as c:
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            due = t0 + n / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            sent[f"B{n}"] = time.monotonic()
            r = await c.post("/v1/orders", json=order(n))
            r.raise_for_status()
            n += 1
    async with asyncio.timeout(60):
        while len(emu.cut_at) < len(sent):
            await asyncio.sleep(0.1)
    lat = [1000 * (emu.cut_at[k] - t) for k, t in sent.items()]
    return summary(lat, orders=len(sent), rate=rate)


def summary(lat: list[float], **extra: Any) -> dict[str, Any]:
    return {**extra, "p50_ms": round(pct(lat, 0.5), 1), "p99_ms": round(pct(lat, 0.99), 1),
            "max_ms": round(max(lat), 1)}  # fmt: skip


async def baseline(emu: TimedEmulator, count: int) -> dict[str, Any]:
    """The floor: rendered chits written straight to the emulator, one at a time."""
    profile = RenderProfile.from_config(
        PrinterConfig(printer_id="k", name="K", transport=f"tcp://127.0.0.1:{emu.port}")
    )
    lat = []
    for n in range(count):
        key = f"B{900000 + n}"
        doc = TicketDoc(template="kitchen", station="Grill", order_ref=key, channel="pos",
                        service="takeout", placed_at="2026-11-21T12:00:00+08:00",
                        lines=(DocLine(qty=2, name="Cheeseburger", modifiers=("no onion",)),))  # fmt: skip
        t = time.monotonic()
        data = render(doc, profile)
        _, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            while key not in emu.cut_at:
                await asyncio.sleep(0.0005)
        lat.append(1000 * (emu.cut_at[key] - t))
        writer.close()
    return summary(lat, chits=count)


async def status_to_hq(ws_port: int, emu: TimedEmulator, rounds: int) -> dict[str, Any]:
    """Paper out on a printer -> ``printer_status`` on an HQ socket, and back."""
    from websockets.asyncio.client import connect

    lat = []
    async with connect(
        f"ws://127.0.0.1:{ws_port}/v1/ws/hq", subprotocols=["passline.v1.json"]
    ) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "token": issue_token(SECRET, "hq")}))
        await ws.recv()  # fleet
        for n in range(2 * rounds):
            paper = "out" if n % 2 == 0 else "ok"
            t = time.monotonic()
            await emu.set_state(paper=paper)
            async with asyncio.timeout(30):
                while True:
                    msg = json.loads(await ws.recv())
                    if msg["type"] == "printer_status" and msg["status"]["paper"] == paper:
                        break
            lat.append(1000 * (time.monotonic() - t))
    return summary(lat, changes=len(lat))


#: What ``passline store-client`` imports, in its order: (label, modules). Each step's RSS is
#: measured in one fresh interpreter, so a step's cost excludes what earlier ones loaded.
IMPORT_STEPS = [
    ("asyncio (ssl/OpenSSL, concurrent.futures, subprocess)", ["asyncio"]),
    ("sqlite3, logging, json", ["sqlite3", "logging", "json"]),
    ("click", ["click"]),
    ("store_client.lean: defer importlib.metadata and urllib.request", ["store_client.lean:defer"]),
    ("websockets client", ["websockets.asyncio.client"]),
    ("msgpack", ["msgpack"]),
    ("pydantic_core", ["pydantic_core"]),
    ("pydantic (main, fields, types, json_schema)", ["pydantic.main", "pydantic.types"]),
    ("protocol (all models, channel adapters)", ["protocol", "protocol.messages.store"]),
    ("store_client spool, link", ["store_client.spool", "store_client.link"]),
    ("printer_drivers (escpos constants only)", ["printer_drivers"]),
    ("store_client daemon, worker, status page; CLI", ["store_client.daemon",
     "store_client.status_page", "passline.cli", "passline.cmd_store_client", "passline.runtime"]),
    ("-- not imported by the daemon: uvloop", ["uvloop"]),
    ("-- deferred until used: importlib.metadata, urllib.request (email, zipfile …)",
     ["importlib.metadata:load", "urllib.request:load"]),
    ("-- escpos.capabilities (PyYAML, importlib_resources)", ["escpos.capabilities"]),
    ("-- escpos.printer (Pillow, qrcode, python-barcode)", ["escpos.printer"]),
]  # fmt: skip

_IMPORT_PROBE = """
import gc, importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
rows, before = [("python startup", rss())], rss()
for label, modules in json.loads(sys.argv[1]):
    for name in modules:
        module, _, call = name.partition(":")
        loaded = importlib.import_module(module)
        if call:
            getattr(loaded, call)()
    gc.collect()
    rows.append((label, rss() - before))
    before = rss()
print(json.dumps(rows))
"""


def import_costs() -> list[tuple[str, float]]:
    """RSS each step of the store client's imports adds, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, json.dumps(IMPORT_STEPS)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [(label, round(mb, 1)) for label, mb in json.loads(out.stdout)]


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="passline-bench-sc-"))
    async with (
        TimedEmulator(name="kitchen") as kitchen,
        TimedEmulator(name="bar") as bar,
        TimedEmulator(name="receipt") as front,
    ):
        emus = {"kitchen": kitchen, "bar": bar, "receipt": front}
        broker, http_port, ws_port = await start_broker(tmp)
        http = f"http://127.0.0.1:{http_port}"
        hq = issue_token(SECRET, "hq")
        async with httpx.AsyncClient(base_url=http, headers={"Authorization": f"Bearer {hq}"}) as c:
            r = await c.put(
                f"/v1/stores/{STORE}/config", json=config({k: e.port for k, e in emus.items()})
            )
            r.raise_for_status()
        client = await start_client(tmp, ws_port)
        try:
            await wait_printers_polled(emus)
            result: dict[str, Any] = {"idle": await idle(client.pid, args.idle_seconds)}
            if args.skip_latency:
                print(json.dumps(result, indent=2))
                return
            result["steady"] = await steady(http, kitchen, args.rate, args.seconds)
            result["steady"]["rss_mb_after"] = round(rss_mb(client.pid), 1)
            result["paper_status_to_hq"] = await status_to_hq(ws_port, bar, args.status_rounds)
            async with TimedEmulator(name="direct") as direct:  # printers take one session
                result["baseline_direct_tcp"] = await baseline(direct, 50)
            result["p50_ratio_vs_baseline"] = round(
                result["steady"]["p50_ms"] / max(result["baseline_direct_tcp"]["p50_ms"], 0.001), 1
            )
            print(json.dumps(result, indent=2))
        finally:
            for proc in (client, broker):
                proc.terminate()
                await proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--status-rounds", type=int, default=10)
    parser.add_argument(
        "--skip-latency", action="store_true", help="measure only the idle footprint (part 1)"
    )
    parser.add_argument(
        "--imports", action="store_true", help="only print what each import step costs in RSS"
    )
    arguments = parser.parse_args()
    if arguments.imports:
        for label, mb in import_costs():
            print(f"{mb:6.1f} MB  {label}")
    else:
        asyncio.run(main(arguments))
