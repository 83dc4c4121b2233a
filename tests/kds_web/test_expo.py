"""Expo screen: every station's progress per order, bump → served (issue #6, done-when 1, 5)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from tests.kds_web.helpers import Store, save_screenshot, station_config
from tests.kds_web.test_station import BURGER, KUNG_PAO, TEA, live, ticket_card


def expo_card(page: Any, order_id: str) -> Any:
    return page.locator(f"article.expo-order[data-order='{order_id}']")


def station_row(page: Any, order_id: str, station: str) -> Any:
    return expo_card(page, order_id).locator(f".station-row[data-station='{station}']")


def test_expo_shows_each_stations_progress_and_serves(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    expo = new_page(store.kds_url("expo", expo=True))
    grill = new_page(store.kds_url("grill"))
    bar = new_page(store.kds_url("bar"))
    for page in (expo, grill, bar):
        live(page)
    expect(expo.locator(".topbar .title")).to_have_text("Expo")

    order = store.submit([BURGER, TEA], pickup_code="77", channel="miniprogram")
    card = expo_card(expo, order["order_id"])
    expect(card.locator(".number")).to_have_text("#77")
    expect(station_row(expo, order["order_id"], "grill")).to_have_class("station-row st-new")
    expect(station_row(expo, order["order_id"], "bar")).to_have_class("station-row st-new")
    expect(card.locator(".badge.progress")).to_have_text("0/2")

    ticket_card(grill, order["order_id"]).locator("button.bump").click()
    expect(station_row(expo, order["order_id"], "grill")).to_have_class("station-row st-ready")
    expect(card.locator(".badge.progress")).to_have_text("1/2")
    expect(card.locator(".all-ready")).to_have_count(0)

    bar.keyboard.press("1")
    bar.keyboard.press("Enter")
    expect(station_row(expo, order["order_id"], "bar")).to_have_class("station-row st-ready")
    expect(card.locator(".all-ready")).to_be_visible()

    # expo bump (keyboard) marks it served: it leaves the screen, and stays gone on reload
    expo.keyboard.press("1")
    expo.keyboard.press("Enter")
    expect(card).to_have_count(0)
    expo.reload()
    live(expo)
    expect(expo.locator(".empty")).to_be_visible()
    expect(card).to_have_count(0)
    assert expo.js_errors == [] and grill.js_errors == [] and bar.js_errors == []


def test_expo_screenshot(store: Store, new_page: Any) -> None:
    store.configure(station_config(warn=240, late=480))
    expo = new_page(store.kds_url("expo", expo=True))
    grill = new_page(store.kds_url("grill"))
    bar = new_page(store.kds_url("bar"))
    for page in (expo, grill, bar):
        live(page)
    a = store.submit(
        [BURGER, TEA],
        pickup_code="42",
        channel="meituan",
        service="delivery",
        customer="Li",
        priority="rush",
    )
    b = store.submit([KUNG_PAO, {**TEA, "name": "酸梅汤"}], table="12")
    c = store.submit(
        [{**KUNG_PAO, "name": "麻婆豆腐"}],
        pickup_code="A17",
        channel="eleme",
        service="pickup",
        customer="王先生",
    )
    d = store.submit([TEA], pickup_code="318", channel="kiosk", service="takeout")
    for o in (a, b, c, d):
        expect(expo_card(expo, o["order_id"])).to_be_visible()
    ticket_card(grill, a["order_id"]).locator("button.bump").click()
    ticket_card(bar, a["order_id"]).locator("button.bump").click()
    ticket_card(grill, b["order_id"]).locator("button.start").click()
    ticket_card(bar, b["order_id"]).locator("button.bump").click()
    ticket_card(grill, c["order_id"]).locator("button.start").click()
    expect(expo_card(expo, a["order_id"]).locator(".all-ready")).to_be_visible()
    expect(station_row(expo, b["order_id"], "bar")).to_have_class("station-row st-ready")
    expect(station_row(expo, b["order_id"], "grill")).to_have_class("station-row st-in_progress")
    expect(station_row(expo, c["order_id"], "grill")).to_have_class("station-row st-in_progress")
    expo.mouse.move(0, 0)
    save_screenshot(expo, "kds-expo.png")


def test_expo_lists_scheduled_orders_and_fires_one_now(store: Store, new_page: Any) -> None:
    """Issue 17: held orders are on expo as "scheduled" with their fire time, next first;
    "Fire now" (press twice: tap or F) sends one to the stations at once."""
    config = station_config()
    for st in config["stations"]:
        st["prep_s"] = {"grill": 480, "bar": 60}.get(st["station_id"])
    store.configure(config)
    expo = new_page(store.kds_url("expo", expo=True))
    grill = new_page(store.kds_url("grill"))
    for page in (expo, grill):
        live(page)
    now = datetime.now(UTC)
    later = store.submit(
        [BURGER, TEA], pickup_code="88", due_at=(now + timedelta(hours=1)).isoformat()
    )
    soon = store.submit(
        [KUNG_PAO], pickup_code="21", due_at=(now + timedelta(minutes=40)).isoformat()
    )
    assert later["fire_at"] and soon["fire_at"]
    rows = expo.locator("#scheduled .sched-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-order", soon["order_id"])  # fires first
    expect(rows.nth(0).locator(".number")).to_have_text("#21")
    expect(rows.nth(0).locator(".fires")).to_have_text(re.compile(r"^fires \d\d:\d\d$"))
    expect(rows.nth(0).locator(".countdown")).to_have_text(re.compile(r"^in 3\d:\d\d$"))
    expect(expo.locator(".topbar .count")).to_have_text("0 orders")  # none open yet
    expect(ticket_card(grill, soon["order_id"])).to_have_count(0)

    fire = rows.nth(0).locator("button.fire")
    fire.click()
    expect(fire).to_have_text("Fire now? ✓")  # armed: a second press sends it
    fire.click()
    expect(expo_card(expo, soon["order_id"])).to_be_visible()
    expect(ticket_card(grill, soon["order_id"])).to_be_visible()
    expect(rows).to_have_count(1)
    expo.mouse.move(0, 0)
    save_screenshot(expo, "kds-expo-scheduled.png")

    expo.keyboard.press("f")
    expo.keyboard.press("f")
    expect(expo.locator("#scheduled")).to_be_hidden()
    expect(expo_card(expo, later["order_id"])).to_be_visible()
    expect(ticket_card(grill, later["order_id"])).to_be_visible()
    assert expo.js_errors == [] and grill.js_errors == []
