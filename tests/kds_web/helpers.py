"""Helpers for the browser-app tests: tokens, store configs, orders, screenshots."""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from broker.auth import issue_token

SECRET = "kds-web-test-secret-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parents[2]
IMG_DIR = ROOT / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
TIMEOUT_MS = 15_000
"""Guard against hangs only; nothing here asserts how fast anything is."""


@dataclass
class RunningBroker:
    http: str
    ws: str
    http_port: int
    ws_port: int
    loop: asyncio.AbstractEventLoop

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.http, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )


def token(scope: str, **kw: Any) -> str:
    return issue_token(SECRET, scope, ttl_s=3600, **kw)


def item(
    line_id: str, name: str, category: str = "mains", qty: int = 1, **kw: Any
) -> dict[str, Any]:
    """An order line; ``sku`` follows from the line id."""
    return {
        "line_id": line_id,
        "sku": f"SKU{line_id}",
        "name": name,
        "qty": qty,
        "category": category,
        **kw,
    }


def station_config(warn: int = 300, late: int = 600) -> dict[str, Any]:
    return {
        "name": "Test Noodle House",
        "printers": [],
        "stations": [
            {
                "station_id": "grill",
                "name": "Grill",
                "categories": ["mains", "burgers"],
                "warn_after_s": warn,
                "late_after_s": late,
            },
            {"station_id": "bar", "name": "Bar", "categories": ["drinks"]},
            {"station_id": "expo", "name": "Expo", "categories": [], "expo": True},
        ],
    }


@dataclass
class Store:
    """One fresh store on the shared broker, with tokens and helpers."""

    broker: RunningBroker
    store_id: str
    counter: itertools.count[int]

    def __post_init__(self) -> None:
        self.hq = self.broker.client(token("hq"))
        self.ingest = self.broker.client(token("ingest", stores=[self.store_id]))

    def configure(self, config: dict[str, Any]) -> None:
        r = self.hq.put(f"/v1/stores/{self.store_id}/config", json=config)
        assert r.status_code == 200, r.text

    def kds_url(self, station: str, *, expo: bool = False, **extra: str) -> str:
        q = {
            "store": self.store_id,
            "station": station,
            "token": token("kds", store=self.store_id),
            **extra,
        }
        path = "/kds/expo/" if expo else "/kds/"
        return f"{self.broker.http}{path}?{urlencode(q)}"

    def board_url(self, **extra: str) -> str:
        q = {"store": self.store_id, "token": token("board", store=self.store_id), **extra}
        return f"{self.broker.http}/board/?{urlencode(q)}"

    def hq_url(self, **extra: str) -> str:
        q = {"token": token("hq"), **extra}
        return f"{self.broker.http}/hq/?{urlencode(q)}"

    def submit(self, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        n = next(self.counter)
        order = {
            "store_id": self.store_id,
            "channel": "pos",
            "external_id": f"{self.store_id}-{n}",
            "service": "dine_in",
            "placed_at": datetime.now(UTC).isoformat(),
            "items": items,
            **fields,
        }
        r = self.ingest.post("/v1/orders", json=order)
        assert r.status_code in (200, 202), r.text
        body: dict[str, Any] = r.json()
        return body

    def amend(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.ingest.post(f"/v1/orders/{order_id}/amend", json=body)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def close(self) -> None:
        self.hq.close()
        self.ingest.close()


class SteppingClock:
    """A broker's wall clock that a test moves forward (``broker_thread(now=clock)``)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def step(self, by: timedelta) -> None:
        self.ahead += by


def tell_ws(page: Any, base: str) -> None:
    """Make the page's ``config.json`` name ``base`` as its websocket base, as a broker
    with ``public_ws`` set would (e.g. a proxy in front of its ws port)."""
    page.route("**/config.json", lambda route: route.fulfill(json={"ws": base}))


def save_screenshot(page: Any, name: str, **options: Any) -> None:
    """docs/img/<name>: written when missing or with UPDATE_SCREENSHOTS=1 (CI stays clean);
    ``options`` go to Playwright's ``screenshot`` (``full_page=True``)."""
    path = IMG_DIR / name
    if path.exists() and os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), **options)
