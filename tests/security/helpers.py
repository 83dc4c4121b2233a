"""Raw sockets for attacks, and the well-behaved store link that must not notice them."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    open_store,
    order,
    recv_msgpack,
    send_msgpack,
    token,
)

_orders = itertools.count(1)


@dataclass
class Bystander:
    """A store link (s-001) that keeps receiving its jobs while a test attacks the broker.
    It checks delivery, never a timing figure (DESIGN.md §7: timing goals live in bench/)."""

    ep: Endpoints
    ws: ClientConnection

    @classmethod
    async def open(cls, ep: Endpoints) -> Bystander:
        ws, _ = await open_store(ep)
        return cls(ep, ws)

    async def gets_a_job(self) -> None:
        external_id = f"bystander-{next(_orders)}"
        async with self.ep.client(token("ingest")) as http:
            r = await http.post("/v1/orders", json=order(external_id=external_id))
        assert r.status_code == 202, r.text
        wanted = r.json()["order_id"]
        async with asyncio.timeout(WAIT):
            while True:
                msg = await recv_msgpack(self.ws)
                if msg["type"] != "job":
                    continue
                await send_msgpack(self.ws, {"type": "ack", "offset": msg["offset"]})
                if msg["job"]["order_id"] == wanted:
                    return

    async def keeps_getting_jobs(self, until: asyncio.Event) -> int:
        """Orders submitted and delivered one after another until ``until`` is set."""
        delivered = 0
        while not until.is_set() or delivered == 0:
            await self.gets_a_job()
            delivered += 1
        return delivered

    async def close(self) -> None:
        await self.ws.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def raw(
    url: str, local: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to the broker's HTTP or websocket port."""
    local_addr = (local, 0) if local else None
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port_of(url), local_addr=local_addr), WAIT
    )


def request_head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: broker.test"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """One HTTP/1.1 response (its body by Content-Length or chunked), guarded by WAIT."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await _chunks(reader)
        else:
            body = b""
    return RawResponse(int(status_line.split()[1]), headers, body)


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        out += (await reader.readexactly(size + 2))[:size]
        if size == 0:
            return out


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the other side closed the connection (EOF or reset); False if it stayed
    open for WAIT seconds (the "never hangs" guard, not a timing assertion)."""
    try:
        async with asyncio.timeout(WAIT):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def routes_of(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (method, path) the OpenAPI document names, with ids filled in, plus the
    routes it leaves out (docs, the document itself, the browser apps)."""
    out = [("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/kds/"), ("GET", "/hq/")]
    out += [("GET", f"/{app}/config.json") for app in ("kds", "hq", "board")]
    for path, methods in openapi["paths"].items():
        concrete = path.replace("{order_id}", "o-x1").replace("{job_id}", "j-x1")
        concrete = concrete.replace("{store_id}", "s-001")
        out += [(m.upper(), concrete) for m in methods]
    return out
