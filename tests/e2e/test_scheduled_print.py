"""A scheduled order's chits print at its fire time, not at submit (issue 17, done-when 4):
real broker on a fake clock, real store client, printer emulators over TCP.

"Not yet printed" is shown without waiting on time: an ordinary order (a marker) is
submitted after the check; the store client gets jobs in stream order and each printer
prints in order, so had the scheduled order fired earlier its chits would print before
the marker's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.stack import (
    STORE,
    Stack,
    assert_each_once_in_order,
    eventually,
    order,
    stack,
    store_config,
)

T0 = datetime.now(UTC).replace(microsecond=0)  # near the store client's own clock
DUE = T0 + timedelta(minutes=20)
FIRE = T0 + timedelta(minutes=12)  # 8 minutes of grill prep before DUE


class FakeClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def texts(st: Stack, printer: str) -> list[str]:
    return [r.text for r in st.printers[printer].receipts]


async def printed(st: Stack, printer: str, n: int) -> bool:
    await asyncio.sleep(0)
    return len(st.printers[printer].receipts) >= n


async def prep_times(st: Stack) -> None:
    config: dict[str, Any] = store_config(st.printers)
    for station in config["stations"]:
        station["prep_s"] = {"grill": 480, "bar": 60}[station["station_id"]]
    async with st.api() as http:
        r = await http.put(f"/v1/stores/{STORE}/config", json=config)
    assert r.status_code == 200, r.text


def scheduled(n: int) -> dict[str, Any]:
    return {**order(n), "due_at": DUE.isoformat()}


async def test_chits_print_at_the_fire_time_and_on_fire_now(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with stack(tmp_path, now=clock) as st:
        assert st.broker is not None
        scheduler = st.broker.services.scheduler
        await prep_times(st)
        await st.start_client()
        held = await st.submit(scheduled(1))
        assert held["fire_at"] is not None
        early = await st.submit(scheduled(2))  # fired by hand below

        clock.at = FIRE - timedelta(seconds=1)
        assert await scheduler.run_due() == []
        await st.submit(order(3))  # the marker
        await eventually(lambda: printed(st, "kitchen", 1), what="the marker's chit")
        await eventually(lambda: printed(st, "receipt", 1), what="the marker's receipt")
        assert ["Burger 3" in t for t in texts(st, "kitchen")] == [True]
        assert ["P3" in t for t in texts(st, "receipt")] == [True]

        async with st.api() as http:  # "fire now" (hq token)
            r = await http.post(f"/v1/orders/{early['order_id']}/fire")
        assert r.status_code == 200 and len(r.json()["jobs"]) == 3, r.text
        await eventually(lambda: printed(st, "kitchen", 2), what="the fired order's chit")
        assert "Burger 2" in texts(st, "kitchen")[1]

        clock.at = FIRE
        await scheduler.run_due()
        await eventually(lambda: printed(st, "kitchen", 3), what="the scheduled chit")
        kitchen = texts(st, "kitchen")
        assert "Burger 1" in kitchen[2] and "DUE" in kitchen[2], kitchen[2]

        async def all_printed() -> bool:
            states = await st.job_states(held["order_id"])
            return set(states.values()) == {"printed"}

        await eventually(all_printed, what="the scheduled order's jobs printed")
        # each printer: the marker, the order fired by hand, the scheduled one; once each
        assert_each_once_in_order(kitchen, ["Burger 3", "Burger 2", "Burger 1"])
        assert_each_once_in_order(texts(st, "bar"), ["Tea 3", "Tea 2", "Tea 1"])
        assert_each_once_in_order(texts(st, "receipt"), ["P3", "P2", "P1"])
