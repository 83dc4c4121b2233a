"""Speed of service (issue 17 done-when 1; docs/reports.md): a lunch at known times
through the real broker, REST and KDS websocket, on every backend, gives exactly the
expected figures from ``GET /v1/reports/sos``.

The store is in Asia/Shanghai; the broker's clock is UTC. Every duration below is set by
the script, so every figure is known: counts, nearest-rank percentiles, means, over
target (grill 480 s, bar 600 s, expo 600 s).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from broker.app import Broker, start_broker
from tests.broker.conftest import test_settings as broker_settings
from tests.broker.helpers import Endpoints, store_config, token
from tests.broker.sos_lunch import FakeClock, Lunch

SHANGHAI = ZoneInfo("Asia/Shanghai")
STORE = "s-001"
REPORT = "/v1/reports/sos"
LUNCH_HOURS = {
    "store": STORE,
    "from": "2026-11-21T11:00:00+08:00",
    "to": "2026-11-21T13:00:00+08:00",
}


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    """A moment of 21 November 2026 on the store's wall clock, as the broker's UTC clock."""
    return datetime(2026, 11, 21, hh, mm, ss, tzinfo=SHANGHAI).astimezone(UTC)


def hour(hh: int) -> str:
    return f"2026-11-21T{hh:02d}:00:00+08:00"


def tokens() -> dict[str, str]:
    return {"hq": token("hq"), "ingest": token("ingest"), "kds": token("kds", store=STORE)}


async def lunch(b: Broker, clock: FakeClock) -> None:
    """The script. Durations (s) in the comments: start / bump / serve."""
    http, ws = f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}"
    async with Lunch(http, ws, STORE, clock, tokens()) as k:
        a = await k.order(at(11, 10), "A", "pos", {"grill": 1, "bar": 1})
        await k.act(at(11, 11), "grill", "start", a)  # grill 60
        await k.act(at(11, 12), "bar", "bump", a)  # bar: bumped, never started: 120
        await k.act(at(11, 16), "grill", "bump", a)  # grill 360
        await k.serve(at(11, 17), a)  # 420
        b_ = await k.order(at(11, 20), "B", "meituan", {"grill": 1})
        await k.act(at(11, 20, 30), "grill", "start", b_)  # 30
        await k.act(at(11, 29, 20), "grill", "bump", b_)  # 560: over 480
        await k.serve(at(11, 30), b_)  # 600: not over 600
        c = await k.order(at(11, 40), "C", "pos", {"grill": 1})
        await k.act(at(11, 42), "grill", "start", c)  # 120
        await k.act(at(11, 45), "grill", "bump", c)  # 300
        await k.amend(at(11, 46), c, "grill")  # a line more: the ticket is open again
        await k.act(at(11, 50), "grill", "bump", c)  # measured once: nothing more
        await k.act(at(11, 50, 30), "grill", "recall", c)
        await k.act(at(11, 51), "grill", "bump", c)  # nothing more either
        await k.serve(at(11, 52), c)  # 720: over 600
        d = await k.order(at(11, 59, 30), "D", "pos", {"grill": 2, "bar": 1})  # hour 11
        await k.act(at(12, 0), "bar", "start", d)  # bar 30
        await k.act(at(12, 0, 40), "bar", "bump", d)  # bar 70
        await k.act(at(12, 1, 30), "grill", "bump_line", d)  # one line of two: started, 120
        await k.act(at(12, 9, 30), "grill", "bump", d)  # 600: over 480
        e = await k.order(at(12, 5), "E", "meituan", {"grill": 1, "bar": 1})
        await k.act(at(12, 6), "grill", "start", e)  # 60
        await k.act(at(12, 8), "grill", "bump", e)  # 180
        await k.serve(at(12, 10), d)  # 630: over 600
        await k.act(at(12, 15, 1), "bar", "bump", e)  # 601: over 600
        await k.serve(at(12, 16), e)  # 660: over 600
        f = await k.order(at(12, 30), "F", "pos", {"grill": 1})
        await k.cancel(at(12, 31), f)  # never bumped: nothing
        g = await k.order(at(12, 40), "G", "eleme", {"bar": 1})
        await k.act(at(12, 41), "bar", "start", g)  # 60; not bumped by the report
        h = await k.order(at(13, 5), "H", "pos", {"bar": 1})  # hour 13
        await k.act(at(13, 6), "bar", "bump", h)  # 60


def timing(
    count: int, mean: float | None = None, p50: int | None = None, p90: int | None = None,
    p95: int | None = None, mx: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {"count": count, "mean_s": mean, "p50_s": p50, "p90_s": p90, "p95_s": p95, "max_s": mx}


NONE = timing(0)


def figures(
    station: str,
    hh: int | None,
    channel: str | None,
    start: dict[str, Any] = NONE,
    bump: dict[str, Any] = NONE,
    serve: dict[str, Any] = NONE,
    over: int = 0,
) -> dict[str, Any]:
    return {
        "station_id": station,
        "hour": hour(hh) if hh is not None else None,
        "channel": channel,
        "start": start,
        "bump": bump,
        "serve": serve,
        "over_target": over,
    }


EXPECTED_ROWS = [
    # grill, 11:00: A 60/360, C 120/300, D 120/600 (pos); B 30/560 (meituan)
    figures("grill", 11, "meituan", timing(1, 30.0, 30, 30, 30, 30), timing(1, 560.0, 560, 560, 560, 560), over=1),
    figures("grill", 11, "pos", timing(3, 100.0, 120, 120, 120, 120), timing(3, 420.0, 360, 600, 600, 600), over=1),
    figures("grill", 12, "meituan", timing(1, 60.0, 60, 60, 60, 60), timing(1, 180.0, 180, 180, 180, 180)),
    # bar: A -/120, D 30/70 (pos, 11:00); E -/601 (meituan, 12:00), G 60/- (eleme)
    figures("bar", 11, "pos", timing(1, 30.0, 30, 30, 30, 30), timing(2, 95.0, 70, 120, 120, 120)),
    figures("bar", 12, "eleme", timing(1, 60.0, 60, 60, 60, 60)),
    figures("bar", 12, "meituan", bump=timing(1, 601.0, 601, 601, 601, 601), over=1),
    # expo: A 420, C 720, D 630 (pos, 11:00); B 600 (meituan); E 660 (meituan, 12:00)
    figures("expo", 11, "meituan", serve=timing(1, 600.0, 600, 600, 600, 600)),
    figures("expo", 11, "pos", serve=timing(3, 590.0, 630, 720, 720, 720), over=2),
    figures("expo", 12, "meituan", serve=timing(1, 660.0, 660, 660, 660, 660), over=1),
]  # fmt: skip
EXPECTED_HOURS = [
    figures("grill", 11, None, timing(4, 82.5, 60, 120, 120, 120), timing(4, 455.0, 360, 600, 600, 600), over=2),
    figures("grill", 12, None, timing(1, 60.0, 60, 60, 60, 60), timing(1, 180.0, 180, 180, 180, 180)),
    figures("bar", 11, None, timing(1, 30.0, 30, 30, 30, 30), timing(2, 95.0, 70, 120, 120, 120)),
    figures("bar", 12, None, timing(1, 60.0, 60, 60, 60, 60), timing(1, 601.0, 601, 601, 601, 601), over=1),
    figures("expo", 11, None, serve=timing(4, 592.5, 600, 720, 720, 720), over=2),
    figures("expo", 12, None, serve=timing(1, 660.0, 660, 660, 660, 660), over=1),
]  # fmt: skip
EXPECTED_STATIONS = [
    figures("grill", None, None, timing(5, 78.0, 60, 120, 120, 120), timing(5, 400.0, 360, 600, 600, 600), over=2),
    figures("bar", None, None, timing(2, 45.0, 30, 60, 60, 60), timing(3, 263.7, 120, 601, 601, 601), over=1),
    figures("expo", None, None, serve=timing(5, 606.0, 630, 720, 720, 720), over=3),
]  # fmt: skip


@pytest.fixture
async def clocked(storage: str) -> AsyncIterator[tuple[Broker, FakeClock]]:
    clock = FakeClock(at(10, 0))
    async with start_broker(broker_settings(storage), now=clock) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        async with ep.client(token("hq")) as http:
            r = await http.put(
                f"/v1/stores/{STORE}/config", json=store_config(timezone="Asia/Shanghai")
            )
            assert r.status_code == 200, r.text
        yield b, clock


def client(b: Broker, tok: str | None = None) -> httpx.AsyncClient:
    return Endpoints(f"http://127.0.0.1:{b.http_port}", "").client(tok or token("hq"))


async def report(b: Broker, **params: str) -> dict[str, Any]:
    async with client(b) as http:
        r = await http.get(REPORT, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    out: dict[str, Any] = r.json()
    return out


async def test_a_simulated_lunch_gives_exactly_the_expected_figures(
    clocked: tuple[Broker, FakeClock],
) -> None:
    b, clock = clocked
    await lunch(b, clock)
    got = await report(b, **LUNCH_HOURS)
    assert got["store_id"] == STORE and got["timezone"] == "Asia/Shanghai"
    assert (got["since"], got["until"]) == (
        "2026-11-21T11:00:00+08:00",
        "2026-11-21T13:00:00+08:00",
    )
    assert got["targets"] == {"grill": 480, "bar": 600, "expo": 600}
    assert got["rows"] == EXPECTED_ROWS
    assert got["hours"] == EXPECTED_HOURS
    assert got["stations"] == EXPECTED_STATIONS

    # whole days on the store's calendar: 13:00 (H's bar ticket, 60 s) comes in too
    day = await report(b, store=STORE, **{"from": "2026-11-21", "to": "2026-11-21"})
    assert (day["since"], day["until"]) == (
        "2026-11-21T00:00:00+08:00",
        "2026-11-22T00:00:00+08:00",
    )
    assert day["rows"] == [*EXPECTED_ROWS[:6], figures("bar", 13, "pos", bump=timing(1, 60.0, 60, 60, 60, 60)), *EXPECTED_ROWS[6:]]  # fmt: skip
    # one hour only; the same moment in UTC, with its "+" left unencoded (a space)
    noon = await report(
        b, store=STORE, **{"from": "2026-11-21T04:00:00 00:00", "to": "2026-11-21T05:00:00Z"}
    )
    assert noon["rows"] == [r for r in EXPECTED_ROWS if r["hour"] == hour(12)]  # fmt: skip
    # the day before: nothing
    empty = await report(b, store=STORE, **{"from": "2026-11-20", "to": "2026-11-20"})
    assert (empty["rows"], empty["hours"], empty["stations"]) == ([], [], [])


async def test_the_figures_survive_a_restart(storage: str) -> None:
    """Counted in the action's own commit: on disk (sqlite) or in redis as the action is."""
    if storage.startswith("memory"):
        pytest.skip("memory:// keeps nothing over a restart")
    clock = FakeClock(at(10, 0))
    async with start_broker(broker_settings(storage), now=clock) as b:
        async with client(b) as http:
            config = store_config(timezone="Asia/Shanghai")
            assert (await http.put(f"/v1/stores/{STORE}/config", json=config)).status_code == 200
        await lunch(b, clock)
    async with start_broker(broker_settings(storage), now=clock) as again:
        got = await report(again, **LUNCH_HOURS)
    assert got["rows"] == EXPECTED_ROWS


