"""Webhooks end to end (issue 16, done-when 1): a real receiver on 127.0.0.1 hears paper
out, recovery, a failed job and a ready order from a real store (broker, store client,
printer emulators over TCP), signed; and a receiver down for two minutes loses nothing."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.broker.helpers import Endpoints, open_kds, recv_json, token
from tests.e2e.stack import STORE, Stack, eventually, order, stack, store_config
from tests.e2e.test_store_client import all_jobs_in, submit_all
from tests.webhook_receiver import Receiver, verified

SECRET = "whsec-0123456789abcdef"
EVERYTHING = ["job.state", "printer.alert", "printer.recovered", "order.ready"]
OUTAGE_S = 120.0  # the two minutes


async def subscribe(st: Stack, rx: Receiver, events: list[str]) -> str:
    async with st.api() as http:
        r = await http.post(
            "/v1/webhooks", json={"url": rx.url, "events": events, "secret": SECRET}
        )
    assert r.status_code == 201, r.text
    webhook_id: str = r.json()["webhook_id"]
    return webhook_id


async def bump_all(st: Stack, station: str) -> None:
    ws, snap = await open_kds(Endpoints(st.http, st.ws), store=STORE, station=station)
    assert snap["type"] == "snapshot", snap
    for ticket in snap["tickets"]:
        bump = {"type": "bump", "ref": f"b-{ticket['ticket_id']}", "ticket_id": ticket["ticket_id"],
                "version": ticket["version"]}  # fmt: skip
        await ws.send(json.dumps(bump))
        while (msg := await recv_json(ws))["type"] != "ack":
            assert msg["type"] != "error", msg
    await ws.close()


async def test_signed_events_for_paper_out_recovery_failed_job_and_ready(tmp_path: Path) -> None:
    rx = Receiver(SECRET)
    rx.start()
    try:
        async with stack(tmp_path) as st:
            await subscribe(st, rx, EVERYTHING)
            config = store_config(st.printers)
            config["printers"][0]["profile"] = "Bogus-profile"  # the kitchen job fails
            async with st.api() as http:
                assert (await http.put(f"/v1/stores/{STORE}/config", json=config)).is_success
            await st.start_client()
            [first] = await submit_all(st, [order(0)])

            failed = await rx.wait_for("job.state", {"state": "failed", "printer_id": "kitchen"})
            assert failed["store_id"] == STORE and failed["data"]["order_id"] == first
            assert "Bogus-profile" in failed["data"]["reason"]
            await rx.wait_for("job.state", {"state": "printed", "printer_id": "bar"})

            await st.printers["bar"].set_state(paper="out")
            alert = await rx.wait_for("printer.alert", {"printer_id": "bar"})
            assert alert["data"]["state"] == "error"
            assert "media-empty-error" in alert["data"]["reasons"]
            await st.printers["bar"].set_state(paper="ok")
            back = await rx.wait_for("printer.recovered", {"printer_id": "bar"})
            assert back["data"]["state"] == "ready" and back["data"]["previous_state"] == "error"

            assert rx.events("order.ready") == []  # no expo here: ready once both stations are
            await bump_all(st, "grill")
            await asyncio.sleep(0.5)
            assert rx.events("order.ready") == []  # the bar has not bumped yet
            await bump_all(st, "bar")
            ready = await rx.wait_for("order.ready", {"order_id": first})
            assert ready["data"]["external_id"] == "E2E-0" and ready["data"]["by"] == "stations"
            assert ready["data"]["pickup_code"] == "P0"

        # every delivery carried a valid signature and the headers DESIGN.md §8.4 names
        assert rx.deliveries and all(d.ok for d in rx.deliveries)
        d = rx.deliveries[0]
        assert d.headers["Passline-Event-Id"] == d.event["id"]
        assert d.headers["Content-Type"] == "application/json"
        # ...and a forged or replayed one is caught by the receiver's check
        tampered = d.body.replace(b'"store_id":"s-e2e"', b'"store_id":"s-evil"')
        assert tampered != d.body and not verified(SECRET, d.headers, tampered)
        assert not verified("another-secret-0000", d.headers, d.body)
        stamp = int(d.headers["Passline-Timestamp"])
        assert verified(SECRET, d.headers, d.body, now=stamp + 60)
        assert not verified(SECRET, d.headers, d.body, now=stamp + 3600)  # a replay, later
    finally:
        rx.stop()


async def _log(st: Stack, webhook_id: str) -> list[dict[str, Any]]:
    async with st.api() as http:
        r = await http.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 1000})
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


async def test_receiver_down_two_minutes_then_up_gets_everything_in_order(
    tmp_path: Path,
) -> None:
    rx = Receiver(SECRET)  # not started: its port refuses connections
    try:
        async with stack(tmp_path, broker_kw={"webhook_retry_max": 3.0}) as st:
            webhook_id = await subscribe(st, rx, ["job.state"])
            await st.start_client()
            ids: list[str] = []
            down_since = time.monotonic()
            n = 0
            while time.monotonic() - down_since < OUTAGE_S:
                [new] = await submit_all(st, [order(n)])
                ids.append(new)
                n += 1
                # ingest and printing go on meanwhile: each order prints before the next
                await eventually(
                    functools.partial(all_jobs_in, st, [new], {"printed"}), what="printed"
                )
                await asyncio.sleep(8.0)
            assert n >= 10
            log = await _log(st, webhook_id)
            assert log and all(d["status"] == "pending" for d in log)
            assert max(d["attempts"] for d in log) >= 3  # it kept trying
            assert "ConnectError" in (log[-1]["last_error"] or "")
            assert rx.deliveries == []

            rx.start()
            expected = 2 * 3 * n  # printing and printed, for three jobs an order

            async def all_delivered() -> bool:
                return len(rx.events()) >= expected

            await eventually(all_delivered, within=120, what="every queued event delivered")
            log = await _log(st, webhook_id)
            assert len(log) == expected and all(d["status"] == "delivered" for d in log)
            got = rx.events()
            # none lost, none extra, and in the order they were queued for this store
            assert [e["id"] for e in got] == [d["event_id"] for d in reversed(log)]
            for job in {e["data"]["job_id"] for e in got}:
                states = [e["data"]["state"] for e in got if e["data"]["job_id"] == job]
                assert states == ["printing", "printed"], (job, states)
            async with httpx.AsyncClient(base_url=st.http, timeout=10) as http:
                r = await http.get(
                    f"/v1/orders/{ids[-1]}", headers={"Authorization": f"Bearer {token('hq')}"}
                )
            assert {j["state"] for j in r.json()["jobs"]} == {"printed"}
    finally:
        rx.stop()
