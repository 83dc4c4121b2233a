"""A real broker per test (memory storage: these limits do not depend on the backend),
started with the settings the test needs, store s-001 configured as in DESIGN.md §6."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from broker.app import Broker, start_broker
from tests.broker.conftest import pytest_asyncio_loop_factories, test_settings
from tests.broker.helpers import Endpoints, store_config, token

__all__ = ["pytest_asyncio_loop_factories"]  # the broker runs on uvloop: test it there


@pytest.fixture
def broker_with() -> Any:
    """``async with broker_with(max_body=1024) as (broker, ep)``."""

    @contextlib.asynccontextmanager
    async def start(**settings: object) -> AsyncIterator[tuple[Broker, Endpoints]]:
        async with start_broker(test_settings("memory://", **settings)) as b:
            ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
            async with ep.client(token("hq")) as http:
                r = await http.put("/v1/stores/s-001/config", json=store_config())
                assert r.status_code == 200, r.text
            yield b, ep

    return start
