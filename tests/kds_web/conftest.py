"""Fixtures for the browser apps: a real broker in a thread, real Chromium (Playwright).

The broker runs its own event loop in a background thread (``start_broker`` on
``memory://``, random ports on 127.0.0.1) so the tests can drive Chromium with the sync
Playwright API. Each test uses its own store id, so tests sharing the broker never see
each other's tickets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kds_web.helpers import CHROMIUM_ARGS, SECRET, TIMEOUT_MS, RunningBroker, Store

_store_ids = itertools.count(1)


def _serve(ready: threading.Event, box: dict[str, Any], now: Any = None) -> None:
    from broker.app import start_broker
    from broker.clock import system_now
    from broker.config import Settings

    async def main() -> None:
        settings = Settings(
            http="127.0.0.1:0",
            ws="127.0.0.1:0",
            store="memory://",
            secret=SECRET,
            hello_rate=0,
            ingest_rate=0,
            drain_timeout=2,
            close_timeout=2,
        )
        stop = asyncio.Event()
        async with start_broker(settings, now=now or system_now) as b:
            box.update(
                http_port=b.http_port, ws_port=b.ws_port, loop=asyncio.get_running_loop(), stop=stop
            )
            ready.set()
            await stop.wait()

    try:
        asyncio.run(main())
    except BaseException as exc:  # surfaced to the fixture below
        box["error"] = exc
        ready.set()


@contextlib.contextmanager
def broker_thread(now: Any = None) -> Iterator[RunningBroker]:
    """A broker in a thread; ``now``: its wall clock (``broker/clock.py``), for a test
    that sets the time of what it drives."""
    ready = threading.Event()
    box: dict[str, Any] = {}
    thread = threading.Thread(target=_serve, args=(ready, box, now), name="broker", daemon=True)
    thread.start()
    assert ready.wait(30), "broker did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield RunningBroker(
            http=f"http://127.0.0.1:{box['http_port']}",
            ws=f"ws://127.0.0.1:{box['ws_port']}",
            http_port=box["http_port"],
            ws_port=box["ws_port"],
            loop=box["loop"],
        )
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(15)


@pytest.fixture(scope="package")
def broker() -> Iterator[RunningBroker]:
    """One broker for these tests; they keep apart by store id."""
    with broker_thread() as b:
        yield b


@pytest.fixture
def private_broker() -> Iterator[RunningBroker]:
    """A broker of the test's own, for pictures of a whole fleet."""
    with broker_thread() as b:
        yield b


@pytest.fixture
def store(broker: RunningBroker) -> Iterator[Store]:
    s = Store(broker, f"s-web-{os.getpid()}-{next(_store_ids)}", itertools.count(1))
    yield s
    s.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium for this package only: the sync Playwright API keeps an event loop
    running on the main thread, which the asyncio tests of other packages must not see."""
    from playwright import sync_api  # a dev dependency: missing means a broken install

    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    exe = os.environ.get("PASSLINE_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(exe):  # the browser tests must run, never silently skip
        pytest.fail(f"no Chromium at {exe}: ./scripts/test installs it (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Factory: a page in its own context (own localStorage), 1280×800, errors collected."""
    contexts = []

    def make(url: str | None = None) -> Any:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        ctx.set_default_timeout(TIMEOUT_MS)
        contexts.append(ctx)
        page = ctx.new_page()
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        page.on("dialog", lambda d: (page.js_errors.append("dialog: " + d.message), d.dismiss()))
        if url:
            page.goto(url)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
