"""The station screen uses its screen (issue 17, done-when 5): cards flow into every row
that fits before a page is added, a ticket too tall for the room left continues in the
next column, and a page never hides a ticket that would fit. 1280×800, real Chromium."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.kds_web.helpers import Store, item, save_screenshot, station_config

#: Six two-line tickets as the demo makes them: tables and customers, modifiers, notes,
#: allergens, Chinese and English names.
SIX_TWO_LINE: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
    ([item("1", "Double cheeseburger", "burgers", 2), item("2", "宫保鸡丁", allergens=["peanut"])],
     {"table": "12"}),
    ([item("1", "Chicken burger", "burgers", modifiers=["spicy"]), item("2", "Fries", qty=2)],
     {"channel": "kiosk", "service": "takeout", "customer": "Alex", "pickup_code": "103"}),
    ([item("1", "宫保鸡丁", qty=3, note="少辣"), item("2", "Beef noodle soup")], {"table": "7"}),
    ([item("1", "Beef noodle soup", modifiers=["no coriander"]), item("2", "春卷", qty=2)],
     {"channel": "eleme", "service": "pickup", "customer": "王先生", "pickup_code": "A17"}),
    ([item("1", "Chicken burger", "burgers", 2), item("2", "麻婆豆腐")], {"table": "3"}),
    ([item("1", "麻婆豆腐", modifiers=["微辣"], allergens=["soy"]), item("2", "Caesar salad")],
     {"channel": "meituan", "service": "delivery", "customer": "Li", "pickup_code": "42"}),
]  # fmt: skip

#: What the chef sees: every card piece's box, its ticket, and whether it goes on.
PIECES = """() => Array.from(document.querySelectorAll('#cards article.card')).map(c => {
  const r = c.getBoundingClientRect();
  return {id: c.dataset.order || c.dataset.cont, cont: c.classList.contains('cont'),
          goesOn: !!c.querySelector('.cont-next'), left: r.left, top: r.top,
          right: r.right, bottom: r.bottom, height: r.height};
})"""
#: The room left at the foot of each column of cards (what another card could use).
ROOM_LEFT = """() => {
  const area = document.querySelector('#cards').getBoundingClientRect();
  return Array.from(document.querySelectorAll('#cards .column')).map(col => {
    const last = col.lastElementChild.getBoundingClientRect();
    return area.bottom - 10 - last.bottom - 10;  // the area's padding, the gap between cards
  });
}"""


def live(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-link", "live")


def on_screen(piece: dict[str, Any]) -> bool:
    return (
        piece["left"] >= 0
        and piece["top"] >= 56  # under the top bar
        and piece["right"] <= 1280 - 230  # left of the all-day list
        and piece["bottom"] <= 800
    )


def test_six_two_line_tickets_all_show_on_page_one(store: Store, new_page: Any) -> None:
    store.configure(station_config())
    page = new_page(store.kds_url("grill"))
    live(page)
    assert page.viewport_size == {"width": 1280, "height": 800}
    orders = [store.submit(items, **fields) for items, fields in SIX_TWO_LINE]
    expect(page.locator(".count")).to_have_text("6 tickets")
    expect(page.locator(".pager")).to_have_text("1 / 1")
    expect(page.locator("article.ticket")).to_have_count(6)
    pieces = page.evaluate(PIECES)
    assert {p["id"] for p in pieces} == {o["order_id"] for o in orders}
    assert all(on_screen(p) for p in pieces), pieces
    for card in page.locator("article.ticket").all():
        expect(card).to_be_in_viewport(ratio=1)
    assert page.js_errors == []


def test_a_tall_ticket_continues_in_the_next_columns_instead_of_a_new_page(
    store: Store, new_page: Any
) -> None:
    """As a new user saw it: three tickets in a row, a fourth too tall for the room under
    any of them went to page 2 and left two thirds of the screen empty."""
    store.configure(station_config())
    page = new_page(store.kds_url("grill"))
    live(page)
    for n in range(1, 4):
        store.submit([item("1", f"Dish {n}"), item("2", "宫保鸡丁")], table=str(n))
    lines = [
        item(str(k), f"Noodles {k}", modifiers=["no onion", "extra sauce"], allergens=["gluten"])
        for k in range(1, 7)
    ]
    tall = store.submit(lines, table="4")
    expect(page.locator(".count")).to_have_text("4 tickets")
    expect(page.locator(".pager")).to_have_text("1 / 1")
    pieces = [p for p in page.evaluate(PIECES) if p["id"] == tall["order_id"]]
    assert len(pieces) > 1 and not pieces[0]["cont"] and all(p["cont"] for p in pieces[1:])
    assert [p["goesOn"] for p in pieces] == [True] * (len(pieces) - 1) + [False]
    assert [p["left"] for p in pieces] == sorted(p["left"] for p in pieces)  # left to right
    assert all(on_screen(p) for p in page.evaluate(PIECES))
    names = page.locator(
        f"[data-order='{tall['order_id']}'] .name, [data-cont='{tall['order_id']}'] .name"
    )
    expect(names).to_have_text([f"Noodles {k}" for k in range(1, 7)])  # every line, once

    page.mouse.move(0, 0)
    save_screenshot(page, "kds-station-continued.png")

    page.keyboard.press("4")  # its number selects all of it ...
    expect(page.locator(f"[data-cont='{tall['order_id']}'].selected")).to_have_count(
        len(pieces) - 1
    )
    page.locator(f"[data-cont='{tall['order_id']}'] .line").last.click()  # ... a line bumps ...
    expect(page.locator(".line.st-ready .name")).to_have_text("Noodles 6")
    page.locator(f"[data-cont='{tall['order_id']}'] button.bump").click()  # ... and the card
    expect(page.locator(f"[data-order='{tall['order_id']}']")).to_have_count(0)
    expect(page.locator(".cont")).to_have_count(0)
    assert page.js_errors == []


def test_with_many_tickets_page_two_holds_only_what_page_one_had_no_room_for(
    store: Store, new_page: Any
) -> None:
    store.configure(station_config())
    page = new_page(store.kds_url("grill"))
    live(page)
    heavy = dict(modifiers=["no onion", "extra pickles"], allergens=["gluten", "dairy"])
    orders = [
        store.submit([item("1", "Double cheeseburger", "burgers", 3, allergens=["gluten"]),
                      item("2", "宫保鸡丁", qty=3, allergens=["peanut"])], table="12"),
        store.submit([item("1", "宫保鸡丁", allergens=["peanut"])],
                     channel="kiosk", service="takeout", customer="Alex", pickup_code="103"),
        store.submit([item("1", "Chicken burger", "burgers", 3, modifiers=["no mayo", "spicy"],
                           allergens=["gluten", "egg"])], table="19", note="no cutlery"),
        store.submit([item("1", "麻婆豆腐", allergens=["soy"])], channel="ubereats",
                     service="delivery", customer="Kenji", note="ring the bell", pickup_code="106"),
        store.submit([item("1", "宫保鸡丁", allergens=["peanut"]),
                      item("2", "Double cheeseburger", "burgers", 2, **heavy),
                      item("3", "宫保鸡丁", qty=2, modifiers=["不要花生", "少辣"])], table="17"),
        store.submit([item("1", "麻婆豆腐", qty=3, modifiers=["微辣"], allergens=["soy"])],
                     table="20"),
    ] + [
        store.submit([item("1", f"Dish {n}", **heavy), item("2", "Beef noodle soup", **heavy)],
                     table=str(30 + n))
        for n in range(8)
    ]  # fmt: skip
    expect(page.locator(".count")).to_have_text(f"{len(orders)} tickets")
    expect(page.locator(".pager")).not_to_have_text("1 / 1")
    first = page.evaluate(PIECES)
    assert orders[0]["order_id"] in {p["id"] for p in first}  # the oldest is on page 1
    assert all(on_screen(p) for p in first), first
    room = max(page.evaluate(ROOM_LEFT))

    page.keyboard.press("ArrowRight")
    expect(page.locator(".pager")).to_have_text("2 / " + page.locator(".pager").inner_text()[-1])
    second = page.evaluate(PIECES)
    assert second and not {p["id"] for p in second if not p["cont"]} & {p["id"] for p in first}
    whole = [p for p in second if not p["cont"] and not p["goesOn"]]
    assert whole and all(p["height"] > room for p in whole), (room, whole)
    assert page.js_errors == []
