"""The station screen on a flaky link (issue #6, done-when 3): it shows a lost link, and
after reconnecting shows what arrived meanwhile, resumed from its offset, without a reload
and without doubles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kds_web.helpers import RunningBroker, Store, item, station_config, tell_ws
from tests.kds_web.netcut import CuttableProxy
from tests.kds_web.test_station import live, ticket_card


@pytest.fixture
def wifi(broker: RunningBroker) -> Iterator[tuple[CuttableProxy, CuttableProxy]]:
    """Both of the screen's paths to the broker (HTTP and websocket) through one 'Wi-Fi'."""
    http, ws = CuttableProxy(broker.http_port), CuttableProxy(broker.ws_port)
    yield http, ws
    http.close()
    ws.close()


def hellos(page: Any) -> list[dict[str, Any]]:
    """Every hello the page sends, in order (read off the websocket frames)."""
    sent: list[dict[str, Any]] = []

    def on_ws(ws: Any) -> None:
        def on_frame(payload: Any) -> None:
            if isinstance(payload, str) and '"hello"' in payload:
                sent.append(json.loads(payload))

        ws.on("framesent", on_frame)

    page.on("websocket", on_ws)
    return sent


def test_a_cut_link_shows_and_resumes_without_reload_or_doubles(
    store: Store, new_page: Any, wifi: tuple[CuttableProxy, CuttableProxy]
) -> None:
    http, ws = wifi
    store.configure(station_config())
    before = store.submit([item("1", "宫保鸡丁")], table="1")

    page = new_page()
    sent = hellos(page)
    tell_ws(page, f"ws://127.0.0.1:{ws.port}")
    page.goto(store.kds_url("grill").replace(store.broker.http, f"http://127.0.0.1:{http.port}"))
    live(page)
    expect(ticket_card(page, before["order_id"])).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    assert sent[0]["resume"] is None

    http.hold()
    ws.hold()
    expect(page.locator("body")).to_have_attribute("data-link", "lost")
    expect(page.locator("#link-bar")).to_contain_text("LINK LOST")
    expect(page.locator("#link")).to_have_text("✕ OFFLINE")
    meanwhile = [store.submit([item("1", f"Dumplings {n}")], table=str(10 + n)) for n in range(2)]

    http.restore()
    ws.restore()
    live(page)
    for order in [before, *meanwhile]:
        expect(ticket_card(page, order["order_id"])).to_have_count(1)
    expect(page.locator("article.ticket")).to_have_count(3)
    expect(page.locator("#link-bar")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    resumed = sent[-1]["resume"]
    assert resumed is not None and resumed["epoch"] and resumed["offset"] > 0

    # a page coming back from sleep asks for a full snapshot; still no doubles
    page.evaluate("window.passline.link.wake()")
    live(page)
    later = store.submit([item("1", "Spring rolls")], table="20")
    expect(ticket_card(page, later["order_id"])).to_have_count(1)
    assert sent[-1]["resume"] is None
    expect(page.locator("article.ticket")).to_have_count(4)
    assert page.js_errors == []


def test_a_refused_token_is_shown_not_hidden(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    url = store.kds_url("grill").replace("token=", "token=not-a-token-")
    page = new_page(url)
    expect(page.locator("body")).to_have_attribute("data-link", "refused")
    expect(page.locator("#link")).to_have_text("✕ REFUSED")
    expect(page.locator("#link-bar")).to_contain_text("refused this screen")
    assert page.js_errors == []


def test_an_action_taken_offline_shows_at_once_and_reaches_the_broker_later(
    store: Store, new_page: Any, wifi: tuple[CuttableProxy, CuttableProxy]
) -> None:
    http, ws = wifi
    store.configure(station_config())
    order = store.submit([item("1", "宫保鸡丁")], table="3")
    mirror = new_page(store.kds_url("grill"))  # on the wired network
    page = new_page()
    tell_ws(page, f"ws://127.0.0.1:{ws.port}")
    page.goto(store.kds_url("grill").replace(store.broker.http, f"http://127.0.0.1:{http.port}"))
    live(page)
    live(mirror)
    expect(ticket_card(page, order["order_id"])).to_be_visible()

    http.hold()
    ws.hold()
    expect(page.locator("body")).to_have_attribute("data-link", "lost")
    ticket_card(page, order["order_id"]).locator("button.bump").click()
    expect(ticket_card(page, order["order_id"])).to_have_count(0)  # at once, on this screen
    expect(page.locator(".pending-count")).to_have_text("1 waiting to send")
    expect(ticket_card(mirror, order["order_id"])).to_be_visible()  # not at the broker yet

    http.restore()
    ws.restore()
    live(page)
    expect(ticket_card(mirror, order["order_id"])).to_have_count(0)
    expect(page.locator(".pending-count")).to_have_text("")
    expect(ticket_card(page, order["order_id"])).to_have_count(0)
    assert page.js_errors == [] and mirror.js_errors == []
