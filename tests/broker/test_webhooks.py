"""Webhook subscriptions, the durable outbox and its dead-letter list, on every backend
(DESIGN.md §8.4, docs/webhooks.md; issue 16). A store link here is the raw protocol; the
whole store is in tests/e2e/test_webhooks.py."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import pytest

from tests.broker.helpers import Endpoints, open_store, send_msgpack, store_config, token
from tests.broker.test_process import ROOT, broker_process
from tests.e2e.stack import eventually
from tests.webhook_receiver import Receiver

SECRET = "whsec-0123456789abcdef"
T0 = "2026-11-21T12:05:00+08:00"


def paper(state: str, since: str) -> dict[str, Any]:
    status = {"reachable": True, "online": True, "paper": state, "source": "realtime"}
    return {"type": "printer_status", "printer_id": "kitchen", "status": status | {"since": since}}


async def subscribe(ep: Endpoints, url: str, events: list[str], **extra: Any) -> str:
    async with ep.client(token("hq")) as http:
        body = {"url": url, "events": events, "secret": SECRET, **extra}
        r = await http.post("/v1/webhooks", json=body)
    assert r.status_code == 201, r.text
    webhook_id: str = r.json()["webhook_id"]
    return webhook_id


async def log_of(ep: Endpoints, webhook_id: str) -> list[dict[str, Any]]:
    async with ep.client(token("hq")) as http:
        r = await http.get(f"/v1/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


async def test_subscriptions_rest(ep: Endpoints, store: str) -> None:
    async with ep.client(token("hq")) as http:
        bad = await http.post(
            "/v1/webhooks",
            json={"url": "ftp://x.example", "events": ["job.state", "nope"], "secret": "short"},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert {e["path"] for e in bad.json()["errors"]} == {"url", "events.1", "secret"}
        body = {"url": "https://hooks.example/p", "events": ["order.ready"], "secret": SECRET}
        async with ep.client(token("ingest")) as ingest:
            assert (await ingest.post("/v1/webhooks", json=body)).status_code == 403
            assert (await ingest.get("/v1/webhooks")).status_code == 403
        r = await http.post("/v1/webhooks", json=body | {"stores": ["s-001"]})
        assert r.status_code == 201
        webhook_id = r.json()["webhook_id"]
        [listed] = (await http.get("/v1/webhooks")).json()
        assert listed["webhook_id"] == webhook_id and listed["stores"] == ["s-001"]
        assert "secret" not in listed and SECRET not in (await http.get("/v1/webhooks")).text
        assert (await http.get(f"/v1/webhooks/{webhook_id}/deliveries")).json() == []
        assert (await http.delete(f"/v1/webhooks/{webhook_id}")).status_code == 204
        assert (await http.delete(f"/v1/webhooks/{webhook_id}")).status_code == 404
        missing = await http.get(f"/v1/webhooks/{webhook_id}/deliveries")
        assert missing.status_code == 404 and "no webhook" in missing.json()["detail"]
        assert (await http.get("/v1/webhooks")).json() == []


async def test_store_filter_and_a_status_sent_again_is_one_event(ep: Endpoints, store: str) -> None:
    rx = Receiver(SECRET)
    rx.start()
    try:
        mine = await subscribe(ep, rx.url, ["printer.alert", "printer.recovered"])
        other = await subscribe(ep, rx.url, ["printer.alert"], stores=["s-002"])
        ws, _ = await open_store(ep)
        await send_msgpack(ws, paper("out", T0))
        await rx.wait_for("printer.alert", {"printer_id": "kitchen"})
        await send_msgpack(ws, paper("out", T0))  # the same condition again (a reconnect)
        await send_msgpack(ws, paper("ok", "2026-11-21T12:06:00+08:00"))
        await rx.wait_for("printer.recovered", {"printer_id": "kitchen"})
        assert [e["type"] for e in rx.events()] == ["printer.alert", "printer.recovered"]
        assert [d["status"] for d in await log_of(ep, mine)] == ["delivered", "delivered"]
        assert await log_of(ep, other) == []  # another store's subscription heard nothing
        await ws.close()
    finally:
        rx.stop()


async def test_dead_letter_then_replay(broker_with: Any) -> None:
    rx = Receiver(SECRET, status=500)
    rx.start()
    try:
        async with broker_with(webhook_dead_after=1.0, webhook_retry_max=0.2) as (_, ep):
            webhook_id = await subscribe(ep, rx.url, ["printer.alert"])
            ws, _ = await open_store(ep)
            await send_msgpack(ws, paper("out", T0))

            async def dead() -> bool:
                log = await log_of(ep, webhook_id)
                return bool(log) and log[0]["status"] == "dead"

            await eventually(dead, within=20, what="dead-lettered")
            [entry] = await log_of(ep, webhook_id)
            assert entry["attempts"] >= 2 and entry["last_error"] == "HTTP 500"
            assert entry["next_attempt_at"] is None
            assert rx.events() == []  # answered 500: not delivered

            rx.status = 204  # the receiver is fixed; the operator replays the dead letters
            async with ep.client(token("hq")) as http:
                r = await http.post(f"/v1/webhooks/{webhook_id}/replay", json={})
            assert r.status_code == 200 and r.json() == {"replayed": 1}
            event = await rx.wait_for("printer.alert", {"printer_id": "kitchen"})
            assert event["id"] == entry["event_id"]

            async def delivered() -> bool:
                return (await log_of(ep, webhook_id))[0]["status"] == "delivered"

            await eventually(delivered, within=20, what="delivered after the replay")
            async with ep.client(token("hq")) as http:  # by id, whatever its status
                r = await http.post(
                    f"/v1/webhooks/{webhook_id}/replay", json={"event_ids": [event["id"]]}
                )
            assert r.json() == {"replayed": 1}
            await eventually(
                lambda: asyncio.sleep(0, len(rx.deliveries) >= 2 + entry["attempts"]),
                what="sent again on request",
            )
            await ws.close()
    finally:
        rx.stop()


@pytest.mark.parametrize("storage", ["sqlite", "redis"], indirect=True)
async def test_kill_9_with_events_pending_delivers_them_after_restart(storage: str) -> None:
    rx = Receiver(SECRET)  # down while the broker dies
    try:
        async with broker_process(storage) as (proc, ep):
            async with ep.client(token("hq")) as http:
                r = await http.put("/v1/stores/s-001/config", json=store_config())
                assert r.status_code == 200
            webhook_id = await subscribe(ep, rx.url, ["printer.alert", "printer.recovered"])
            ws, _ = await open_store(ep)
            for minute in range(10, 20):  # paper out and back, five times
                state = "out" if minute % 2 == 0 else "ok"
                await send_msgpack(ws, paper(state, f"2026-11-21T12:{minute}:00+08:00"))

            async def queued() -> bool:
                return len(await log_of(ep, webhook_id)) == 10

            await eventually(queued, within=20, what="ten events queued")
            pending = [d["event_id"] for d in reversed(await log_of(ep, webhook_id))]
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        rx.start()
        async with broker_process(storage) as (proc, ep):

            async def arrived() -> bool:
                return len(rx.events()) >= len(pending)

            await eventually(arrived, within=30, what="the pending events, after the restart")
            assert [e["id"] for e in rx.events()] == pending  # all of them, in order
            kinds = [e["type"] for e in rx.events()]
            assert kinds == ["printer.alert", "printer.recovered"] * 5
    finally:
        rx.stop()


async def test_store_offline_after_the_grace_then_online_and_a_blip_says_nothing(
    broker_with: Any,
) -> None:
    rx = Receiver(SECRET)
    rx.start()
    try:
        async with broker_with(webhook_offline_after=3.0) as (_, ep):
            await subscribe(ep, rx.url, ["store.offline", "store.online"])
            ws, _ = await open_store(ep)
            await ws.close()
            ws, _ = await open_store(ep)  # back at once: a blip
            await ws.close()  # now down for good
            offline = await rx.wait_for("store.offline")
            assert offline["store_id"] == "s-001"
            ws, _ = await open_store(ep)
            online = await rx.wait_for("store.online")
            assert online["data"]["outage"]["started"] == offline["data"]["since"]
            assert online["data"]["client_version"] == "test/1"
            # the blip's grace ran out long before: it sent nothing, then or now
            assert [e["type"] for e in rx.events()] == ["store.offline", "store.online"]
            await ws.close()
    finally:
        rx.stop()


IMPORTS_HTTPX = """
import asyncio, sys
from broker.app import start_broker
from broker.config import Settings
from broker.webhooks import TICK_S

async def main():
    settings = Settings(http="127.0.0.1:0", ws="127.0.0.1:0", store="memory://", secret="s" * 40)
    async with start_broker(settings):
        await asyncio.sleep(TICK_S * 2.5)  # the dispatcher has looked for work twice
        print("httpx" in sys.modules)

asyncio.run(main())
"""


async def test_a_broker_without_webhooks_never_imports_the_http_client() -> None:
    """httpx is 1.3 MB of a broker's memory: only a broker with a subscription pays it
    (the deliveries above show the client is made when one is due)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IMPORTS_HTTPX, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert out.decode().split() == ["False"]
