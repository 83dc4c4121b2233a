"""Connection exhaustion (issue 14 point 6): caps in total and per address, a short
deadline for unauthenticated browser sockets, HTTP header/body timeouts, and handshake
limits per address (through trusted proxies only), per store and per token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.broker.helpers import (
    WAIT,
    Endpoints,
    auth,
    recv_json,
    recv_msgpack,
    send_msgpack,
    store_config,
    token,
)
from tests.security.helpers import (
    Bystander,
    closed_by_peer,
    port_of,
    raw,
    read_response,
    request_head,
)

JSON, MSGPACK = "passline.v1.json", "passline.v1.msgpack"


async def kds(
    ep: Endpoints, local: str, forwarded: str | None = None, store: str = "s-001", **kw: Any
) -> ClientConnection:
    """A KDS screen from ``local`` (a 127.x address) that has said hello."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    ws = await connect(
        f"{ep.ws}/v1/ws/kds",
        subprotocols=[JSON],  # type: ignore[list-item]
        additional_headers=headers,
        local_addr=(local, 0),
        open_timeout=WAIT,
    )
    hello = {"type": "hello", "token": kw.get("tok") or token("kds", store=store)}
    await ws.send(json.dumps({**hello, "store": store, "station": "grill"}))
    assert (await recv_json(ws))["type"] == "snapshot"
    return ws


async def refused(opening: Any) -> tuple[int, Headers]:
    with pytest.raises(InvalidStatus) as info:
        await opening
    response = info.value.response
    return response.status_code, response.headers


