"""A screen talks only to the broker that served it (issue 14 point 2, DESIGN.md §8.4).

A link such as ``/kds/?…&token=T&ws=wss://elsewhere`` must not make the page send its
token elsewhere, nor remember that address; the token leaves the address bar once it is
saved; and a plain ``/kds/?store=…&station=…`` link works against ``passline broker``
without being told where the websockets are.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import expect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from tests.kds_web.helpers import ROOT, SECRET, Store, item, station_config, token
from tests.kds_web.test_station import live, ticket_card

LISTENING = re.compile(r"listening http=\S+:(\d+) ws=\S+:(\d+)")


class Recorder:
    """A websocket server on 127.0.0.1 that accepts anything (the screens' subprotocol
    too) and records every request line, header and message that reaches it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port: int = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"

    async def _start(self) -> Any:
        def on_request(conn: ServerConnection, request: Request) -> None:
            self.seen.append(f"GET {request.path}")
            self.seen.extend(f"{k}: {v}" for k, v in request.headers.raw_items())

        async def handler(conn: ServerConnection) -> None:
            async for message in conn:
                self.seen.append(str(message))

        return await serve(
            handler, "127.0.0.1", 0, process_request=on_request, subprotocols=["passline.v1.json"]
        )

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def requests_of(page: Any) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    return urls


def test_a_foreign_ws_in_a_station_link_never_gets_the_token(
    store: Store, new_page: Any, elsewhere: Recorder
) -> None:
    store.configure(station_config())
    order = store.submit([item("1", "宫保鸡丁")], table="4")
    url = store.kds_url("grill", ws=elsewhere.url)
    secret = re.search(r"token=([^&]+)", url).group(1)  # type: ignore[union-attr]

    page = new_page()
    urls = requests_of(page)
    page.goto(url)
    try:
        live(page)  # on the broker that served the page
    finally:
        assert [s for s in elsewhere.seen if secret in s] == [], "the token went elsewhere"
    expect(ticket_card(page, order["order_id"])).to_be_visible()
    # saved on this device, then taken out of the address bar (history, logs, screenshots)
    expect(page).to_have_url(re.compile(r"/kds/\?store=[^&]+&station=grill$"))
    assert [u for u in urls[1:] if secret in u] == [], "only the navigation carries it"

    # opened again at the bare /kds/ (a wall tablet's start page): the saved settings are
    # used, and no websocket address was remembered from the link
    page.goto(f"{store.broker.http}/kds/?ws={elsewhere.url}")
    live(page)
    expect(ticket_card(page, order["order_id"])).to_be_visible()
    assert elsewhere.seen == []
    assert page.js_errors == []


def test_a_foreign_ws_in_an_hq_link_never_gets_the_token(
    store: Store, new_page: Any, elsewhere: Recorder
) -> None:
    url = store.hq_url(ws=elsewhere.url)
    secret = re.search(r"token=([^&]+)", url).group(1)  # type: ignore[union-attr]
    page = new_page(url)
    try:
        live(page)
    finally:
        assert [s for s in elsewhere.seen if secret in s] == [], "the token went elsewhere"
    expect(page).to_have_url(re.compile(r"/hq/$"))
    page.goto(f"{store.broker.http}/hq/")
    live(page)
    assert elsewhere.seen == []
    assert page.js_errors == []


def test_a_foreign_ws_in_a_board_link_never_gets_the_token(
    store: Store, new_page: Any, elsewhere: Recorder
) -> None:
    store.configure(station_config())
    url = store.board_url(ws=elsewhere.url)
    secret = re.search(r"token=([^&]+)", url).group(1)  # type: ignore[union-attr]
    page = new_page(url)
    try:
        live(page)
    finally:
        assert [s for s in elsewhere.seen if secret in s] == [], "the token went elsewhere"
    expect(page).to_have_url(re.compile(r"/board/\?store=[^&]+$"))
    page.goto(f"{store.broker.http}/board/")  # a TV's start page: the saved settings
    live(page)
    assert elsewhere.seen == []
    assert page.js_errors == []


def test_an_old_saved_ws_address_is_forgotten(
    store: Store, new_page: Any, elsewhere: Recorder
) -> None:
    """A tablet that once opened a poisoned link (before this fix) has the address saved."""
    store.configure(station_config())
    page = new_page(f"{store.broker.http}/healthz")  # this origin's storage
    saved = {
        "store": store.store_id,
        "station": "grill",
        "token": token("kds", store=store.store_id),
    }
    page.evaluate(
        "s => localStorage.setItem('passline.kds', JSON.stringify(s))",
        {**saved, "ws": elsewhere.url},
    )
    page.goto(f"{store.broker.http}/kds/")
    live(page)
    assert "ws" not in page.evaluate("JSON.parse(localStorage.getItem('passline.kds'))")
    assert elsewhere.seen == []


@pytest.fixture
def cli_broker(tmp_path: Any) -> Iterator[tuple[str, int]]:
    """``passline broker`` as an operator starts it: its HTTP base URL and ws port."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PASSLINE_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "passline", "broker", "--http", "127.0.0.1:0",
         "--ws", "127.0.0.1:0", "--store", "memory://", "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while not LISTENING.search(lines[-1]) and lines[-1] and len(lines) < 50:
            lines.append(proc.stdout.readline())
        found = LISTENING.search(lines[-1])
        assert found, "".join(lines)
        yield f"http://127.0.0.1:{found.group(1)}", int(found.group(2))
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_plain_station_url_shows_tickets_on_passline_broker(
    cli_broker: tuple[str, int], new_page: Any
) -> None:
    http, _ = cli_broker
    hq = {"Authorization": f"Bearer {token('hq')}"}
    r = httpx.put(f"{http}/v1/stores/s-001/config", json=station_config(), headers=hq)
    assert r.status_code == 200, r.text
    q = urlencode({"store": "s-001", "station": "grill", "token": token("kds", store="s-001")})
    page = new_page(f"{http}/kds/?{q}")
    live(page)
    order = {
        "store_id": "s-001", "channel": "pos", "external_id": "plain-1", "service": "dine_in",
        "placed_at": "2026-11-21T12:00:00+08:00", "items": [item("1", "Double cheeseburger")],
    }  # fmt: skip
    ingest = {"Authorization": f"Bearer {token('ingest')}"}
    r = httpx.post(f"{http}/v1/orders", json=order, headers=ingest)
    assert r.status_code == 202, r.text
    expect(ticket_card(page, r.json()["order_id"])).to_be_visible()
    assert page.js_errors == []
