"""Bad frames get the documented close codes and never disturb other clients (DESIGN.md §5.3, §7)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    open_kds,
    open_store,
    order,
    recv_json,
    recv_msgpack,
    token,
)

memory_only = pytest.mark.parametrize("storage", ["memory"], indirect=True)
BIG = 70 * 1024  # over the 64 KiB default frame limit


async def close_code(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert info.value.rcvd is not None, "the broker closed without a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_bad_store_frames(ep: Endpoints, store: str) -> None:
    bystander_kds, _ = await open_kds(ep, station="grill")
    cases: list[tuple[Any, int]] = [
        (b"\xc1\xc1\xc1", 1007),  # not msgpack
        (msgpack.packb([1, 2, 3]), 1007),  # not an object
        ("text frame", 1007),  # the store link is binary msgpack
        (msgpack.packb({"type": "nope"}), 1008),  # unknown type
        (msgpack.packb({"type": "ack", "offset": 1, "extra": 1}), 1008),  # unknown field
        (msgpack.packb({"type": "ack", "offset": -1}), 1008),  # invalid value
        (
            msgpack.packb({"type": "hello", "store_id": "s-001", "client_version": "x"}),
            1008,
        ),  # twice
        (b"\x00" * BIG, 1009),  # too big
    ]
    for frame, code in cases:
        ws, _ = await open_store(ep)
        await ws.send(frame)
        got, reason = await close_code(ws)
        assert got == code, (frame[:20], got, reason)
        assert reason
    # everyone else still works
    good, _ = await open_store(ep)
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order())
        assert r.status_code == 202
    assert (await recv_msgpack(good))["type"] == "job"
    assert (await recv_json(bystander_kds))["type"] == "ticket"
    await good.close()
    await bystander_kds.close()


async def test_bad_kds_frames(ep: Endpoints, store: str) -> None:
    cases: list[tuple[Any, int]] = [
        ("{not json", 1007),
        ("[1]", 1007),
        (json.dumps({"type": "bump", "ref": "r"}), 1008),  # missing fields
        (json.dumps({"type": "snapshot"}), 1008),  # a broker->screen type
        ("x" * BIG, 1009),
    ]
    bystander, _ = await open_kds(ep, station="grill")
    for frame, code in cases:
        ws, _ = await open_kds(ep)
        await ws.send(frame)
        assert (await close_code(ws))[0] == code, frame[:30]
    ws, snap = await open_kds(ep)  # still serving
    assert snap["type"] == "snapshot"
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order())
        assert r.status_code == 202
    assert (await recv_json(bystander))["type"] == "ticket"  # the screen opened before
    await ws.close()
    await bystander.close()


@memory_only
async def test_hello_must_come_in_time(broker_with: Any) -> None:
    from websockets.asyncio.client import connect

    async with broker_with(hello_timeout=0.3, browser_hello_timeout=0.3) as (_, ep):
        ws = await connect(
            f"{ep.ws}/v1/ws/kds", subprotocols=["passline.v1.json"], open_timeout=WAIT
        )  # type: ignore[list-item]
        assert (await close_code(ws))[0] == 4002
        ws = await connect(
            f"{ep.ws}/v1/ws/kds", subprotocols=["passline.v1.json"], open_timeout=WAIT
        )  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "bump", "ref": "r", "ticket_id": "t", "version": 1}))
        assert (await close_code(ws))[0] == 1008  # first message must be hello
