"""A real broker on random 127.0.0.1 ports, per test, for each storage backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker, start_broker
from broker.config import Settings
from tests.broker.helpers import SECRET, Endpoints, store_config, token
from tests.redis_server import isolated

#: Storage backends the broker tests run against.
STORAGES = ["memory", "sqlite", "redis"]


def storage_url(kind: str, tmp_path: Path, redis: str = "") -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    if kind == "redis":
        return isolated(redis)
    raise ValueError(kind)


def test_settings(url: str, **kw: object) -> Settings:
    base: dict[str, object] = {
        "http": "127.0.0.1:0",
        "ws": "127.0.0.1:0",
        "store": url,
        "secret": SECRET,
        "hello_rate": 0.0,
        "ingest_rate": 0.0,
        "close_timeout": 3.0,
        "drain_timeout": 5.0,
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return storage_url(request.param, tmp_path, redis)


@pytest.fixture
async def running(storage: str) -> AsyncIterator[Broker]:
    async with start_broker(test_settings(storage)) as b:
        yield b


@pytest.fixture
def ep(running: Broker) -> Endpoints:
    return Endpoints(f"http://127.0.0.1:{running.http_port}", f"ws://127.0.0.1:{running.ws_port}")


@pytest.fixture
async def store(ep: Endpoints) -> str:
    """Store s-001 configured as in DESIGN.md §6."""
    async with ep.client(token("hq")) as http:
        r = await http.put("/v1/stores/s-001/config", json=store_config())
        assert r.status_code == 200, r.text
    return "s-001"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """The broker runs on uvloop in production (``passline broker``): test it there too."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - windows
        return {"asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
def broker_with(storage: str) -> Any:
    """Start a broker with some settings changed: ``async with broker_with(queue_size=8)``."""

    @contextlib.asynccontextmanager
    async def start(**settings: object) -> AsyncIterator[tuple[Broker, Endpoints]]:
        async with start_broker(test_settings(storage, **settings)) as b:
            ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
            async with ep.client(token("hq")) as http:
                r = await http.put("/v1/stores/s-001/config", json=store_config())
                assert r.status_code == 200
            yield b, ep

    return start
