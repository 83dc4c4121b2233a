"""A store socket that stops reading is closed with 4001; its queue stays within its bound."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from broker.peers import StorePeer
from tests.broker.helpers import WAIT, auth, order, recv_msgpack, send_msgpack, token

QUEUE = 8
WRITE_LIMIT = 4096
MAX_SUBMITS = 3000  # "never hangs" guard, far above what the bound needs


@pytest.mark.parametrize("storage", ["memory"], indirect=True)
async def test_stalled_store_client_is_closed_4001(broker_with: Any) -> None:
    async with broker_with(queue_size=QUEUE, write_limit=WRITE_LIMIT, close_timeout=30.0) as (
        b,
        ep,
    ):
        port = b.ws_port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        ws = await connect(
            f"ws://127.0.0.1:{port}/v1/ws/store",
            sock=sock,
            max_queue=1,
            subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
            additional_headers=auth(token("store", store="s-001")),
            open_timeout=WAIT,
        )
        await send_msgpack(
            ws,
            {
                "type": "hello",
                "store_id": "s-001",
                "client_version": "t",
                "protocol": 1,
                "resume": None,
            },
        )
        welcome = await recv_msgpack(ws)
        [peer] = [p for p in b.ws.peers if isinstance(p, StorePeer)]
        # small kernel buffers on both ends, so the bound is reached after few orders
        server_sock = peer.conn.transport.get_extra_info("socket")
        server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        # the client now reads nothing; keep submitting until the broker gives up on it
        high_queue = high_buffer = 0
        async with ep.client(token("ingest")) as http:
            for i in range(MAX_SUBMITS):
                r = await http.post(
                    "/v1/orders", json=order(external_id=f"slow-{i}", note="n" * 500)
                )
                assert r.status_code == 202
                high_queue = max(high_queue, peer.queue.qsize())
                high_buffer = max(high_buffer, peer.conn.transport.get_write_buffer_size())
                if peer.closing:
                    break
            else:
                pytest.fail("the stalled peer was never closed")
        assert high_queue <= QUEUE and peer.high_water <= QUEUE
        assert high_buffer <= WRITE_LIMIT + 64 * 1024  # one frame past the high-water mark
        # other clients are unaffected
        ws2_ok = await b.services.storage.read("s-001", 0, 1)
        assert ws2_ok.head > welcome["offset"]
        # reading again, the client finds what was already on the wire, then 4001
        got: list[int] = []
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(WAIT):
                while True:
                    got.append((await recv_msgpack(ws))["offset"])
        assert info.value.rcvd is not None and info.value.rcvd.code == 4001
        assert got == sorted(got)
        # and resumes from its offset: everything it missed, nothing twice
        from tests.broker.helpers import open_store

        last = got[-1] if got else welcome["offset"]
        again, w2 = await open_store(ep, resume={"epoch": welcome["epoch"], "offset": last})
        assert w2["recovered"] is True
        replay = []
        while len(replay) < 3 * (i + 1) - len(got):
            replay.append((await recv_msgpack(again))["offset"])
        assert replay[0] > last and replay == sorted(replay)
        await again.close()
