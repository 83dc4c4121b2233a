"""Link presence when several connections (maybe on several nodes) hold one store in turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from broker.fleet import FLUSH_S, FleetState
from broker.records import LinkRecord
from broker.storage import Backend, Kind, open_storage
from broker.storage.redis import RedisStorage
from protocol.messages.hq import StoreLink
from tests.redis_server import isolated


@pytest.fixture
async def backend(storage: str) -> AsyncIterator[Backend]:
    b = await open_storage(storage)
    yield b
    await b.aclose()


async def link_of(storage: Backend, store_id: str) -> LinkRecord:
    raw = await storage.get(Kind.LINK, store_id)
    assert raw is not None
    return LinkRecord.model_validate_json(raw.doc)


async def test_an_old_connection_going_down_leaves_the_new_one_online(backend: Backend) -> None:
    heard: list[Any] = []
    fleet = FleetState(backend, heard.append)
    await fleet.set_link("s1", True, "1.0", session="old")
    await asyncio.sleep(FLUSH_S * 4)
    await fleet.set_link("s1", True, "1.0", session="new")  # reconnected (maybe elsewhere)
    await asyncio.sleep(FLUSH_S * 4)
    await fleet.set_link("s1", False, "1.0", session="old")  # the old one's close comes late
    await asyncio.sleep(FLUSH_S * 4)
    link = await link_of(backend, "s1")
    assert link.online and link.session == "new"
    assert [m.online for m in heard if isinstance(m, StoreLink)] == [True, True]
    await fleet.set_link("s1", False, "1.0", session="new")
    await asyncio.sleep(FLUSH_S * 4)
    assert not (await link_of(backend, "s1")).online
    assert [m.online for m in heard if isinstance(m, StoreLink)] == [True, True, False]


async def test_links_of_a_dead_node_are_reaped_once(redis_url: str) -> None:
    url = isolated(redis_url)
    a, b = await open_storage(url), await open_storage(url)
    assert isinstance(a, RedisStorage)
    try:
        heard_b: list[Any] = []
        dead = FleetState(a, lambda m: None)
        await dead.set_link("s1", True, "1.0", session="x")
        await dead.set_link("s2", True, "1.0", session="y")
        await asyncio.sleep(FLUSH_S * 4)
        await a.redis.zadd(f"{a.prefix}:nodes", {a.node_id: time.time() - 1})  # a stopped
        # a is "dead" now: its links are b's (or another live node's) to reap, exactly once
        fb = FleetState(b, heard_b.append)
        claims_b = await b.claim_dead_nodes()
        assert claims_b == [a.node_id] and await b.claim_dead_nodes() == []
        for node in claims_b:
            await fb._reap(node)
        assert not (await link_of(b, "s1")).online and not (await link_of(b, "s2")).online
        offline = sorted(m.store_id for m in heard_b if isinstance(m, StoreLink))
        assert offline == ["s1", "s2"]
    finally:
        await a.aclose()
        await b.aclose()
