"""A whole store on one machine: real broker, real store client, emulated printers.

Everything talks over real sockets on 127.0.0.1. The store client runs in-process (as
``StoreClient``) or as a ``passline store-client`` subprocess when a test must kill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from broker.app import Broker, start_broker
from broker.clock import Now, system_now
from printer_drivers.emulator import PrinterEmulator
from store_client.daemon import ClientSettings, StoreClient
from store_client.worker import WorkerSettings
from tests.broker.conftest import test_settings
from tests.broker.helpers import token

ROOT = Path(__file__).resolve().parents[2]
STORE = "s-e2e"
FAST_WORKERS = WorkerSettings(
    idle_poll_s=0.5, held_poll_s=0.2, heartbeat_s=30, connect_timeout_s=2, barrier_timeout_s=3
)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = ""
) -> None:
    """Poll ``check`` until true; ``within`` only guards against hanging, it is no SLA."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within}s: {what}")


def assert_each_once_in_order(found: list[str], expected: list[str]) -> None:
    """``found[i]`` carries ``expected[i]``: everything printed once, in submit order."""
    assert len(found) == len(expected), (len(found), len(expected))
    for text, marker in zip(found, expected, strict=True):
        assert re.search(rf"(?<![\w]){re.escape(marker)}(?![\w])", text), (marker, text)


def stable_port() -> int:
    """A free port below the kernel's ephemeral range.

    The broker is restarted on the same ports in some tests; a port from the ephemeral
    range may meanwhile be the local end of one of the many client connections the test
    makes, and then the restarted broker cannot bind it.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(10000, low - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def store_config(printers: dict[str, PrinterEmulator], **extra: Any) -> dict[str, Any]:
    def tcp(name: str) -> str:
        return f"tcp://127.0.0.1:{printers[name].port}"

    config: dict[str, Any] = {
        "name": "E2E Noodle House",
        "printers": [
            {
                "printer_id": "kitchen",
                "name": "Hot line",
                "transport": tcp("kitchen"),
                "width_mm": 80,
            },
            {"printer_id": "bar", "name": "Bar", "transport": tcp("bar"), "width_mm": 58},
            {"printer_id": "receipt", "name": "Front", "transport": tcp("receipt"), "width_mm": 80},
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
        "failover_after_s": 3600,
        "job_ttl_s": 1800,
    }
    config.update(extra)
    return config


def order(n: int, *, drinks: bool = True) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"line_id": "1", "sku": "B01", "name": f"Burger {n}", "qty": 1, "category": "burgers",
         "modifiers": ["no onion"], "allergens": ["gluten"]},
    ]  # fmt: skip
    if drinks:
        items.append(
            {"line_id": "2", "sku": "D01", "name": f"Tea {n}", "qty": 1, "category": "drinks"}
        )
    return {
        "store_id": STORE,
        "channel": "pos",
        "external_id": f"E2E-{n}",
        "service": "takeout",
        "pickup_code": f"P{n}",
        "placed_at": "2026-11-21T12:00:00+08:00",
        "items": items,
    }


@dataclass
class Stack:
    tmp: Path
    printers: dict[str, PrinterEmulator]
    broker: Broker | None = None
    http_port: int = 0
    ws_port: int = 0
    storage: str = ""
    client_task: asyncio.Task[None] | None = None
    client: StoreClient | None = None
    process: subprocess.Popen[bytes] | None = None
    broker_kw: dict[str, Any] = field(default_factory=dict)
    """Extra broker ``Settings`` (e.g. a short ``stream_max_len``)."""
    now: Now = system_now
    """The broker's wall clock (``broker/clock.py``): a test's fake clock."""
    _broker_cm: Any = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.http, headers={"Authorization": f"Bearer {token('hq')}"}, timeout=10
        )

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.http, timeout=10) as http:
            r = await http.post(
                "/v1/orders", json=body, headers={"Authorization": f"Bearer {token('ingest')}"}
            )
        assert r.status_code in (200, 202), r.text
        out: dict[str, Any] = r.json()
        return out

    async def job_states(self, order_id: str) -> dict[str, str]:
        async with self.api() as http:
            r = await http.get(f"/v1/orders/{order_id}")
        assert r.status_code == 200, r.text
        return {j["printer_id"]: j["state"] for j in r.json()["jobs"]}

    # -- the client --------------------------------------------------------------------

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            broker=self.ws, store_id=STORE, token=token("store", store=STORE),
            spool_dir=self.tmp / "spool", status_port=0, workers=FAST_WORKERS,
        )  # fmt: skip

    async def start_client(self) -> StoreClient:
        self.client = StoreClient(self.client_settings())
        ready = asyncio.Event()
        self.client_task = asyncio.create_task(self.client.run(ready))
        await asyncio.wait_for(ready.wait(), 10)
        return self.client

    async def stop_client(self) -> None:
        if self.client_task is not None:
            self.client_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.client_task
            self.client_task = None

    def spawn_client(self) -> subprocess.Popen[bytes]:
        s = self.client_settings()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PASSLINE_TOKEN": s.token}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "passline", "store-client", "--broker", s.broker,
             "--store", STORE, "--spool", str(s.spool_dir), "--status-port", "0"],
            cwd=self.tmp, env=env, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "client.log", "ab"),
        )  # fmt: skip
        return self.process

    # -- the broker --------------------------------------------------------------------

    async def start_broker(self) -> Broker:
        """Start (or restart, on the same ports and database) the broker."""
        settings = test_settings(
            self.storage,
            http=f"127.0.0.1:{self.http_port}",
            ws=f"127.0.0.1:{self.ws_port}",
            **self.broker_kw,
        )
        self._broker_cm = start_broker(settings, now=self.now)
        b = await self._broker_cm.__aenter__()
        self.broker, self.http_port, self.ws_port = b, b.http_port, b.ws_port
        return b

    async def stop_broker(self) -> None:
        if self.broker is not None:
            await self._broker_cm.__aexit__(None, None, None)
            self.broker = None


@contextlib.asynccontextmanager
async def stack(
    tmp: Path,
    config: dict[str, Any] | None = None,
    broker_kw: dict[str, Any] | None = None,
    now: Now = system_now,
    **emulator_kw: Any,
) -> AsyncIterator[Stack]:
    async with (
        PrinterEmulator(name="kitchen", **emulator_kw) as kitchen,
        PrinterEmulator(name="bar", width_mm=58, **emulator_kw) as bar,
        PrinterEmulator(name="receipt", **emulator_kw) as receipt,
    ):
        printers = {"kitchen": kitchen, "bar": bar, "receipt": receipt}
        st = Stack(
            tmp,
            printers,
            storage=f"sqlite:///{tmp / 'broker.db'}",
            broker_kw=broker_kw or {},
            now=now,
        )
        st.http_port, st.ws_port = stable_port(), stable_port()
        await st.start_broker()
        try:
            async with st.api() as http:
                r = await http.put(
                    f"/v1/stores/{STORE}/config", json=config or store_config(printers)
                )
                assert r.status_code == 200, r.text
            yield st
        finally:
            await st.stop_client()
            if st.process is not None and st.process.poll() is None:
                st.process.send_signal(signal.SIGTERM)
                # wait without blocking the loop: the broker and printers live in it
                assert await asyncio.to_thread(st.process.wait, 30) == 0
            await st.stop_broker()
