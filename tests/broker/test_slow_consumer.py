"""A store socket that stops reading is closed with 4001; its queue stays within its bound,
and the other peers of the same broker keep receiving (DESIGN.md §5.3)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from broker.peers import StorePeer
from tests.broker.helpers import (
    WAIT,
    open_kds,
    open_store,
    order,
    recv_msgpack,
    store_config,
    token,
)

QUEUE = 8
WRITE_LIMIT = 4096
MAX_SUBMITS = 3000  # "never hangs" guard, far above what the bound needs
EVERY = 2  # the well-behaved peers get something every few orders while the slow one fills


class Reader:
    """Reads one websocket for as long as it is open: a peer that keeps up."""

    def __init__(self, ws: ClientConnection, decode: Callable[[Any], dict[str, Any]]) -> None:
        self.ws, self.decode = ws, decode
        self.msgs: list[dict[str, Any]] = []
        self.closed: ConnectionClosed | None = None
        self._changed = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                self.msgs.append(self.decode(await self.ws.recv()))
                self._changed.set()
        except ConnectionClosed as exc:
            self.closed = exc
            self._changed.set()

    async def wait_for(self, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                for msg in self.msgs:
                    if found(msg):
                        return msg
                assert self.closed is None, f"a well-behaved peer was closed: {self.closed}"
                self._changed.clear()
                await self._changed.wait()


def unpack(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgpack.unpackb(data, raw=False)
    return out


def drink_free(external_id: str) -> dict[str, Any]:
    """An s-001 order for the grill only, with a long note: big frames for the slow link."""
    body = order(external_id=external_id, note="n" * 500)
    body["items"] = [i for i in body["items"] if i["category"] != "drinks"]
    return body


async def post(http: Any, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post("/v1/orders", json=body)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


async def both_peers_get(http: Any, bar: Reader, good: Reader, n: int, expected: list[str]) -> None:
    """An s-001 order with a drink (a bar ticket) and an s-002 order; both arrive."""
    mine = await post(http, order(external_id=f"drink-{n}"))
    expected += [j["job_id"] for j in mine["jobs"]]
    theirs = await post(http, order("s-002", external_id=f"other-{n}"))
    await bar.wait_for(
        lambda m: m["type"] == "ticket" and m["ticket"]["order_id"] == mine["order_id"]
    )
    for job in theirs["jobs"]:
        await good.wait_for(
            lambda m, j=job: m["type"] == "job" and m["job"]["job_id"] == j["job_id"]
        )


async def test_stalled_store_client_is_closed_4001(broker_with: Any) -> None:
    async with broker_with(queue_size=QUEUE, write_limit=WRITE_LIMIT, close_timeout=30.0) as (
        b,
        ep,
    ):
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-002/config", json=store_config("Second"))
            assert r.status_code == 200, r.text
        good_ws, _ = await open_store(ep, store="s-002")  # another store's link
        bar_ws, snap = await open_kds(ep, station="bar")  # a screen of the slow link's store
        assert snap["type"] == "snapshot"
        good, bar = Reader(good_ws, unpack), Reader(bar_ws, json.loads)

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", b.ws_port))
        sock.setblocking(False)
        ws, welcome = await open_store(ep, sock=sock, max_queue=1)
        [peer] = [p for p in b.ws.peers if isinstance(p, StorePeer) and p.store_id == "s-001"]
        # small kernel buffers on both ends, so the bound is reached after few orders
        server_sock = peer.conn.transport.get_extra_info("socket")
        server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        expected: list[str] = []  # s-001's jobs in submit (= offset) order
        async with asyncio.TaskGroup() as readers:
            good_task = readers.create_task(good.run())
            bar_task = readers.create_task(bar.run())
            # the slow client now reads nothing; keep submitting until the broker gives up
            high_queue = high_buffer = 0
            async with ep.client(token("ingest")) as http:
                for i in range(MAX_SUBMITS):
                    sub = await post(http, drink_free(f"slow-{i}"))
                    expected += [j["job_id"] for j in sub["jobs"]]
                    high_queue = max(high_queue, peer.backlog())
                    high_buffer = max(high_buffer, peer.conn.transport.get_write_buffer_size())
                    if peer.closing:
                        break
                    if i % EVERY == 0:  # the others keep receiving while the slow one fills
                        await both_peers_get(http, bar, good, i, expected)
                else:
                    pytest.fail("the stalled peer was never closed")
                assert high_queue <= QUEUE and peer.high_water <= QUEUE
                assert high_buffer <= WRITE_LIMIT + 64 * 1024  # one frame past the high water
                # … and after it was cut
                await both_peers_get(http, bar, good, MAX_SUBMITS, expected)
            assert good.closed is None and bar.closed is None
            good_task.cancel()
            bar_task.cancel()

        # reading again, the client finds what was already on the wire, then 4001
        got: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(WAIT):
                while True:
                    msg = await recv_msgpack(ws)
                    if msg["type"] == "job":
                        got.append(msg)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4001
        assert [m["job"]["job_id"] for m in got] == expected[: len(got)]
        # and resumes from its offset: everything it missed, nothing twice
        last = got[-1]["offset"] if got else welcome["offset"]
        again, w2 = await open_store(ep, resume={"epoch": welcome["epoch"], "offset": last})
        assert w2["recovered"] is True
        replay = [await recv_msgpack(again) for _ in expected[len(got) :]]
        assert [m["job"]["job_id"] for m in replay] == expected[len(got) :]
        assert replay[0]["offset"] > last
        await again.close()
        await good_ws.close()
        await bar_ws.close()
