"""Store links on the redis backend, one or two broker nodes in this process sharing one
Redis (issue 12): a link is never left silent, a Redis hiccup never refuses new links
for good, and a config never moves backwards across nodes.

Real sockets and a real Redis; faults are injected by making one call fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import broker.orders
from broker.app import Broker, start_broker
from broker.errors import StorageError
from store_client.daemon import ClientSettings, StoreClient
from store_client.link import Phase
from tests.broker.conftest import test_settings as settings_for
from tests.broker.helpers import (
    WAIT,
    Endpoints,
    open_store,
    order,
    recv_msgpack,
    store_config,
    token,
)
from tests.e2e.stack import eventually as within_wait
from tests.redis_server import fail_one_subscribe, isolated


@dataclass
class Node:
    broker: Broker

    @property
    def ep(self) -> Endpoints:
        b = self.broker
        return Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")


@contextlib.asynccontextmanager
async def node(url: str) -> AsyncIterator[Node]:
    async with start_broker(settings_for(url)) as b:
        yield Node(b)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    await within_wait(check, within=WAIT, what=what)


async def put_config(ep: Endpoints, store: str = "s-001", **extra: Any) -> int:
    config = store_config(**extra)
    for printer in config["printers"]:  # nothing listens there: no one's printer prints
        printer["transport"] = "tcp://127.0.0.1:9"
    async with ep.client(token("hq")) as http:
        r = await http.put(f"/v1/stores/{store}/config", json=config)
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


async def submit(ep: Endpoints, external_id: str, store: str = "s-001") -> dict[str, Any]:
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order(store=store, external_id=external_id))
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def link_online(ep: Endpoints, store: str = "s-001") -> bool:
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/stores/{store}")
    return r.status_code == 200 and bool(r.json()["link"]["online"])


async def ready(ep: Endpoints) -> bool:
    async with ep.client() as http:
        return (await http.get("/readyz")).status_code == 200


async def job_of(ws: ClientConnection, order_id: str) -> dict[str, Any]:
    """The next ``job`` frame of ``order_id`` (other frames are skipped)."""
    while True:
        msg = await recv_msgpack(ws)
        if msg["type"] == "job" and msg["job"]["order_id"] == order_id:
            return msg


# -- #8: a replaced feed never silences the link that replaced it --------------------------


async def test_a_link_is_fed_after_its_old_feeds_catch_up_failed(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = isolated(redis_url)
    async with node(url) as a, node(url) as b:  # orders go to A, the store's link is on B
        await put_config(a.ep)
        first, _ = await open_store(b.ep)
        read = b.broker.storage.read
        gate, failed = asyncio.Event(), asyncio.Event()
        armed = [True]

        async def catch_up_fails(store_id: str, after: int, limit: int) -> Any:
            if limit and armed[0]:  # B's catch-up read after A's commit woke it
                armed[0] = False
                await gate.wait()
                failed.set()
                raise StorageError("injected: redis read failed")
            return await read(store_id, after, limit)

        monkeypatch.setattr(b.broker.storage, "read", catch_up_fails)
        sub = await submit(a.ep, "o-1")
        await eventually(lambda: asyncio.sleep(0, not armed[0]), "B started its catch-up")
        await first.close()  # the link goes (its feed with it) and comes back: a new feed
        await eventually(lambda: _not(link_online(b.ep)), "the first link is gone")
        second, welcome = await open_store(b.ep)
        assert welcome["recovered"] is False and len(welcome["jobs"]) == len(sub["jobs"])
        gate.set()  # the old feed's read fails only now
        await failed.wait()
        await asyncio.sleep(0.1)
        sub = await submit(a.ep, "o-2")
        got = await job_of(second, sub["order_id"])
        assert got["job"]["job_id"] in {j["job_id"] for j in sub["jobs"]}
        await second.close()


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


# -- #9: a failed subscribe is mended; new links are served again -------------------------


async def open_when_possible(ep: Endpoints, store: str) -> ClientConnection:
    """A brand-new store link, retried while the broker answers 1013 (try again later)."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                ws, _ = await open_store(ep, store=store)
                return ws
            except ConnectionClosed as exc:
                assert exc.rcvd is not None and exc.rcvd.code == 1013, exc
            await asyncio.sleep(0.2)


