"""The station screen shows the store's wall-clock time (DESIGN.md §8.7, issue 17), not
the time zone the tablet happens to be set to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kds_web.helpers import TIMEOUT_MS, Store, item, station_config


@pytest.fixture
def new_york_tablet(browser: Any) -> Iterator[Any]:
    """A page on a device set to New York time, where 07:46 UTC is 02:46."""
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id="America/New_York"
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    yield page
    ctx.close()


def test_due_times_show_in_the_stores_zone_whatever_the_device_says(
    store: Store, new_york_tablet: Any
) -> None:
    store.configure({**station_config(), "timezone": "Asia/Shanghai"})
    page = new_york_tablet
    page.goto(store.kds_url("grill"))
    expect(page.locator("body")).to_have_attribute("data-link", "live")
    assert page.evaluate("new Date('2026-11-29T07:46:00Z').getHours()") == 2  # the device's
    order = store.submit(
        [item("1", "Beef noodles 牛肉面"), item("2", "宫保鸡丁")],
        placed_at="2026-11-29T07:16:00Z",
        due_at="2026-11-29T07:46:00Z",  # a channel's UTC stamp: 15:46 in Shanghai
        customer="Li",
    )
    card = page.locator(f"article.ticket[data-order='{order['order_id']}']")
    expect(card.locator(".due")).to_have_text("due 15:46")
    assert page.js_errors == []


def test_without_a_store_zone_the_screen_uses_the_brokers_default(
    store: Store, new_york_tablet: Any
) -> None:
    store.configure(station_config())  # no timezone: the broker's default, UTC here
    page = new_york_tablet
    page.goto(store.kds_url("grill"))
    expect(page.locator("body")).to_have_attribute("data-link", "live")
    order = store.submit([item("1", "Tea")], due_at="2026-11-29T07:46:00Z", customer="Li")
    card = page.locator(f"article.ticket[data-order='{order['order_id']}']")
    expect(card.locator(".due")).to_have_text("due 07:46")
