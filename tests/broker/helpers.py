"""Builders and raw clients for broker tests: real sockets, no broker internals."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import msgpack
from websockets.asyncio.client import ClientConnection, connect

from broker.auth import issue_token

SECRET = "test-secret-0123456789abcdef-0123456789"
WAIT = 10.0  # "never hangs" guard for every await in tests


def store_config(name: str = "Demo Noodle House", **extra: Any) -> dict[str, Any]:
    """DESIGN.md §6's store config."""
    config: dict[str, Any] = {
        "name": name,
        "printers": [
            {
                "printer_id": "kitchen",
                "name": "Hot line",
                "transport": "tcp://127.0.0.1:9100",
                "profile": "default",
                "width_mm": 80,
                "encoding": "gb18030",
                "backup": "receipt",
            },
            {
                "printer_id": "bar",
                "name": "Bar",
                "transport": "tcp://127.0.0.1:9102",
                "width_mm": 58,
            },
            {
                "printer_id": "receipt",
                "name": "Front",
                "transport": "tcp://127.0.0.1:9104",
                "width_mm": 80,
            },
        ],
        "stations": [
            {
                "station_id": "grill",
                "name": "Grill",
                "categories": ["burgers", "mains"],
                "printer": "kitchen",
                "warn_after_s": 300,
                "late_after_s": 480,
            },
            {"station_id": "bar", "name": "Bar", "categories": ["drinks"], "printer": "bar"},
            {"station_id": "expo", "name": "Expo", "categories": [], "expo": True},
        ],
        "receipt_printer": "receipt",
        "failover_after_s": 30,
        "job_ttl_s": 1800,
    }
    config.update(extra)
    return config


def order(
    store: str = "s-001", external_id: str = "MT-20261121-0042", **extra: Any
) -> dict[str, Any]:
    """DESIGN.md §6's order."""
    body: dict[str, Any] = {
        "store_id": store,
        "channel": "meituan",
        "external_id": external_id,
        "service": "delivery",
        "pickup_code": "42",
        "customer": "Li",
        "priority": "rush",
        "placed_at": "2026-11-21T12:03:00+08:00",
        "note": "no cutlery",
        "items": [
            {
                "line_id": "1",
                "sku": "B01",
                "name": "Double cheeseburger",
                "qty": 2,
                "category": "burgers",
                "modifiers": ["no onion", "extra pickles"],
                "allergens": ["gluten", "dairy"],
            },
            {
                "line_id": "2",
                "sku": "N07",
                "name": "宫保鸡丁",
                "qty": 1,
                "category": "mains",
                "note": "少辣",
            },
            {
                "line_id": "3",
                "sku": "D02",
                "name": "Iced lemon tea",
                "qty": 2,
                "category": "drinks",
            },
        ],
    }
    body.update(extra)
    return body


def token(scope: str, **kw: Any) -> str:
    return issue_token(SECRET, scope, **kw)


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@dataclass
class Endpoints:
    http: str
    ws: str

    def client(self, tok: str | None = None) -> httpx.AsyncClient:
        headers = auth(tok) if tok else {}
        return httpx.AsyncClient(base_url=self.http, headers=headers, timeout=WAIT)


async def recv_msgpack(ws: ClientConnection, within: float = WAIT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        data = await ws.recv()
    assert isinstance(data, bytes), data
    out: dict[str, Any] = msgpack.unpackb(data, raw=False)
    return out


async def recv_json(ws: ClientConnection, within: float = WAIT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        data = await ws.recv()
    out: dict[str, Any] = json.loads(data)
    return out


async def send_msgpack(ws: ClientConnection, msg: dict[str, Any]) -> None:
    await ws.send(msgpack.packb(msg, use_bin_type=True))


async def open_store(
    ep: Endpoints,
    store: str = "s-001",
    resume: dict[str, Any] | None = None,
    tok: str | None = None,
    protocol_version: int = 1,
    **kw: Any,
) -> tuple[ClientConnection, dict[str, Any]]:
    """A raw store link: connect, hello (protocol 1 unless told), welcome."""
    ws = await connect(
        f"{ep.ws}/v1/ws/store",
        subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
        additional_headers=auth(tok or token("store", store=store)),
        open_timeout=WAIT,
        **kw,
    )
    await send_msgpack(
        ws,
        {
            "type": "hello",
            "store_id": store,
            "client_version": "test/1",
            "protocol": protocol_version,
            "resume": resume,
            "printers": [],
        },
    )
    welcome = await recv_msgpack(ws)
    assert welcome["type"] == "welcome", welcome
    if welcome.get("paged"):
        await read_snapshot(ws, welcome)
    return ws, welcome


async def read_snapshot(ws: ClientConnection, welcome: dict[str, Any]) -> None:
    """A paged snapshot's frames, gathered into ``welcome["jobs"]`` (DESIGN.md §8.2);
    ``welcome["pages"]`` holds each page's size in bytes."""
    welcome["pages"] = []
    while True:
        frame = await asyncio.wait_for(ws.recv(), WAIT)
        assert isinstance(frame, bytes)
        msg = msgpack.unpackb(frame)
        if msg["type"] == "snapshot_end":
            assert msg["offset"] == welcome["offset"], msg
            assert msg["count"] == len(welcome["jobs"]), (msg, len(welcome["jobs"]))
            return
        assert msg["type"] == "snapshot", msg
        welcome["pages"].append(len(frame))
        welcome["jobs"] = [*welcome["jobs"], *msg["jobs"]]


async def open_kds(
    ep: Endpoints,
    store: str = "s-001",
    station: str = "grill",
    resume: dict[str, Any] | None = None,
    tok: str | None = None,
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(f"{ep.ws}/v1/ws/kds", subprotocols=["passline.v1.json"], open_timeout=WAIT)  # type: ignore[list-item]
    hello: dict[str, Any] = {
        "type": "hello",
        "token": tok or token("kds", store=store),
        "store": store,
        "station": station,
    }
    if resume is not None:
        hello["resume"] = resume
    await ws.send(json.dumps(hello))
    first = await recv_json(ws)
    return ws, first


async def open_hq(ep: Endpoints, tok: str | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(f"{ep.ws}/v1/ws/hq", subprotocols=["passline.v1.json"], open_timeout=WAIT)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "hello", "token": tok or token("hq")}))
    return ws, await recv_json(ws)
