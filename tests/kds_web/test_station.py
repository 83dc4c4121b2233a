"""Station screen against a real broker in real Chromium (issue #6, done-when 1, 4, 5)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from tests.kds_web.helpers import Store, item, save_screenshot, station_config

BURGER = item(
    "1",
    "Double cheeseburger",
    "burgers",
    2,
    modifiers=["no onion", "extra pickles"],
    allergens=["gluten", "dairy"],
)
KUNG_PAO = item("2", "宫保鸡丁", note="少辣")
TEA = item("3", "Iced lemon tea", "drinks", 2)


def ticket_card(page: Any, order_id: str) -> Any:
    return page.locator(f"article.ticket[data-order='{order_id}']")


def live(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-link", "live")


def test_an_order_reaches_its_station_and_not_the_others(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    grill = new_page(store.kds_url("grill"))
    bar = new_page(store.kds_url("bar"))
    live(grill)
    live(bar)

    food = store.submit([BURGER, KUNG_PAO], pickup_code="42", channel="meituan", service="delivery")
    card = ticket_card(grill, food["order_id"])
    expect(card).to_be_visible()
    expect(card.locator(".number")).to_have_text("#42")
    expect(card.locator(".badge.channel")).to_have_text("Meituan")
    expect(card.locator(".badge.service")).to_have_text("Delivery")
    expect(card.locator(".line .name")).to_have_text(["Double cheeseburger", "宫保鸡丁"])
    expect(card.locator(".mod")).to_have_text(["no onion", "extra pickles"])
    expect(card.locator(".allergen")).to_have_text(["⚠ gluten", "⚠ dairy"])
    expect(card.locator(".line-note")).to_have_text("少辣")
    expect(card).to_have_class(re.compile(r"\btimer-ok\b"))  # 300 s thresholds here
    expect(grill.locator("#all-day li[data-item='宫保鸡丁'] .ad-qty")).to_have_text("1")

    # a drink-only order proves the bar screen is live; the food order never shows there
    drink = store.submit([TEA])
    expect(ticket_card(bar, drink["order_id"])).to_be_visible()
    expect(ticket_card(bar, food["order_id"])).to_have_count(0)
    expect(ticket_card(grill, drink["order_id"])).to_have_count(0)
    assert grill.js_errors == [] and bar.js_errors == []


def test_bump_by_click_and_keyboard_recall_and_a_mirror_screen(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    a = new_page(store.kds_url("grill"))
    b = new_page(store.kds_url("grill"))
    live(a)
    live(b)
    first = store.submit([BURGER, {**KUNG_PAO, "name": "回锅肉"}], table="7")
    second = store.submit([KUNG_PAO], table="8")
    for page in (a, b):
        expect(ticket_card(page, first["order_id"])).to_be_visible()
        expect(ticket_card(page, second["order_id"])).to_be_visible()

    # start by key on A (card 1 is the oldest), B mirrors it
    a.keyboard.press("1")
    a.keyboard.press("s")
    expect(ticket_card(b, first["order_id"]).locator(".badge.cooking")).to_be_visible()

    # bump one line by keyboard on A (↓ picks the first line, b bumps it); B mirrors it
    a.keyboard.press("ArrowDown")
    a.keyboard.press("b")
    expect(ticket_card(b, first["order_id"]).locator(".line.st-ready .name")).to_have_text(
        "Double cheeseburger"
    )

    # bump a line by tapping it on B; A mirrors it
    ticket_card(b, second["order_id"]).locator(".line").first.click()
    expect(ticket_card(a, second["order_id"])).to_have_count(0)  # its only line: ticket ready
    expect(ticket_card(b, second["order_id"])).to_have_count(0)

    # bump by click on A
    ticket_card(a, first["order_id"]).locator("button.bump").click()
    expect(ticket_card(a, first["order_id"])).to_have_count(0)
    expect(ticket_card(b, first["order_id"])).to_have_count(0)
    expect(a.locator(".empty")).to_be_visible()

    # recall by key: the last bump comes back on both screens
    a.keyboard.press("r")
    expect(ticket_card(a, first["order_id"])).to_be_visible()
    expect(ticket_card(b, first["order_id"])).to_be_visible()

    # prioritize on B, A shows RUSH first; then bump by keyboard (Enter) on A
    third = store.submit([item("1", "Cheeseburger", "burgers")], table="9")
    expect(ticket_card(b, third["order_id"])).to_be_visible()
    ticket_card(b, third["order_id"]).locator("button.rush-btn").click()
    expect(ticket_card(a, third["order_id"]).locator(".badge.rush")).to_be_visible()
    expect(a.locator("article.ticket").first).to_have_attribute("data-order", third["order_id"])
    a.keyboard.press("1")
    a.keyboard.press("Enter")
    expect(ticket_card(a, third["order_id"])).to_have_count(0)
    expect(ticket_card(b, third["order_id"])).to_have_count(0)

    # the recall list on B names what A bumped (from the mirror's removals)
    b.locator("button.recall").click()
    expect(b.locator("#recall li[data-ticket]")).to_have_count(2)
    b.keyboard.press("Escape")
    assert a.js_errors == [] and b.js_errors == []


def test_an_amendment_is_highlighted_until_seen(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    page = new_page(store.kds_url("grill"))
    live(page)
    order = store.submit([BURGER, KUNG_PAO, {**KUNG_PAO, "line_id": "4", "name": "麻婆豆腐"}])
    card = ticket_card(page, order["order_id"])
    expect(card.locator(".line")).to_have_count(3)
    expect(card.locator(".line.changed")).to_have_count(0)

    store.amend(
        order["order_id"],
        {
            "add": [item("5", "Fries")],
            "change": [{"line_id": "1", "qty": 3}],
            "void": ["4"],
        },
    )
    expect(card.locator(".badge.amended")).to_be_visible()
    expect(card.locator(".line.chg-added .name")).to_have_text("Fries")
    expect(card.locator(".line.chg-changed .qty")).to_have_text("3×")
    expect(card.locator(".line.chg-voided .name")).to_have_text("麻婆豆腐")
    expect(card.locator(".chg-tag")).to_have_text(["CHANGED", "VOID", "+ ADDED"], ignore_case=False)

    card.locator(".card-head").click()  # the chef looked at it
    expect(card.locator(".line.changed")).to_have_count(0)
    expect(card.locator(".badge.amended")).to_have_count(0)
    assert page.js_errors == []


def test_timer_colours_follow_the_station_thresholds(store: Store, new_page: Any) -> None:
    store.configure(station_config(warn=1, late=2))
    page = new_page(store.kds_url("grill"))
    live(page)
    order = store.submit([BURGER])
    card = ticket_card(page, order["order_id"])
    expect(card).to_have_class(re.compile(r"\btimer-(ok|warn|late)\b"))
    expect(card).to_have_class(re.compile(r"\btimer-late\b"))
    late_colour = card.locator(".card-head").evaluate("e => getComputedStyle(e).backgroundColor")

    calm = new_page(store.kds_url("grill"))
    store.configure(station_config(warn=3600, late=7200))  # the next snapshot is calm again
    calm.reload()
    calm_card = ticket_card(calm, order["order_id"])
    expect(calm_card).to_have_class(re.compile(r"\btimer-ok\b"))
    ok_colour = calm_card.locator(".card-head").evaluate("e => getComputedStyle(e).backgroundColor")
    assert late_colour != ok_colour


def test_order_text_is_shown_as_text_never_as_html(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    page = new_page(store.kds_url("grill"))
    live(page)
    evil = "<img src=x onerror=alert(1)>"
    order = store.submit(
        [item("1", evil, modifiers=["<b>bold</b>"], note="<script>alert(2)</script>")],
        customer="<i>Eve</i>",
        note="<svg onload=alert(3)>",
        pickup_code="<u>7</u>",
    )
    card = ticket_card(page, order["order_id"])
    expect(card.locator(".line .name")).to_have_text(evil)
    expect(card.locator(".mod")).to_have_text("<b>bold</b>")
    expect(card.locator(".line-note")).to_have_text("<script>alert(2)</script>")
    expect(card.locator(".customer")).to_have_text("<i>Eve</i>")
    expect(card.locator(".order-note")).to_have_text("<svg onload=alert(3)>")
    expect(page.locator("#all-day")).to_contain_text(evil)
    assert card.locator("img, b, script, i, svg, u").count() == 0
    assert page.locator("#all-day img").count() == 0
    assert page.js_errors == []  # no alert() dialog, no error


def test_station_screenshot(store: Store, new_page: Any) -> None:
    store.configure(station_config(warn=3, late=6))
    page = new_page(store.kds_url("grill"))
    live(page)
    rush = store.submit(
        [BURGER, KUNG_PAO, TEA],
        channel="meituan",
        service="delivery",
        pickup_code="42",
        customer="Li",
        priority="rush",
        note="no cutlery",
    )
    # let the first ticket go late and the second go amber, so the picture shows all colours
    expect(ticket_card(page, rush["order_id"])).to_have_class(re.compile(r"\btimer-late\b"))
    second = store.submit(
        [
            item("1", "麻婆豆腐", qty=2, modifiers=["extra spicy 加辣"]),
            item("2", "Beef noodles 牛肉面"),
            item("3", "Spring rolls", qty=3, course=2),
        ],
        table="12",
    )
    expect(ticket_card(page, second["order_id"])).to_have_class(re.compile(r"\btimer-warn\b"))
    third = store.submit(
        [item("1", "回锅肉"), item("2", "Fried rice", qty=2, allergens=["egg"])],
        channel="eleme",
        service="pickup",
        pickup_code="A17",
        customer="王先生",
    )
    store.submit(
        [item("1", "Chicken burger", "burgers", modifiers=["no mayo"])],
        channel="kiosk",
        service="takeout",
        pickup_code="318",
    )
    store.amend(third["order_id"], {"add": [item("3", "鱼香肉丝")]})
    expect(page.locator("article.ticket")).to_have_count(4)
    expect(page.locator(".line.chg-added")).to_have_count(1)
    page.keyboard.press("2")
    page.keyboard.press("s")
    expect(page.locator("article.ticket.selected .badge.cooking")).to_be_visible()
    page.mouse.move(0, 0)
    save_screenshot(page, "kds-station.png")


def test_paging_sound_and_a_custom_key_map(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    page = new_page(store.kds_url("grill", keys="bump:b+Space,next:n"))
    live(page)
    expect(page.locator(".tb-btn.sound")).to_have_text("♪ tap for sound")
    orders = [store.submit([item("1", f"Dish {n}"), item("2", "宫保鸡丁")]) for n in range(12)]
    expect(page.locator("article.ticket[data-order]").first).to_have_attribute(
        "data-order", orders[0]["order_id"]
    )
    expect(page.locator(".pager")).not_to_have_text("1 / 1")
    page_one = page.locator("article.ticket").evaluate_all("cs => cs.map(c => c.dataset.order)")
    assert 0 < len(page_one) < 12

    page.keyboard.press("n")  # custom "next page" key
    expect(page.locator(".pager")).to_have_text(re.compile(r"^2 / \d+$"))
    page_two = page.locator("article.ticket").evaluate_all("cs => cs.map(c => c.dataset.order)")
    assert page_two and not set(page_one) & set(page_two)
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".pager")).to_have_text(re.compile(r"^1 / \d+$"))

    # the first key press unlocked sound; "m" mutes
    expect(page.locator(".tb-btn.sound")).to_have_text("♪ on")
    page.keyboard.press("m")
    expect(page.locator(".tb-btn.sound")).to_have_text("♪ muted")

    page.keyboard.press("1")
    page.keyboard.press("b")  # custom bump key (the default line-bump key, taken over)
    expect(ticket_card(page, orders[0]["order_id"])).to_have_count(0)
    assert page.js_errors == []


def test_a_screen_without_settings_asks_for_them(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    page = new_page(f"{store.broker.http}/kds/")
    expect(page.locator("form.setup")).to_be_visible()
    expect(page.locator("#setup-ws")).to_have_count(0)  # the broker says where (§8.4)
    params = parse_qs(urlsplit(store.kds_url("bar")).query)
    for name in ("store", "station", "token"):
        page.locator(f"#setup-{name}").fill(params[name][0])
    page.locator("form.setup button").click()
    live(page)
    expect(page.locator(".topbar .title")).to_have_text("Bar")
    page.goto(f"{store.broker.http}/kds/")  # remembered on this device
    live(page)
    expect(page.locator(".topbar .title")).to_have_text("Bar")
