"""Expo screen: every station's progress per order, bump → served (issue #6, done-when 1, 5)."""

from __future__ import annotations

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
