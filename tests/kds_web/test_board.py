"""The customer pickup board, /board/ (issue 17 done-when 3; docs/kds.md#pickup-board):
an order shows under Preparing, moves to Ready when expo bumps (serves) it — or, in a
store without an expo station, when every station has bumped it — with a bell, and
clears: a cancelled order at once, a ready one ``ready_s`` after it turned ready on the
broker's clock. The board shows numbers, never items or (unless configured) names."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kds_web.conftest import broker_thread
from tests.kds_web.helpers import (
    RunningBroker,
    SteppingClock,
    Store,
    save_screenshot,
    station_config,
)
from tests.kds_web.test_expo import expo_card
from tests.kds_web.test_station import BURGER, KUNG_PAO, TEA, live, ticket_card

_ids = itertools.count(1)


@pytest.fixture
def clocked() -> Iterator[tuple[RunningBroker, SteppingClock]]:
    """A broker of the test's own whose wall clock the test moves."""
    clock = SteppingClock()
    with broker_thread(now=clock) as b:
        yield b, clock


@pytest.fixture
def clocked_store(clocked: tuple[RunningBroker, SteppingClock]) -> Iterator[Store]:
    s = Store(clocked[0], f"s-board-{os.getpid()}-{next(_ids)}", itertools.count(1))
    yield s
    s.close()


def number(board: Any, column: str, order_id: str) -> Any:
    return board.locator(f"#{column} .num[data-order='{order_id}']")


def chimes(board: Any) -> int:
    return int(board.evaluate("window.passline.board.chimes"))


def private_text_absent(board: Any, *texts: str) -> None:
    shown = board.locator("body").inner_text()
    for text in texts:
        assert text not in shown, text


def test_preparing_then_ready_when_expo_bumps_then_clears(
    clocked: tuple[RunningBroker, SteppingClock], clocked_store: Store, new_page: Any
) -> None:
    store, clock = clocked_store, clocked[1]
    store.configure(station_config())
    board = new_page(store.board_url())
    expo = new_page(store.kds_url("expo", expo=True))
    grill = new_page(store.kds_url("grill"))
    bar = new_page(store.kds_url("bar"))
    for page in (board, expo, grill, bar):
        live(page)
    expect(board.locator(".board-title")).to_have_text("Test Noodle House")
    expect(board.locator(".col-preparing .board-heading")).to_have_text("Preparing制作中")

    order = store.submit([BURGER, TEA], pickup_code="42", customer="Li", note="no cutlery")
    oid = order["order_id"]
    expect(number(board, "preparing", oid)).to_have_text("42")
    expect(number(board, "ready", oid)).to_have_count(0)

    # every station done: expo has it as ready to serve, the guest still waits
    ticket_card(grill, oid).locator("button.bump").click()
    ticket_card(bar, oid).locator("button.bump").click()
    expect(expo_card(expo, oid).locator(".all-ready")).to_be_visible()
    expect(number(board, "preparing", oid)).to_be_visible()
    assert chimes(board) == 0

    expo.keyboard.press("1")  # expo bumps it: served, ready for the guest
    expo.keyboard.press("Enter")
    expect(expo_card(expo, oid)).to_have_count(0)
    expect(number(board, "ready", oid)).to_have_text("42")
    expect(number(board, "ready", oid)).to_have_class("num fresh")
    expect(number(board, "preparing", oid)).to_have_count(0)
    assert chimes(board) == 1
    private_text_absent(board, "Li", "Double cheeseburger", "Iced lemon tea", "no cutlery")

    # nobody marks it collected: it leaves ready_s (600 s) after expo served it, as the
    # broker's clock tells (the board takes the time from each snapshot)
    clock.step(timedelta(seconds=590))
    board.evaluate("window.passline.link.reconnect('test')")
    live(board)
    expect(number(board, "ready", oid)).to_be_visible()
    clock.step(timedelta(seconds=20))
    board.evaluate("window.passline.link.reconnect('test')")
    live(board)
    expect(number(board, "ready", oid)).to_have_count(0)
    expect(board.locator(".num")).to_have_count(0)
    assert chimes(board) == 1
    assert board.js_errors == [] and expo.js_errors == []


def test_without_expo_ready_when_every_station_bumped(store: Store, new_page: Any) -> None:
    config = station_config()
    config["stations"] = [s for s in config["stations"] if not s.get("expo")]
    store.configure(config)
    order = store.submit([BURGER, TEA], pickup_code="318")
    oid = order["order_id"]
    board = new_page(store.board_url())
    grill = new_page(store.kds_url("grill"))
    bar = new_page(store.kds_url("bar"))
    for page in (board, grill, bar):
        live(page)
    expect(number(board, "preparing", oid)).to_have_text("318")
    ticket_card(grill, oid).locator("button.bump").click()
    expect(ticket_card(grill, oid)).to_have_count(0)
    expect(number(board, "preparing", oid)).to_be_visible()  # the bar is still on it
    ticket_card(bar, oid).locator("button.bump").click()
    expect(number(board, "ready", oid)).to_have_text("318")
    assert chimes(board) == 1
    board.reload()  # a board started now finds it in the recent stream; no second bell
    live(board)
    expect(number(board, "ready", oid)).to_have_text("318")
    assert chimes(board) == 0
    assert board.js_errors == []


def test_names_only_when_configured_and_a_cancelled_order_leaves_at_once(
    store: Store, new_page: Any
) -> None:
    store.configure({**station_config(), "board": {"names": True}})
    board = new_page(store.board_url(lang="zh"))
    live(board)
    expect(board.locator(".col-ready .board-heading")).to_have_text("请取餐")
    order = store.submit([KUNG_PAO], pickup_code="A17", customer="王先生", service="pickup")
    oid = order["order_id"]
    expect(number(board, "preparing", oid).locator(".n")).to_have_text("A17")
    expect(number(board, "preparing", oid).locator(".who")).to_have_text("王先生")
    private_text_absent(board, "宫保鸡丁", "少辣")
    r = store.ingest.post(f"/v1/orders/{oid}/cancel", json={})
    assert r.status_code == 200, r.text
    expect(number(board, "preparing", oid)).to_have_count(0)
    assert board.js_errors == []


def test_board_screenshot(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    board = new_page(store.board_url())
    expo = new_page(store.kds_url("expo", expo=True))
    grill = new_page(store.kds_url("grill"))
    bar = new_page(store.kds_url("bar"))
    for page in (board, expo, grill, bar):
        live(page)
    codes = ["318", "42", "A17", "7", "25", "106", "88", "51"]
    orders = [store.submit([KUNG_PAO, TEA], pickup_code=c) for c in codes]
    for o in orders[:4]:  # the first four are ready (served by expo), the rest preparing
        ticket_card(grill, o["order_id"]).locator("button.bump").click()
        ticket_card(bar, o["order_id"]).locator("button.bump").click()
        expect(expo_card(expo, o["order_id"]).locator(".all-ready")).to_be_visible()
        expo_card(expo, o["order_id"]).locator("button.bump").click()
        expect(number(board, "ready", o["order_id"])).to_be_visible()
    expect(board.locator("#preparing .num")).to_have_count(4)
    expect(board.locator("#ready .num")).to_have_count(4)
    board.mouse.move(0, 0)
    save_screenshot(board, "board.png")
