"""Refused websocket handshakes leave nothing behind (issue 14 point 4): whatever the
broker learned about a connection before refusing it goes with the connection."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus

from tests.broker.helpers import WAIT, auth, token
from tests.security.helpers import Bystander, raw, read_response, request_head

ROUNDS = 20


def upgrade(tok: str, **changes: str) -> dict[str, str]:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "passline.v1.msgpack",
        "Authorization": f"Bearer {tok}",
    }
    headers.update(changes)
    return {k: v for k, v in headers.items() if v}


async def refused_raw(ws_url: str, headers: dict[str, str], read: bool = True) -> int | None:
    reader, writer = await raw(ws_url)
    writer.write(request_head("GET", "/v1/ws/store", headers))
    await writer.drain()
    status = (await read_response(reader)).status if read else None
    writer.close()
    return status


def server_connections() -> int:
    """Live server-side connection objects in this process (the broker's, here)."""
    gc.collect()
    return sum(issubclass(type(o), ServerConnection) for o in gc.get_objects())


async def until_at_most(limit: int) -> int:
    """Server connections still alive, once at most ``limit`` (or after WAIT): a refused
    connection's handler may still be closing its socket."""
    for _ in range(int(WAIT / 0.05)):
        alive = server_connections()
        if alive <= limit:
            break
        await asyncio.sleep(0.05)
    return alive


async def test_refused_handshakes_after_auth_leave_nothing_behind(broker_with: Any) -> None:
    async with broker_with(store_hello_rate=0.0) as (_, ep):
        bystander = await Bystander.open(ep)
        await bystander.gets_a_job()
        before = server_connections()
        tok = token("store", store="s-001")
        for _ in range(ROUNDS):  # the token is good every time; something else is not
            with pytest.raises(InvalidStatus) as info:  # no subprotocol offered
                await connect(f"{ep.ws}/v1/ws/store", additional_headers=auth(tok))
            assert info.value.response.status_code == 400
            assert await refused_raw(ep.ws, upgrade(tok, **{"Sec-WebSocket-Version": "8"})) in (
                400,
                426,
            )
            assert await refused_raw(ep.ws, upgrade(tok, **{"Sec-WebSocket-Key": "short"})) == 400
            assert await refused_raw(ep.ws, upgrade(tok, Upgrade="")) in (400, 426)
            await refused_raw(ep.ws, upgrade(tok), read=False)  # gone before the answer
        await bystander.gets_a_job()
        assert await until_at_most(before) <= before
        await bystander.close()
