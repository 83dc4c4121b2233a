"""Request bodies (DESIGN.md §8.4, issue 14 point 1): every route refuses a body over its
limit with 413 before reading it, and checks the token before reading the body; a store
link on the same broker keeps getting its jobs meanwhile."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.broker.helpers import WAIT, Endpoints, order, token
from tests.security.helpers import (
    Bystander,
    chunk,
    closed_by_peer,
    raw,
    read_response,
    request_head,
    routes_of,
)

FIFTY_MB = 50 * 1024 * 1024
BODY_METHODS = {"POST", "PUT", "PATCH"}


async def every_route(ep: Endpoints) -> list[tuple[str, str]]:
    async with ep.client() as http:
        openapi = (await http.get("/openapi.json")).json()
    return [*routes_of(openapi), ("POST", "/no/such/route")]


async def announce_fifty_mb(ep: Endpoints, method: str, path: str) -> tuple[int, bool]:
    """Announce a 50 MB JSON body without a token and send only its first bytes: the
    answer must come without the rest, and the broker must hang up."""
    reader, writer = await raw(ep.http)
    headers = {"Content-Type": "application/json", "Content-Length": str(FIFTY_MB)}
    writer.write(request_head(method, path, headers) + b'{"orders": [' + b"{}," * 1000)
    await writer.drain()
    response = await read_response(reader)
    assert response.headers["content-type"] == "application/problem+json", response
    closed = await closed_by_peer(reader)
    writer.close()
    return response.status, closed


async def test_fifty_mb_to_every_route_is_refused_unread(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        routes = await every_route(ep)
        assert len(routes) >= 18, routes
        bystander = await Bystander.open(ep)
        done = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            delivering = tasks.create_task(bystander.keeps_getting_jobs(done))
            try:
                answers = await asyncio.gather(*(announce_fifty_mb(ep, m, p) for m, p in routes))
            finally:
                done.set()
        assert dict(zip(routes, answers, strict=True)) == {r: (413, True) for r in routes}
        assert delivering.result() >= 1
        await bystander.close()


async def stream_chunked(
    ep: Endpoints, path: str, tok: str, body: bytes | None = None
) -> tuple[int, int]:
    """POST a chunked body (``body``, or 50 MB of JSON-looking filler) while reading the
    answer: (status, bytes the broker let us send before it answered)."""
    reader, writer = await raw(ep.http)
    headers = {
        "Authorization": f"Bearer {tok}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    writer.write(request_head("POST", path, headers))
    answer = asyncio.ensure_future(read_response(reader))
    sent = 0
    filler = b'{"x": "' + b"a" * 16_000 + b'"},'
    try:
        if body is not None:
            writer.write(chunk(body) + b"0\r\n\r\n")
            sent = len(body)
            await writer.drain()
        else:
            while sent < FIFTY_MB and not answer.done():
                writer.write(chunk(filler))
                sent += len(filler)
                await writer.drain()
    except ConnectionError:
        pass  # the broker hung up mid-body: that is the point
    response = await answer
    writer.close()
    return response.status, sent


async def test_chunked_bodies_are_cut_at_their_route_class_cap(broker_with: Any) -> None:
    async with broker_with(max_body=64 * 1024, max_batch_body=512 * 1024) as (_, ep):
        bystander = await Bystander.open(ep)
        tok = token("ingest")
        status, sent = await stream_chunked(ep, "/v1/orders/o-x1/amend", tok)
        assert status == 413 and sent < FIFTY_MB
        status, sent = await stream_chunked(ep, "/v1/orders:batch", tok)
        assert status == 413 and sent < FIFTY_MB
        await bystander.gets_a_job()
        # 120 orders are over a single route's cap and within the batch route's
        batch = json.dumps({"orders": [order(external_id=f"b{i}") for i in range(120)]})
        assert 64 * 1024 < len(batch) < 512 * 1024
        status, _ = await stream_chunked(ep, "/v1/orders:batch", tok, batch.encode())
        assert status == 207
        status, _ = await stream_chunked(ep, "/v1/orders", tok, batch.encode())
        assert status == 413
        await bystander.gets_a_job()
        await bystander.close()


async def announce_without_token(ep: Endpoints, method: str, path: str, tok: str) -> int:
    """Announce a small body, send none of it: the token is checked first."""
    reader, writer = await raw(ep.http)
    headers = {"Content-Type": "application/json", "Content-Length": "4000"}
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    writer.write(request_head(method, path, headers))
    await writer.drain()
    response = await read_response(reader)
    writer.close()
    if response.status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
    return response.status


async def test_token_is_checked_before_the_body_is_read(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        routes = [(m, p) for m, p in await every_route(ep) if m in BODY_METHODS]
        assert len(routes) >= 7, routes
        bystander = await Bystander.open(ep)
        bad = token("hq")[:-4] + "AAAA"
        for tok in ("", bad):
            answers = [await announce_without_token(ep, m, p, tok) for m, p in routes]
            assert answers == [401] * len(routes), list(zip(routes, answers, strict=True))
        await bystander.gets_a_job()
        # a bad body without a token is a 401, not a 422: nothing was parsed
        async with httpx.AsyncClient(base_url=ep.http, timeout=WAIT) as anonymous:
            for method, path in routes:
                r = await anonymous.request(method, path, content=b"{not json")
                assert r.status_code == 401, (method, path, r.text)
        await bystander.gets_a_job()
        await bystander.close()
