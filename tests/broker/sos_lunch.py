"""A lunch driven at known times, for the speed-of-service tests (docs/reports.md).

Orders go in over REST, station and expo actions over the KDS websocket, exactly as
screens send them; the broker's clock (``start_broker(now=…)``) is a ``FakeClock`` the
driver moves to each step's time before the step. Used by ``tests/broker/test_sos.py``
(exact figures) and ``tests/kds_web/test_sos_report.py`` (the report page's charts).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

WAIT = 10.0  # guards against hangs only
CATEGORY = {"grill": "burgers", "fry": "fries", "bar": "drinks"}


class FakeClock:
    """The broker's wall clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Placed:
    order_id: str
    tickets: dict[str, str]
    """station_id -> ticket_id."""


@dataclass
class Screen:
    """One KDS screen: its actions' replies by ref, the expo orders it was sent."""

    ws: ClientConnection
    replies: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg["type"] in ("ack", "error") and msg.get("ref") in self.replies:
                self.replies.pop(msg["ref"]).set_result(msg)
            if msg["type"] == "order":
                self.orders[msg["order"]["order_id"]] = msg["order"]
                self.changed.set()


class Lunch:
    """``async with Lunch(...) as lunch``: screens open on each station of ``stations``."""

    def __init__(
        self,
        http: str,
        ws: str,
        store: str,
        clock: FakeClock,
        tokens: dict[str, str],
        stations: tuple[str, ...] = ("grill", "bar", "expo"),
    ) -> None:
        self.http = http
        self.ws = ws
        self.store = store
        self.clock = clock
        self.tokens = tokens
        """``hq``, ``ingest`` and ``kds`` (for the store)."""
        self.stations = stations
        self.screens: dict[str, Screen] = {}
        self.refs = itertools.count(1)
        self.lines = itertools.count(1)
        self.client = httpx.AsyncClient(base_url=http, timeout=WAIT)

    async def __aenter__(self) -> Lunch:
        for station in self.stations:
            ws = await connect(
                f"{self.ws}/v1/ws/kds",
                subprotocols=["passline.v1.json"],  # type: ignore[list-item]
                open_timeout=WAIT,
                max_queue=None,
            )
            hello = {"type": "hello", "token": self.tokens["kds"], "store": self.store}
            await ws.send(json.dumps({**hello, "station": station}))
            first = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert first["type"] == "snapshot", first
            screen = Screen(ws)
            screen.reader = asyncio.create_task(screen.read())
            self.screens[station] = screen
        return self

    async def __aexit__(self, *exc: object) -> None:
        for screen in self.screens.values():
            await screen.ws.close()
            if screen.reader is not None:
                await screen.reader
        await self.client.aclose()

    def _auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    # -- orders over REST ------------------------------------------------------------------
    async def order(
        self, at: datetime, external_id: str, channel: str, stations: dict[str, int]
    ) -> Placed:
        """An order placed at ``at`` with ``stations[s]`` lines for each station."""
        self.clock.at = at
        items = [
            {
                "line_id": str(next(self.lines)),
                "sku": f"SKU-{station}",
                "name": f"{station} item",
                "qty": 1,
                "category": CATEGORY[station],
            }
            for station, n in stations.items()
            for _ in range(n)
        ]
        body = {
            "store_id": self.store,
            "channel": channel,
            "external_id": external_id,
            "service": "takeout",
            "placed_at": at.isoformat(),
            "items": items,
        }
        r = await self.client.post("/v1/orders", json=body, headers=self._auth("ingest"))
        assert r.status_code == 202, r.text
        out = r.json()
        return Placed(out["order_id"], {t["station_id"]: t["ticket_id"] for t in out["tickets"]})

    async def amend(self, at: datetime, placed: Placed, station: str) -> None:
        """One more line for ``station`` on the order."""
        self.clock.at = at
        line = {
            "line_id": str(next(self.lines)),
            "sku": f"SKU-{station}",
            "name": f"{station} extra",
            "qty": 1,
            "category": CATEGORY[station],
        }
        r = await self.client.post(
            f"/v1/orders/{placed.order_id}/amend",
            json={"add": [line]},
            headers=self._auth("ingest"),
        )
        assert r.status_code == 200, r.text

    async def cancel(self, at: datetime, placed: Placed) -> None:
        self.clock.at = at
        r = await self.client.post(
            f"/v1/orders/{placed.order_id}/cancel", json={}, headers=self._auth("ingest")
        )
        assert r.status_code == 200, r.text

    # -- screens over the KDS websocket ----------------------------------------------------
    async def act(self, at: datetime, station: str, action: str, placed: Placed) -> None:
        """``start``, ``bump``, ``recall`` or ``bump_line`` (its first line) on the order's
        ticket at ``station``, from that station's screen."""
        self.clock.at = at
        ticket = await self._ticket(placed, station)
        msg: dict[str, Any] = {
            "type": action,
            "ticket_id": ticket["ticket_id"],
            "version": ticket["version"],
        }
        if action == "bump_line":
            msg["line_id"] = ticket["lines"][0]["line_id"]
        await self._send(station, msg)

    async def serve(self, at: datetime, placed: Placed, expo: str = "expo") -> None:
        """Expo serves the order once its screen shows it ready (with the version the
        broker answers a stale one with, should the screen be a frame behind)."""
        self.clock.at = at
        screen = self.screens[expo]
        async with asyncio.timeout(WAIT):
            while screen.orders.get(placed.order_id, {}).get("state") != "ready":
                screen.changed.clear()
                await screen.changed.wait()
        version = screen.orders[placed.order_id]["version"]
        msg = {"type": "serve", "order_id": placed.order_id, "version": version}
        answer = await self._ask(expo, msg)
        if answer.get("code") == "version_conflict" and answer["order"]["state"] == "ready":
            answer = await self._ask(expo, {**msg, "version": answer["order"]["version"]})
        assert answer["type"] == "ack", (msg, answer)

    async def _ticket(self, placed: Placed, station: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/orders/{placed.order_id}", headers=self._auth("hq"))
        assert r.status_code == 200, r.text
        (ticket,) = [t for t in r.json()["tickets"] if t["station_id"] == station]
        out: dict[str, Any] = ticket
        return out

    async def _send(self, station: str, msg: dict[str, Any]) -> None:
        answer = await self._ask(station, msg)
        assert answer["type"] == "ack", (msg, answer)

    async def _ask(self, station: str, msg: dict[str, Any]) -> dict[str, Any]:
        screen = self.screens[station]
        ref = f"r{next(self.refs)}"
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        screen.replies[ref] = reply
        await screen.ws.send(json.dumps({**msg, "ref": ref}))
        return await asyncio.wait_for(reply, WAIT)
