"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import shared_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A running Redis for the whole session (see tests/redis_server.py)."""
    url, server = shared_url()
    try:
        yield url
    finally:
        if server is not None:
            server.stop()