async def eventually_opens(ep: Endpoints, local: str) -> ClientConnection:
    """A closed connection frees its place as soon as the broker has seen it go."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                return await kds(ep, local)
            except InvalidStatus:
                await asyncio.sleep(0.05)


async def test_connection_caps_answer_503_and_429(broker_with: Any) -> None:
    async with broker_with(ws_max_connections=4, ws_max_per_address=2) as (_, ep):
        bystander = await Bystander.open(ep)  # 127.0.0.1: one of the four
        a1, a2 = await kds(ep, "127.0.0.2"), await kds(ep, "127.0.0.2")
        status, headers = await refused(kds(ep, "127.0.0.2"))
        assert status == 429 and int(headers["Retry-After"]) >= 1
        b1 = await eventually_opens(ep, "127.0.0.3")  # once the refused one is gone
        status, headers = await refused(kds(ep, "127.0.0.4"))
        assert status == 503 and int(headers["Retry-After"]) >= 1
        await bystander.gets_a_job()
        async with ep.client() as http:  # operators see which limit refused whom
            text = (await http.get("/metrics")).text
        assert 'passline_ws_refused_total{limit="address"}' in text
        assert 'passline_ws_refused_total{limit="node"}' in text
        await a1.close()
        a3 = await eventually_opens(ep, "127.0.0.2")
        await bystander.gets_a_job()
        for ws in (a2, a3, b1):
            await ws.close()
        await bystander.close()


async def close_of(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert info.value.rcvd is not None, "closed without a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_browser_sockets_must_say_hello_soon_after_connecting(broker_with: Any) -> None:
    async with broker_with(browser_hello_timeout=0.3, hello_timeout=10.0) as (_, ep):
        bystander = await Bystander.open(ep)
        for path in ("/v1/ws/kds", "/v1/ws/hq"):
            ws = await connect(f"{ep.ws}{path}", subprotocols=[JSON], open_timeout=WAIT)  # type: ignore[list-item]
            code, reason = await close_of(ws)
            assert code == 4002 and "hello" in reason, (path, code, reason)
        # the deadline runs from the TCP connect: a slow handshake uses it up
        sock = socket.create_connection(("127.0.0.1", port_of(ep.ws)))
        await asyncio.sleep(0.5)
        sock.setblocking(False)
        ws = await connect(f"{ep.ws}/v1/ws/kds", subprotocols=[JSON], sock=sock)  # type: ignore[list-item]
        assert (await close_of(ws))[0] == 4002
        # store links authenticate in the handshake and keep their own, longer deadline
        sock = socket.create_connection(("127.0.0.1", port_of(ep.ws)))
        sock.setblocking(False)
        link = await connect(
            f"{ep.ws}/v1/ws/store",
            subprotocols=[MSGPACK],  # type: ignore[list-item]
            additional_headers=auth(token("store", store="s-002")),
            sock=sock,
        )
        await asyncio.sleep(0.5)
        hello = {"type": "hello", "store_id": "s-002", "client_version": "t", "protocol": 1}
        await send_msgpack(link, {**hello, "resume": None, "printers": []})
        assert (await recv_msgpack(link))["type"] == "welcome"
        await bystander.gets_a_job()
        await link.close()
        await bystander.close()


async def test_slow_http_clients_are_cut(broker_with: Any) -> None:
    settings = {"http_header_timeout": 0.5, "http_body_timeout": 0.5}
    async with broker_with(**settings) as (_, ep):
        bystander = await Bystander.open(ep)
        idle_reader, idle = await raw(ep.http)  # connects and says nothing
        slow_reader, slow = await raw(ep.http)  # headers, one line at a time
        slow.write(b"GET /healthz HTTP/1.1\r\nHost: broker.test\r\n")

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for i in range(int(WAIT / 0.1)):
                    slow.write(f"X-Slow-{i}: 1\r\n".encode())
                    await slow.drain()
                    await asyncio.sleep(0.1)

        trickling = asyncio.ensure_future(trickle())
        assert await closed_by_peer(idle_reader)
        assert await closed_by_peer(slow_reader)
        trickling.cancel()
        # a body that stops coming gets 408 and the connection is closed
        reader, writer = await raw(ep.http)
        headers = {"Authorization": f"Bearer {token('ingest')}", "Content-Length": "1000"}
        writer.write(request_head("POST", "/v1/orders", headers) + b'{"store_id": ')
        response = await read_response(reader)
        assert response.status == 408, response
        assert response.headers["content-type"] == "application/problem+json"
        assert await closed_by_peer(reader)
        for w in (idle, slow, writer):
            w.close()
        await bystander.gets_a_job()
        async with ep.client() as http:  # an ordinary client is served as ever
            assert (await http.get("/healthz")).status_code == 200
        await bystander.close()


async def test_http_connections_are_capped(broker_with: Any) -> None:
    async with broker_with(http_max_connections=3, http_header_timeout=0.5) as (_, ep):
        bystander = await Bystander.open(ep)
        await bystander.gets_a_job()
        held = [await raw(ep.http) for _ in range(3)]
        reader, writer = await raw(ep.http)
        writer.write(request_head("GET", "/healthz"))
        refused = await read_response(reader)
        assert refused.status == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert b"too many connections" in refused.body
        writer.close()
        for r, _ in held:  # idle connections are cut: the places come back
            assert await closed_by_peer(r)
        await bystander.gets_a_job()  # the link on the websocket port never noticed
        async with ep.client() as http:
            assert (await http.get("/healthz")).status_code == 200
        await bystander.close()


async def store_link(
    ep: Endpoints, store: str, forwarded: str | None = None, local: str = "127.0.0.1"
) -> ClientConnection:
    headers = auth(token("store", store=store))
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    ws = await connect(
        f"{ep.ws}/v1/ws/store",
        subprotocols=[MSGPACK],  # type: ignore[list-item]
        additional_headers=headers,
        local_addr=(local, 0),
        open_timeout=WAIT,
    )
    hello = {"type": "hello", "store_id": store, "client_version": "t", "protocol": 1}
    await send_msgpack(ws, {**hello, "resume": None, "printers": []})
    assert (await recv_msgpack(ws))["type"] == "welcome"
    return ws


async def test_stores_behind_a_trusted_proxy_are_limited_each_on_its_own(
    broker_with: Any,
) -> None:
    limits = {
        "trusted_proxies": ("127.0.0.1", "10.0.0.0/8"),
        "hello_rate": 0.01,  # per client address: two handshakes, then one per 100 s
        "hello_burst": 2,
        "store_hello_rate": 0.01,  # per store and per token: the same
        "store_hello_burst": 2,
    }
    async with broker_with(**limits) as (_, ep):
        stores = [f"s-{i:03d}" for i in range(2, 14)]
        async with ep.client(token("hq")) as http:
            for store in [*stores, "s-099"]:
                r = await http.put(f"/v1/stores/{store}/config", json=store_config())
                assert r.status_code == 200
        bystander = await Bystander.open(ep)
        # a restart behind the load balancer (127.0.0.1): every store reconnects through it
        links = [
            await store_link(ep, s, forwarded=f"198.51.100.{i}, 10.1.2.3")
            for i, s in enumerate(stores)
        ]
        await bystander.gets_a_job()
        # one store hammering, from wherever: its own bucket runs dry
        hammer = stores[0]
        await links[0].close()
        links[0] = await store_link(ep, hammer, forwarded="198.51.100.200")
        status, headers = await refused(store_link(ep, hammer, forwarded="198.51.100.201"))
        assert status == 429 and int(headers["Retry-After"]) >= 1
        # one kds token hammering: closed 4003 after its hello (browsers authenticate there)
        tok = token("kds", store="s-099")
        screens = [
            await kds(ep, "127.0.0.1", f"203.0.113.{i}", store="s-099", tok=tok) for i in (1, 2)
        ]
        ws = await connect(
            f"{ep.ws}/v1/ws/kds",
            subprotocols=[JSON],  # type: ignore[list-item]
            additional_headers={"X-Forwarded-For": "203.0.113.3"},
            open_timeout=WAIT,
        )
        hello = {"type": "hello", "token": tok, "store": "s-099", "station": "grill"}
        await ws.send(json.dumps(hello))
        code, reason = await close_of(ws)
        assert code == 4003 and reason, (code, reason)

        # a client that is not a trusted proxy cannot pick its address by header
        def handshake(i: int) -> Any:
            return connect(
                f"{ep.ws}/v1/ws/kds",
                subprotocols=[JSON],  # type: ignore[list-item]
                additional_headers={"X-Forwarded-For": f"192.0.2.{i}"},
                local_addr=("127.0.0.2", 0),
                open_timeout=WAIT,
            )

        for i in range(2):
            await (await handshake(i)).close()
        status, _ = await refused(handshake(99))
        assert status == 429
        await bystander.gets_a_job()
        for ws in [*links, *screens]:
            await ws.close()
        await bystander.close()
