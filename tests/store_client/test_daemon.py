"""The daemon against a scripted broker on a real websocket: what it does with what it is
sent (DESIGN.md §8.2: a client never applies an older config version than it has)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from protocol.codec import encode_msgpack
from protocol.config import PrinterConfig, VersionedStoreConfig
from protocol.messages.store import ConfigMessage, Welcome
from store_client.daemon import ClientSettings, StoreClient

WAIT = 10.0
Script = Callable[[ServerConnection, int], Awaitable[None]]


def versioned(version: int) -> VersionedStoreConfig:
    """Version ``version`` of a one-printer store; the printer's name says which."""
    printer = PrinterConfig(printer_id="kitchen", name=f"v{version}", transport="tcp://127.0.0.1:9")
    return VersionedStoreConfig(
        store_id="s-1", version=version, name=f"v{version}", printers=(printer,)
    )


@contextlib.asynccontextmanager
async def scripted_broker(script: Script) -> AsyncIterator[str]:
    """A websocket server that plays ``script(connection, n)`` for its n-th connection."""
    count = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        await script(ws, count - 1)

    subprotocols = [Subprotocol("passline.v1.msgpack")]
    async with serve(
        handler, "127.0.0.1", 0, subprotocols=subprotocols, compression=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def received(ws: ServerConnection, kind: str) -> dict[str, Any]:
    """The client's next message of type ``kind`` (reports and statuses are skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            frame = await ws.recv()
            assert isinstance(frame, bytes), frame
            msg: dict[str, Any] = msgpack.unpackb(frame)
            if msg["type"] == kind:
                return msg


@contextlib.asynccontextmanager
async def client_of(url: str, tmp: Path) -> AsyncIterator[StoreClient]:
    settings = ClientSettings(
        broker=url, store_id="s-1", token="t", spool_dir=tmp, status_port=None
    )
    client = StoreClient(settings)
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_older_config_after_a_newer_one_changes_nothing(tmp_path: Path) -> None:
    done = asyncio.Event()

    async def script(ws: ServerConnection, n: int) -> None:
        hello = await received(ws, "hello")
        if n == 0:  # version 3 in the welcome, then version 2 in the stream
            welcome = Welcome(epoch="e1", offset=1, recovered=False, config=versioned(3))
            await ws.send(encode_msgpack(welcome))
            assert (await received(ws, "ack"))["offset"] == 1
            await ws.send(encode_msgpack(ConfigMessage(offset=2, config=versioned(2))))
            assert (await received(ws, "ack"))["offset"] == 2  # taken, though not applied
            await ws.close(1012, "server restart")
        else:  # another node, whose cache still holds version 1
            assert hello["resume"] == {"epoch": "e1", "offset": 2}
            welcome = Welcome(epoch="e1", offset=2, recovered=True, config=versioned(1))
            await ws.send(encode_msgpack(welcome))
            assert (await received(ws, "ack"))["offset"] == 2
            done.set()
            await ws.wait_closed()

    async with scripted_broker(script) as url, client_of(url, tmp_path) as client:
        await asyncio.wait_for(done.wait(), WAIT)
        assert client.config() == versioned(3)
        assert await client.spool.config() == versioned(3)
        assert client.workers["kitchen"].config.name == "v3"