async def test_a_failed_subscribe_does_not_refuse_every_later_link(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with node(isolated(redis_url)) as b:
        await put_config(b.ep, "s-001")
        await put_config(b.ep, "s-002")
        failed = fail_one_subscribe(monkeypatch, "s-001")
        with contextlib.suppress(ConnectionClosed):  # this link may be refused (1013)
            ws, _ = await open_store(b.ep, store="s-001")
            await ws.close()
        assert failed, "the injected fault did not fire"
        for store in ("s-002", "s-001"):  # links opened after the hiccup, no restart
            ws = await open_when_possible(b.ep, store)
            sub = await submit(b.ep, f"after-{store}", store=store)
            await job_of(ws, sub["order_id"])
            await ws.close()
        assert await ready(b.ep)


# -- #3: a config never moves backwards, across nodes ---------------------------------------


@contextlib.asynccontextmanager
async def store_client(tmp: Path, *nodes: Node) -> AsyncIterator[StoreClient]:
    settings = ClientSettings(
        broker=",".join(n.ep.ws for n in nodes), store_id="s-001",
        token=token("store", store="s-001"), spool_dir=tmp / "spool", status_port=None,
    )  # fmt: skip
    client = StoreClient(settings)
    started = asyncio.Event()
    task = asyncio.create_task(client.run(started))
    try:
        await asyncio.wait_for(started.wait(), WAIT)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def spool_version(client: StoreClient) -> int:
    config = await client.spool.config()
    return 0 if config is None else config.version


async def version_is(client: StoreClient, version: int) -> bool:
    return await spool_version(client) == version


@pytest.fixture
def wide_cache_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node caches configs for a minute: the stale-cache race, made certain."""
    monkeypatch.setattr(broker.orders, "CONFIG_TTL_S", 60.0)


@pytest.mark.usefixtures("wide_cache_window")
async def test_a_new_client_on_a_node_with_a_stale_cache_gets_the_newest_config(
    redis_url: str, tmp_path: Path
) -> None:
    url = isolated(redis_url)
    async with node(url) as a, node(url) as b:
        assert await put_config(a.ep) == 1
        await submit(b.ep, "warm-b")  # B caches version 1
        assert await put_config(a.ep, name="Renamed on A") == 2
        async with store_client(tmp_path, b) as client:
            await eventually(lambda: link_online(b.ep), "linked to B")
            await eventually(lambda: version_is(client, 2), "the client has version 2")
            assert client.config().version == 2 and client.config().name == "Renamed on A"


@pytest.mark.usefixtures("wide_cache_window")
async def test_a_client_moving_to_a_node_with_a_stale_cache_keeps_the_newest_config(
    redis_url: str, tmp_path: Path
) -> None:
    url = isolated(redis_url)
    async with node(url) as b, contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(node(url))
        assert await put_config(a.ep) == 1
        await submit(b.ep, "warm-b")  # B caches version 1
        async with store_client(tmp_path, a, b) as client:
            await eventually(lambda: version_is(client, 1), "version 1 through A")
            assert await put_config(a.ep, name="Renamed on A") == 2
            await eventually(lambda: version_is(client, 2), "version 2 through A")
            await stack.aclose()  # A drains (1012): the client moves on to B
            await eventually(lambda: link_online(b.ep), "linked to B")
            await eventually(lambda: asyncio.sleep(0, client.link.phase is Phase.ONLINE), "up")
            await asyncio.sleep(0.5)  # the welcome from B is spooled
            assert await spool_version(client) == 2
            assert client.config().version == 2 and client.config().name == "Renamed on A"
