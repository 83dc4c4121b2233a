"""Store time (DESIGN.md §8.7, issue 17): a store config's IANA ``timezone``, and the
broker's ``default_timezone`` filled in for stores that name none, in everything the
broker hands out: the config a store client gets, the chits it plans, the screens'
snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from broker.config import load_settings
from broker.errors import ConfigError
from tests.broker.helpers import (
    WAIT,
    open_kds,
    open_store,
    order,
    recv_msgpack,
    store_config,
    token,
)

SHANGHAI = "Asia/Shanghai"


async def test_a_zone_that_does_not_exist_is_a_422_naming_timezone(broker_with: Any) -> None:
    async with broker_with() as (_, ep), ep.client(token("hq")) as hq:
        for bad in ("Mars/Olympus_Mons", "asia/shanghai", "+08:00", "localtime", "../etc/passwd"):
            r = await hq.put("/v1/stores/s-001/config", json=store_config(timezone=bad))
            assert r.status_code == 422, (bad, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            error = r.json()["errors"][0]
            assert error["path"] == "timezone", (bad, error)
            assert "time zone" in error["msg"] and "Asia/Shanghai" in error["msg"]
        r = await hq.put("/v1/stores/s-001/config", json=store_config(timezone=SHANGHAI))
        assert r.status_code == 200 and r.json()["version"] == 2


async def test_a_store_without_a_zone_gets_the_brokers_default_everywhere(
    broker_with: Any,
) -> None:
    async with broker_with(default_timezone=SHANGHAI) as (_, ep):  # s-001 names no zone
        old, old_welcome = await open_store(ep, protocol_version=1)  # a client before zones
        assert "timezone" not in old_welcome["config"]  # protocol 1 knows no such field
        await old.close()
        ws, welcome = await open_store(ep, protocol_version=2)
        assert welcome["config"]["timezone"] == SHANGHAI
        async with ep.client(token("ingest")) as http:
            r = await http.post("/v1/orders", json=order(placed_at="2026-11-29T07:46:00Z"))
            assert r.status_code == 202, r.text
        jobs = [(await recv_msgpack(ws))["job"] for _ in r.json()["jobs"]]
        assert {j["doc"]["timezone"] for j in jobs} == {SHANGHAI}
        assert jobs[0]["doc"]["placed_at"] == "2026-11-29T07:46:00Z"  # the stamp as sent
        kds, snapshot = await open_kds(ep)
        assert snapshot["type"] == "snapshot" and snapshot["timezone"] == SHANGHAI
        await kds.close()

        async with ep.client(token("hq")) as hq:  # a zone of its own wins, pushed live
            put = await hq.put("/v1/stores/s-001/config", json=store_config(timezone="UTC"))
            assert put.status_code == 200
            pushed = await recv_msgpack(ws, WAIT)
            assert pushed["type"] == "config" and pushed["config"]["timezone"] == "UTC"
            await hq.put("/v1/stores/s-001/config", json=store_config())  # none again
            pushed = await recv_msgpack(ws, WAIT)
            assert pushed["config"]["timezone"] == SHANGHAI and pushed["config"]["version"] == 3
        await ws.close()


async def test_the_default_zone_is_utc(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        ws, welcome = await open_store(ep, protocol_version=2)
        assert welcome["config"]["timezone"] == "UTC"
        await ws.close()


def test_a_default_zone_that_does_not_exist_is_one_clear_error() -> None:
    assert load_settings(default_timezone=SHANGHAI).default_timezone == SHANGHAI
    assert load_settings().default_timezone == "UTC"
    with pytest.raises(ConfigError, match=r"^default_timezone: unknown time zone 'Asia/Shang'"):
        load_settings(default_timezone="Asia/Shang")