async def test_csv_has_a_header_and_one_row_per_station_hour_and_channel(
    clocked: tuple[Broker, FakeClock],
) -> None:
    b, clock = clocked
    await lunch(b, clock)
    async with client(b) as http:
        r = await http.get(REPORT, params={**LUNCH_HOURS, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="sos-s-001-2026-11-21.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    timing_cols = ["count", "mean_s", "p50_s", "p90_s", "p95_s", "max_s"]
    assert rows[0] == [
        "store_id", "station_id", "hour", "channel",
        *(f"{m}_{c}" for m in ("start", "bump", "serve") for c in timing_cols),
        "over_target",
    ]  # fmt: skip
    assert len(rows) == 1 + len(EXPECTED_ROWS)
    assert rows[2] == [
        "s-001", "grill", hour(11), "pos",
        "3", "100.0", "120", "120", "120", "120",
        "3", "420.0", "360", "600", "600", "600",
        "0", "", "", "", "", "",
        "1",
    ]  # fmt: skip


async def test_the_same_timings_feed_prometheus_histograms(
    clocked: tuple[Broker, FakeClock],
) -> None:
    b, clock = clocked
    await lunch(b, clock)
    async with client(b) as http:
        text = (await http.get("/metrics")).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("passline_sos_seconds")
    }
    assert samples['passline_sos_seconds_count{measure="bump",station="grill"}'] == 5
    assert samples['passline_sos_seconds_sum{measure="bump",station="grill"}'] == 2000
    assert samples['passline_sos_seconds_count{measure="start",station="bar"}'] == 2
    assert samples['passline_sos_seconds_count{measure="bump",station="bar"}'] == 4  # H too
    assert samples['passline_sos_seconds_bucket{le="600.0",measure="serve",station="expo"}'] == 2
    assert samples['passline_sos_seconds_count{measure="serve",station="expo"}'] == 5


@pytest.mark.parametrize(
    ("params", "path", "msg"),
    [
        ({"from": "2026-11-21", "to": "2026-11-22"}, "query.store", "Field required"),
        ({"store": STORE, "to": "2026-11-22"}, "query.from", "Field required"),
        ({"store": "bad id", "from": "2026-11-21", "to": "2026-11-22"}, "query.store", "pattern"),
        ({"store": STORE, "from": "yesterday", "to": "2026-11-22"}, "query.from", "expected a date"),
        ({"store": STORE, "from": "2026-11-21T11:00:00", "to": "2026-11-22"}, "query.from", "offset"),
        ({"store": STORE, "from": "2026-11-21", "to": "2026-11-31"}, "query.to", "expected a date"),
        ({"store": STORE, "from": "2026-11-22", "to": "2026-11-20"}, "query.to", "after from"),
        ({"store": STORE, "from": "2026-10-01", "to": "2026-11-21"}, "query.to", "at most 31 days"),
        ({"store": STORE, "from": "2026-11-21", "to": "2026-11-22", "format": "xml"}, "query.format", "json"),
    ],
)  # fmt: skip
async def test_bad_query_parameters_are_named_in_problem_json(
    clocked: tuple[Broker, FakeClock], params: dict[str, str], path: str, msg: str
) -> None:
    b, _ = clocked
    async with client(b) as http:
        r = await http.get(REPORT, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    errors = r.json()["errors"]
    assert errors[0]["path"] == path and msg in errors[0]["msg"], errors


async def test_only_hq_tokens_read_reports(clocked: tuple[Broker, FakeClock]) -> None:
    """An ingest token is a sales channel's: it must not see the kitchen's figures, nor
    the other channels' volumes (docs/reports.md#access)."""
    b, _ = clocked
    params = {"store": STORE, "from": "2026-11-21", "to": "2026-11-21"}
    for tok, status in [
        (token("hq"), 200),
        (token("ingest", stores=[STORE]), 403),
        (token("ingest"), 403),
        (token("kds", store=STORE), 403),
        (token("store", store=STORE), 403),
    ]:
        async with client(b, tok) as http:
            assert (await http.get(REPORT, params=params)).status_code == status, tok
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http_port}") as anonymous:
        r = await anonymous.get(REPORT, params=params)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    async with client(b) as http:
        r = await http.get(REPORT, params={**params, "store": "s-nowhere"})
    assert r.status_code == 404 and "s-nowhere" in r.json()["detail"]
