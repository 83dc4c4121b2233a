"""The HQ speed-of-service page (issue 17 done-when 2; docs/reports.md): a lunch driven at
known times through a real broker (REST and KDS websocket, fake clock), then the page in
Chromium draws the report's JSON as SVG charts — one bar per figure the JSON has — and
is pictured in docs/img/sos-report.png."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.broker.sos_lunch import FakeClock, Lunch, Placed
from tests.kds_web.conftest import broker_thread
from tests.kds_web.helpers import RunningBroker, save_screenshot, token

SHANGHAI = ZoneInfo("Asia/Shanghai")
STORE = "s-sos-report"
DAY = "2026-11-21"
SEED_TIMEOUT_S = 300  # guards against hangs only
KITCHEN = ("grill", "fry", "bar")
#: Minutes a ticket takes at each station off-peak; the 12:00 rush takes longer.
BASE_S = {"grill": 300, "fry": 170, "bar": 100}
CHANNELS = ["pos", "pos", "pos", "meituan", "meituan", "eleme", "miniprogram"]


def config() -> dict[str, Any]:
    station = {"printer": None, "warn_after_s": 180}
    return {
        "name": "Noodle House Jing'an 静安店",
        "timezone": "Asia/Shanghai",
        "stations": [
            {**station, "station_id": "grill", "name": "Grill", "categories": ["burgers"], "late_after_s": 480},
            {**station, "station_id": "fry", "name": "Fry", "categories": ["fries"], "late_after_s": 300},
            {**station, "station_id": "bar", "name": "Bar", "categories": ["drinks"], "warn_after_s": 120, "late_after_s": 240},
            {"station_id": "expo", "name": "Expo", "expo": True, "warn_after_s": 480, "late_after_s": 720},
        ],
    }  # fmt: skip


def local(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 21, hh, mm, ss, tzinfo=SHANGHAI).astimezone(UTC)


Step = tuple[datetime, int, Callable[[], Awaitable[None]]]


def lunch_script(k: Lunch) -> list[Step]:
    """About 50 orders from 10:30 to 14:30, busiest at 12:00: each ticket started (most of
    them) and bumped, each order served on expo; seeded, so the picture is stable."""
    rnd = random.Random(17)
    steps: list[Step] = []
    seq = iter(range(1_000_000))
    arrivals: list[datetime] = []
    t = local(10, 30)
    while t < local(14, 30):
        arrivals.append(t)
        rush = local(11, 50) <= t < local(13, 0)
        t += timedelta(seconds=rnd.randint(120, 240) if rush else rnd.randint(240, 600))
    for n, at in enumerate(arrivals):
        stations = [s for s in KITCHEN if rnd.random() < 0.7] or ["grill"]
        channel = rnd.choice(CHANNELS)
        load = 1.5 if local(12, 0) <= at < local(13, 0) else 1.0
        box: dict[str, Placed] = {}

        def order(at: datetime = at, n: int = n, channel: str = channel, st: list[str] = stations,
                  box: dict[str, Placed] = box) -> Awaitable[None]:  # fmt: skip
            async def run() -> None:
                box["o"] = await k.order(at, f"L-{n}", channel, {s: 1 for s in st})

            return run()

        steps.append((at, next(seq), order))
        done = at
        for station in stations:
            started = at + timedelta(seconds=rnd.randint(15, 110))
            if rnd.random() < 0.8:
                steps.append((started, next(seq), _act(k, started, station, "start", box)))
            took = int(BASE_S[station] * load * rnd.uniform(0.7, 1.6))
            bumped = max(at + timedelta(seconds=took), started + timedelta(seconds=20))
            steps.append((bumped, next(seq), _act(k, bumped, station, "bump", box)))
            done = max(done, bumped)
        served = done + timedelta(seconds=rnd.randint(20, 150))
        steps.append((served, next(seq), _serve(k, served, box)))
    return sorted(steps, key=lambda s: (s[0], s[1]))


def _act(
    k: Lunch, at: datetime, station: str, action: str, box: dict[str, Placed]
) -> Callable[[], Awaitable[None]]:
    return lambda: k.act(at, station, action, box["o"])


def _serve(k: Lunch, at: datetime, box: dict[str, Placed]) -> Callable[[], Awaitable[None]]:
    return lambda: k.serve(at, box["o"])


async def seed(b: RunningBroker, clock: FakeClock) -> None:
    tokens = {"hq": token("hq"), "ingest": token("ingest"), "kds": token("kds", store=STORE)}
    async with Lunch(b.http, b.ws, STORE, clock, tokens, ("grill", "fry", "bar", "expo")) as k:
        for _, _, step in lunch_script(k):
            await step()


@pytest.fixture(scope="module")
def lunch_broker() -> Iterator[RunningBroker]:
    """A broker of its own on a fake clock, with the lunch served."""
    clock = FakeClock(local(10, 0))
    with broker_thread(now=clock) as b:
        with b.client(token("hq")) as hq:
            assert hq.put(f"/v1/stores/{STORE}/config", json=config()).status_code == 200
        asyncio.run_coroutine_threadsafe(seed(b, clock), b.loop).result(SEED_TIMEOUT_S)
        yield b


def mm_ss(seconds: int) -> str:
    """As the page writes a duration under an hour (dom.js ``duration``)."""
    return f"{seconds // 60}:{seconds % 60:02d}"


def report_url(b: RunningBroker, **extra: str) -> str:
    q = {"token": token("hq"), "store": STORE, "from": DAY, "to": DAY, **extra}
    return f"{b.http}/hq/reports.html?{urlencode(q)}"


def the_report(b: RunningBroker) -> dict[str, Any]:
    with b.client(token("hq")) as hq:
        r = hq.get("/v1/reports/sos", params={"store": STORE, "from": DAY, "to": DAY})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_the_report_page_draws_every_figure_of_the_json(
    lunch_broker: RunningBroker, new_page: Any
) -> None:
    report = the_report(lunch_broker)
    kitchen_hours = [
        f for f in report["hours"] if f["station_id"] in KITCHEN and f["bump"]["count"]
    ]
    expo_hours = [f for f in report["hours"] if f["station_id"] == "expo" and f["serve"]["count"]]
    volume = {
        (r["hour"], r["channel"])
        for r in report["rows"]
        if r["station_id"] in KITCHEN and r["bump"]["count"]
    }
    hours = sorted({f["hour"] for f in report["hours"]})
    assert [h[11:16] for h in hours] == ["10:00", "11:00", "12:00", "13:00", "14:00"]  # store time
    assert len(kitchen_hours) == 15 and len(expo_hours) == 5  # fmt: skip

    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.goto(report_url(lunch_broker))
    expect(page.locator("body")).to_have_attribute("data-report", "ready")
    expect(page.locator("#chart-bump rect.bar")).to_have_count(len(kitchen_hours))
    expect(page.locator("#chart-volume rect.bar")).to_have_count(len(volume))
    expect(page.locator("#chart-serve rect.bar")).to_have_count(len(expo_hours))
    expect(page.locator("#chart-serve line.target")).to_have_count(1)
    expect(page.locator("#chart-bump .x-label")).to_have_text(
        ["10:00", "11:00", "12:00", "13:00", "14:00"]
    )
    for f in kitchen_hours:  # each bar is the hour's p50, each whisker its p90
        bar = page.locator(
            f"#chart-bump rect.bar[data-series='{f['station_id']}'][data-category='{f['hour']}']"
        )
        expect(bar).to_have_attribute("data-value", str(f["bump"]["p50_s"]))
        expect(bar.locator("title")).to_contain_text(f"(p90 {mm_ss(f['bump']['p90_s'])})")
    for hour in hours:  # the stacks add up to the tickets bumped in the hour
        total = sum(
            r["bump"]["count"]
            for r in report["rows"]
            if r["hour"] == hour and r["station_id"] in KITCHEN
        )
        values = page.locator(f"#chart-volume rect.bar[data-category='{hour}']").evaluate_all(
            "bars => bars.map(b => Number(b.dataset.value))"
        )
        assert sum(values) == total, hour
    served = next(s for s in report["stations"] if s["station_id"] == "expo")["serve"]
    expect(page.locator("#t-served .n")).to_have_text(str(served["count"]))
    expect(page.locator("#r-stations tbody tr")).to_have_count(len(report["stations"]))
    expect(page.locator("#r-status")).to_contain_text("Asia/Shanghai")
    assert page.js_errors == []
    save_screenshot(page, "sos-report.png", full_page=True)


def test_a_bad_range_shows_the_problem_and_csv_downloads(
    lunch_broker: RunningBroker, new_page: Any
) -> None:
    page = new_page(report_url(lunch_broker, **{"from": "2026-11-22", "to": "2026-11-20"}))
    expect(page.locator("body")).to_have_attribute("data-report", "error")
    expect(page.locator("#r-status")).to_contain_text("query.to: must be after from")
    page.fill("#r-from", DAY)
    page.fill("#r-to", DAY)
    page.click("#r-form button[type=submit]")
    expect(page.locator("body")).to_have_attribute("data-report", "ready")
    with page.expect_download() as info:
        page.click("#r-csv")
    download = info.value
    assert download.suggested_filename == f"sos-{STORE}-{DAY}.csv"
    with open(download.path(), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("store_id,station_id,hour,channel,start_count")
    assert len(lines) == 1 + len(the_report(lunch_broker)["rows"])
    assert page.js_errors == []


def test_the_dashboard_links_to_the_report(lunch_broker: RunningBroker, new_page: Any) -> None:
    """The report takes the dashboard's saved token and asks for a store once."""
    page = new_page(f"{lunch_broker.http}/hq/?{urlencode({'token': token('hq')})}")
    page.click("#to-reports")
    page.fill("#setup-store", STORE)
    page.click("form.setup button[type=submit]")
    expect(page.locator("body")).to_have_attribute("data-report", "ready")
    expect(page.locator("#r-empty")).to_be_visible()  # the last 7 days: the lunch was in 2026
    page.fill("#r-from", DAY)
    page.fill("#r-to", DAY)
    page.click("#r-form button[type=submit]")
    expect(page.locator("#chart-bump rect.bar").first).to_be_visible()
    assert "token=" not in page.url and f"store={STORE}" in page.url
    assert page.js_errors == []
