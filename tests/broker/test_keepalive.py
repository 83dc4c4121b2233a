"""The node's one keepalive (``broker/keepalive.py``): a link that stops answering pings
is closed with 1011, a link that answers stays up, and no socket has a keepalive task of
its own."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from tests.broker.helpers import WAIT, open_store, order, recv_msgpack, store_config, token
from tests.broker.test_store_link import eventually

memory_only = pytest.mark.parametrize("storage", ["memory"], indirect=True)


@memory_only
async def test_a_link_that_stops_answering_pings_is_closed_and_the_others_stay(
    broker_with: Any,
) -> None:
    async with broker_with(ping_interval=0.2, ping_timeout=0.2) as (b, ep):
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-002/config", json=store_config())
            assert r.status_code == 200
            dead, _ = await open_store(ep, "s-001", ping_interval=None)
            alive, _ = await open_store(ep, "s-002", ping_interval=None)
            assert all(c.keepalive_task is None for c in b.ws.server.connections)
            assert len(b.ws.keepalive) == 2

            server_side = b.ws.links["s-001"].conn
            dead.transport.pause_reading()  # a PC gone quiet: no pong ever comes back

            async def dead_is_closing() -> bool:
                return server_side.state is not State.OPEN

            await eventually(dead_is_closing)  # the close frame waits in the client's buffer
            dead.transport.resume_reading()  # (within close_timeout, 3 s here)
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(WAIT):
                    while True:
                        await dead.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1011,
                "keepalive ping timeout",
            )

            async def dead_is_offline() -> bool:
                store = (await http.get("/v1/stores/s-001")).json()
                return store["link"]["online"] is False

            await eventually(dead_is_offline)

            # the other link answered every ping meanwhile: still up, and still served
            await asyncio.sleep(1.0)  # five more intervals
            assert alive.state is State.OPEN
            async with ep.client(token("ingest")) as ingest:
                r = await ingest.post("/v1/orders", json=order("s-002", external_id="ka-1"))
            assert r.status_code == 202, r.text
            msg = await recv_msgpack(alive)
            assert msg["type"] == "job"
            await alive.close()


@memory_only
async def test_a_closed_link_is_freed_at_once(broker_with: Any) -> None:
    """Neither the keepalive (its next ping is 30 s away) nor the token-expiry heap keeps
    a closed link's connection: a reconnect storm does not hold two of each."""
    async with broker_with(ping_interval=30.0, ping_timeout=30.0) as (b, ep):
        ws, _ = await open_store(ep, "s-001")
        server_side = weakref.ref(b.ws.links["s-001"].conn)
        assert len(b.ws.keepalive) == 1
        await ws.close()

        async def gone() -> bool:
            gc.collect()
            return server_side() is None

        await eventually(gone)
        assert len(b.ws.keepalive) == 1  # its turn has not come: it held the link weakly
