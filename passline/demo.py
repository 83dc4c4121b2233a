"""``passline demo``: a whole store on one box (DESIGN.md §5.6). Wiring only.

An embedded broker (SQLite in ``--data``), three emulated printers, a store client, an
order generator with a lunch-rush rhythm, and an occasional printer fault. It prints the
URLs of the screens and a live one-line summary until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from broker.app import Broker, start_broker
from broker.auth import issue_token
from broker.config import Settings
from passline import demo_data as data
from passline.runtime import host_timezone
from printer_drivers.emulator import PrinterEmulator
from protocol.timezones import DEFAULT_TIMEZONE
from store_client.daemon import ClientSettings, StoreClient

FAULT_EVERY_S = (60.0, 120.0)
FAULT_LASTS_S = 20.0


@dataclass
class DemoOptions:
    host: str = "127.0.0.1"
    port_http: int = 8080
    port_ws: int = 8765
    data_dir: Path = Path(".passline-demo")
    seed: int | None = None
    rate: float = 1.0
    """Multiplies the generator's orders per minute."""


@dataclass
class Counters:
    orders: int = 0
    amended: int = 0
    cancelled: int = 0
    refused: int = 0
    faults: int = 0
    fault_now: str = ""


class Demo:
    def __init__(self, options: DemoOptions, out: TextIO = sys.stdout) -> None:
        self.o = options
        self.out = out
        self.secret = secrets.token_urlsafe(32)  # made for this run only (DESIGN.md §6)
        self.rng = random.Random(options.seed)
        self.run_id = time.strftime("%H%M%S")
        self.counters = Counters()
        self.printers: dict[str, PrinterEmulator] = {}
        self.broker: Broker | None = None
        self.recent: list[tuple[str, dict[str, Any]]] = []
        self.timezone = host_timezone() or DEFAULT_TIMEZONE
        """The demo store is where this machine is: chits and screens show its time."""

    def token(self, scope: str, **kw: Any) -> str:
        return issue_token(self.secret, scope, ttl_s=7 * 86400, **kw)

    async def run(self, started: Callable[[Demo], None] | None = None) -> None:
        receipts = self.o.data_dir / "receipts"
        receipts.mkdir(parents=True, exist_ok=True)
        async with (
            PrinterEmulator(name="kitchen", out_dir=receipts) as kitchen,
            PrinterEmulator(name="bar", out_dir=receipts, width_mm=58) as bar,
            PrinterEmulator(name="receipt", out_dir=receipts) as front,
            start_broker(self._broker_settings()) as broker,
        ):
            self.printers = {"kitchen": kitchen, "bar": bar, "receipt": front}
            self.broker = broker
            await self._configure_store()
            client = StoreClient(self._client_settings())
            async with asyncio.TaskGroup() as tg:
                ready = asyncio.Event()
                tg.create_task(client.run(ready))
                await ready.wait()
                self._print_urls()
                if started is not None:
                    started(self)
                tg.create_task(self._generate())
                tg.create_task(self._faults())
                tg.create_task(self._summary())

    # -- setup ---------------------------------------------------------------------------

    def _broker_settings(self) -> Settings:
        return Settings(
            http=f"{self.o.host}:{self.o.port_http}",
            ws=f"{self.o.host}:{self.o.port_ws}",
            store=f"sqlite:///{(self.o.data_dir / 'broker.db').resolve()}",
            secret=self.secret,
            default_timezone=self.timezone,
            log_level="warning",
        )

    def _client_settings(self) -> ClientSettings:
        return ClientSettings(
            broker=self.ws_url,
            store_id=data.STORE_ID,
            token=self.token("store", store=data.STORE_ID),
            spool_dir=self.o.data_dir / "spool",
            status_port=0,
        )

    @property
    def http_url(self) -> str:
        assert self.broker is not None
        return f"http://{self._public_host()}:{self.broker.http_port}"

    @property
    def ws_url(self) -> str:
        assert self.broker is not None
        return f"ws://{self._public_host()}:{self.broker.ws_port}"

    def _public_host(self) -> str:
        return "127.0.0.1" if self.o.host in ("0.0.0.0", "") else self.o.host

    def api(self, scope: str = "hq") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token(scope)}"}
        return httpx.AsyncClient(base_url=self.http_url, headers=headers, timeout=10)

    async def _configure_store(self) -> None:
        ports = {name: emu.port for name, emu in self.printers.items()}
        async with self.api() as http:
            r = await http.put(f"/v1/stores/{data.STORE_ID}/config", json=data.store_config(ports))
            r.raise_for_status()

    def urls(self) -> dict[str, str]:
        """The screens' links; they learn the ws port from the broker (DESIGN.md §8.4)."""
        kds = self.token("kds", store=data.STORE_ID)
        base = self.http_url
        urls = {
            f"KDS {s['station_id']}": f"{base}/kds/?store={data.STORE_ID}&station={s['station_id']}"
            f"&token={kds}"
            for s in data.STATIONS
            if not s.get("expo")
        }
        urls["Expo"] = f"{base}/kds/expo/?store={data.STORE_ID}&station=expo&token={kds}"
        board = self.token("board", store=data.STORE_ID)
        urls["Board"] = f"{base}/board/?store={data.STORE_ID}&token={board}"
        urls["HQ"] = f"{base}/hq/?token={self.token('hq')}"
        urls["API docs"] = f"{base}/docs"
        return urls

    def _print_urls(self) -> None:
        w = self.out.write
        w(f"passline demo: store {data.STORE_ID!r} with 3 emulated printers\n")
        for name, url in self.urls().items():
            w(f"  {name:<10} {url}\n")
        w(f"  {'API token':<10} {self.token('hq')}  (scope hq, for /docs and curl)\n")
        w(f"  {'Store time':<10} {self.timezone} (this machine's zone)\n")
        w(f"  {'Receipts':<10} {(self.o.data_dir / 'receipts').resolve()}/\n")
        w(f"  {'Run info':<10} {self._write_run_info()}\n")
        w("Ctrl-C stops everything.\n")
        self.out.flush()

    def _write_run_info(self) -> Path:
        """URLs and tokens of this run, for scripts and integrators trying the API."""
        path = (self.o.data_dir / "demo.json").resolve()
        info = {
            "http": self.http_url,
            "ws": self.ws_url,
            "store_id": data.STORE_ID,
            "tokens": {
                "hq": self.token("hq"),
                "ingest": self.token("ingest"),
                "kds": self.token("kds", store=data.STORE_ID),
            },
            "urls": self.urls(),
        }
        write_private(path, json.dumps(info, indent=2) + "\n")
        return path

    # -- the lunch rush ----------------------------------------------------------------

    async def _generate(self) -> None:
        t0 = time.monotonic()
        async with self.api("ingest") as http:
            n = 0
            while True:
                per_min = data.orders_per_minute(time.monotonic() - t0) * self.o.rate
                await asyncio.sleep(self.rng.expovariate(per_min / 60))
                n += 1
                await self._one_order(http, n)

    async def _one_order(self, http: httpx.AsyncClient, n: int) -> None:
        order = data.make_order(self.rng, n)
        order["external_id"] += f"-{self.run_id}"
        r = await http.post("/v1/orders", json=order)
        if r.status_code not in (200, 202):
            self.counters.refused += 1
            return
        self.counters.orders += 1
        self.recent = [*self.recent[-20:], (r.json()["order_id"], order)]
        roll = self.rng.random()
        if roll < 0.08 and len(self.recent) > 3:
            order_id, original = self.rng.choice(self.recent[:-1])
            amend = data.make_amendment(self.rng, original)
            if (await http.post(f"/v1/orders/{order_id}/amend", json=amend)).status_code == 200:
                self.counters.amended += 1
        elif roll < 0.11 and len(self.recent) > 3:
            order_id, _ = self.recent.pop(0)
            body = {"reason": "customer left"}
            if (await http.post(f"/v1/orders/{order_id}/cancel", json=body)).status_code == 200:
                self.counters.cancelled += 1

    async def _faults(self) -> None:
        faults = [("kitchen", {"paper": "out"}, {"paper": "ok"}),
                  ("bar", {"cover_open": True}, {"cover_open": False}),
                  ("kitchen", {"paper": "near_end"}, {"paper": "ok"})]  # fmt: skip
        while True:
            await asyncio.sleep(self.rng.uniform(*FAULT_EVERY_S))
            printer, fault, fix = self.rng.choice(faults)
            self.counters.faults += 1
            self.counters.fault_now = f"{printer} {next(iter(fault))}"
            await self.printers[printer].set_state(**fault)
            await asyncio.sleep(FAULT_LASTS_S)
            await self.printers[printer].set_state(**fix)
            self.counters.fault_now = ""

    async def _summary(self) -> None:
        tty = self.out.isatty()
        last = 0.0
        while True:
            await asyncio.sleep(1.0)
            line = self.summary_line(await self._held())
            if tty:
                self.out.write("\r" + line.ljust(100))
            elif time.monotonic() - last >= 10:
                self.out.write(line + "\n")
                last = time.monotonic()
            self.out.flush()

    async def _held(self) -> int:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            async with self.api() as http:
                r = await http.get(f"/v1/stores/{data.STORE_ID}")
                return int(r.json()["held"])
        return -1

    def summary_line(self, held: int) -> str:
        c = self.counters
        printed = sum(len(p.receipts) for p in self.printers.values())
        fault = f"  FAULT: {c.fault_now}" if c.fault_now else ""
        return (
            f"orders {c.orders}  amended {c.amended}  cancelled {c.cancelled}  "
            f"printed {printed}  held {held}  faults {c.faults}{fault}"
        )


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, from its first byte (it holds tokens): a new
    file is made with mode 0600 (a umask can only narrow that), then renamed over the old
    one, so an old world-readable file is replaced rather than rewritten in place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
