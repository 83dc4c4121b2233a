"""The broker's clock seam (broker/clock.py): every timestamp it writes comes from the
clock it was started with. A stepping clock makes them exact, so these checks are about
which time each record carries, not about how fast anything ran."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.app import Broker, start_broker
from tests.broker.conftest import test_settings as broker_settings
from tests.broker.helpers import (
    Endpoints,
    open_store,
    order,
    send_msgpack,
    store_config,
    token,
)
from tests.broker.test_store_link import eventually

T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


class SteppingClock:
    """Each reading is one second after the one before, starting at ``T0``."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        return T0 + timedelta(seconds=self.readings - 1)


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[tuple[Broker, Endpoints, SteppingClock]]:
    clock = SteppingClock()
    async with start_broker(broker_settings(f"sqlite:///{tmp_path / 'b.db'}"), now=clock) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-001/config", json=store_config())
            assert r.status_code == 200
        yield b, ep, clock


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


async def test_every_timestamp_comes_from_the_brokers_clock(
    clocked: tuple[Broker, Endpoints, SteppingClock],
) -> None:
    _, ep, clock = clocked
    async with ep.client(token("ingest")) as http:
        r = await http.post("/v1/orders", json=order("s-001", external_id="CLK-1"))
    assert r.status_code == 202, r.text
    order_id = r.json()["order_id"]
    async with ep.client(token("hq")) as http:
        view = (await http.get(f"/v1/orders/{order_id}")).json()
    submitted = {parse(j["created_at"]) for j in view["jobs"]}
    assert len(submitted) == 1  # one reading for the whole submit
    [at] = submitted
    assert T0 <= at < T0 + timedelta(seconds=clock.readings)
    for job in view["jobs"]:
        assert parse(job["expires_at"]) == at + timedelta(seconds=1800)  # job_ttl_s
        assert [parse(h["at"]) for h in job["history"]] == [at]

    ws, welcome = await open_store(ep)  # the jobs come in its snapshot
    assert parse(welcome["now"]) > at  # the welcome's clock is the broker's too
    assert {j["job_id"] for j in welcome["jobs"]} == {j["job_id"] for j in view["jobs"]}
    await send_msgpack(ws, {"type": "ack", "offset": welcome["offset"]})

    async def all_sent() -> list[datetime] | None:
        async with ep.client(token("hq")) as http:
            v = (await http.get(f"/v1/orders/{order_id}")).json()
        got = [parse(h["at"]) for j in v["jobs"] for h in j["history"] if h["state"] == "sent"]
        return got if len(got) == len(view["jobs"]) else None

    stamps = await eventually(all_sent)
    later = T0 + timedelta(seconds=clock.readings)
    assert all(at < s < later for s in stamps)
    async with ep.client(token("hq")) as http:
        link = (await http.get("/v1/stores/s-001")).json()["link"]
    assert at < parse(link["since"]) < T0 + timedelta(seconds=clock.readings)
    await ws.close()


def test_the_default_clock_is_the_system_clock() -> None:
    from broker.clock import system_now

    before = datetime.now(UTC)
    assert before <= system_now() <= datetime.now(UTC)
