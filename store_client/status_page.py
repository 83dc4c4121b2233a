"""A tiny read-only HTTP endpoint on 127.0.0.1 for the cashier: printers, queues, link.

``GET /status`` (or ``/``) answers JSON: the link, each printer, and this PC's clock
offset to the broker's (with a warning when it is over a minute). Hand-written on asyncio
streams on purpose: a web framework would cost the daemon more memory than everything
else it does. A request whose ``Host`` is not 127.0.0.1, localhost or [::1] gets 421: a
web page cannot read it through DNS rebinding (``printer_drivers.local_http``).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from printer_drivers.local_http import REFUSAL, host_allowed

if TYPE_CHECKING:
    from store_client.daemon import StoreClient

_MAX_REQUEST = 8192
_TIMEOUT_S = 5.0


async def serve_status(client: StoreClient, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body = await _route(client, head[:_MAX_REQUEST])
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, body = "400 Bad Request", {"error": "bad request"}
        data = json.dumps(body, indent=2).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port, limit=_MAX_REQUEST)


async def _route(client: StoreClient, head: bytes) -> tuple[str, dict[str, Any]]:
    if not host_allowed(_host(head)):
        return "421 Misdirected Request", {"error": REFUSAL}
    parts = head.split(b" ", 2)
    if len(parts) < 2 or parts[0] != b"GET":
        return "405 Method Not Allowed", {"error": "only GET"}
    if parts[1] not in (b"/", b"/status"):
        return "404 Not Found", {"error": "try GET /status"}
    return "200 OK", await snapshot(client)


def _host(head: bytes) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "host":
            return value.strip()
    return None


async def snapshot(client: StoreClient) -> dict[str, Any]:
    counts = await client.spool.counts()
    printers = {}
    for printer_id, worker in client.workers.items():
        status = worker.status
        printers[printer_id] = {
            "name": worker.config.name,
            "state": status.state.value if status else "unknown",
            "reasons": list(status.reasons) if status else [],
            "status": status.model_dump(mode="json") if status else None,
            "jobs": counts.get(printer_id, {}),
        }
    link = client.link
    return {
        "store_id": client.settings.store_id,
        "link": {
            "state": link.phase.value,
            "broker": client.settings.broker,
            "since": client.link_since.isoformat(),
            "last_error": link.last_error,
        },
        "printers": printers,
        "clock": _clock(client),
        "lan": await _lan(client),
    }


async def _lan(client: StoreClient) -> dict[str, Any] | None:
    """The store edge (``--lan``): where it listens, what it took, what waits to go up."""
    if client.settings.lan is None:
        return None
    return {
        "host": client.settings.lan.host,
        "port": client.lan_port,
        "orders_taken": await client.spool.lan_orders(),
        "outbox": await client.spool.outbox_size(),
    }


def _clock(client: StoreClient) -> dict[str, Any]:
    """This PC's clock against the broker's; a large skew is worth a cashier's look."""
    clock = client.clock
    return {
        "offset_s": round(clock.offset_s, 3),
        "measured_at": clock.reading.measured_at.isoformat() if clock.reading else None,
        "skewed": clock.skewed,
        "warning": f"{clock.describe()}; set the PC's time" if clock.skewed else None,
    }
