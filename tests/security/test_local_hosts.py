"""The local HTTP endpoints answer only requests addressed to this machine (issue 14 point
2b): the store client's status page and the emulator's control port. Before, any ``Host``
was answered, so a web page whose name was rebound to 127.0.0.1 could read the status page
and set the emulator's faults from the cashier's own browser."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from printer_drivers.emulator import PrinterEmulator
from store_client.daemon import ClientSettings, StoreClient
from tests.broker.helpers import WAIT

FOREIGN = ["evil.example:{port}", "127.0.0.1.evil.example:{port}", "evil.example", "", None]
LOCAL = ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LocalHost:{port}"]


async def ask(port: int, method: str, path: str, host: str | None, body: bytes = b"") -> Any:
    """One raw request (``host`` None: no Host header); status and decoded body."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host.format(port=port)}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    raw = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


@pytest.mark.parametrize("host", FOREIGN)
async def test_control_port_refuses_other_hosts(host: str | None) -> None:
    async with PrinterEmulator() as emu:
        status, body = await ask(emu.control_port, "POST", "/state", host, b'{"paper": "out"}')
        assert status == 421 and "127.0.0.1" in body["error"] and len(body["error"]) < 100
        assert emu.state["paper"] == "ok"  # nothing changed
        assert (await ask(emu.control_port, "GET", "/receipts", host))[0] == 421


@pytest.mark.parametrize("host", LOCAL)
async def test_control_port_answers_this_machine(host: str) -> None:
    async with PrinterEmulator() as emu:
        status, body = await ask(emu.control_port, "POST", "/state", host, b'{"paper": "out"}')
        assert status == 200 and body["paper"] == "out"


async def test_a_control_port_on_the_lan_takes_ip_addresses() -> None:
    """``printer-sim --host 0.0.0.0`` is driven from other machines by address; names that
    are not its own are still refused."""
    async with PrinterEmulator(host="0.0.0.0") as emu:
        assert (await ask(emu.control_port, "GET", "/state", "192.0.2.7:{port}"))[0] == 200
        assert (await ask(emu.control_port, "GET", "/state", "[2001:db8::7]:{port}"))[0] == 200
        assert (await ask(emu.control_port, "GET", "/state", "evil.example:{port}"))[0] == 421


@contextlib.asynccontextmanager
async def store_client(tmp: Path) -> AsyncIterator[StoreClient]:
    """A store client with its status page; its broker is nowhere (the page still works)."""
    settings = ClientSettings(
        broker="ws://127.0.0.1:9/", store_id="s-1", token="t", spool_dir=tmp, status_port=0
    )
    client = StoreClient(settings)
    ready = asyncio.Event()
    task = asyncio.create_task(client.run(ready))
    try:
        await asyncio.wait_for(ready.wait(), WAIT)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_status_page_answers_only_this_machine(tmp_path: Path) -> None:
    async with store_client(tmp_path) as client:
        assert client.status_port is not None
        for host in FOREIGN:
            status, body = await ask(client.status_port, "GET", "/status", host)
            assert status == 421 and "store_id" not in body, host
            assert "127.0.0.1" in body["error"] and len(body["error"]) < 100
        for host in LOCAL:
            status, body = await ask(client.status_port, "GET", "/status", host)
            assert status == 200 and body["store_id"] == "s-1", host
