"""Issue 15, done-when 5: a kitchen screen loaded from the store edge (``--lan``) and one on
the broker show the same tickets, and a bump on either shows on both. Real broker, real
store client with its edge, real Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.kds_web.helpers import RunningBroker, Store, item, station_config, token

if TYPE_CHECKING:
    from tests.kds_web.site import Site

BURGER = item("1", "Double cheeseburger", "burgers")
NOODLES = item("2", "Dan dan noodles")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from tests.kds_web.site import Site

    s = Site(tmp_path)
    yield s
    s.close()


def ticket_card(page: Any, order_id: str) -> Any:
    return page.locator(f"article.ticket[data-order='{order_id}']")


def on_edge(url: str, lan_port: int) -> str:
    """The same screen URL, loaded from the store edge instead of the broker."""
    parts = urlsplit(url)
    return f"http://127.0.0.1:{lan_port}{parts.path}?{parts.query}"


def test_a_screen_on_the_edge_and_one_on_the_broker_show_and_bump_the_same_tickets(
    broker: RunningBroker, store: Store, site: Site, new_page: Any
) -> None:
    store.configure(station_config())
    client = site.store_client(
        broker.ws, store.store_id, token("store", store=store.store_id), lan=True
    )
    assert client.lan_port is not None
    config = httpx.get(f"http://127.0.0.1:{client.lan_port}/kds/config.json").json()
    assert config == {"ws": f"ws://127.0.0.1:{client.lan_port}"}  # the page stays on the LAN

    cloud = new_page(store.kds_url("grill"))
    edge = new_page(on_edge(store.kds_url("grill"), client.lan_port))
    for page in (cloud, edge):
        expect(page.locator("body")).to_have_attribute("data-link", "live")

    first = store.submit([BURGER], table="3")
    second = store.submit([NOODLES], table="4")
    for page in (cloud, edge):
        expect(ticket_card(page, first["order_id"])).to_be_visible()
        expect(ticket_card(page, second["order_id"])).to_be_visible()

    ticket_card(edge, first["order_id"]).locator("button.bump").click()  # bumped on the edge
    expect(ticket_card(cloud, first["order_id"])).to_have_count(0)
    expect(ticket_card(edge, first["order_id"])).to_have_count(0)
    ticket_card(cloud, second["order_id"]).locator("button.bump").click()  # on the broker
    expect(ticket_card(edge, second["order_id"])).to_have_count(0)
    expect(edge.locator(".empty")).to_be_visible()
    assert cloud.js_errors == [] and edge.js_errors == []


def test_a_screen_with_a_bad_token_on_the_edge_is_refused_by_the_broker(
    broker: RunningBroker, store: Store, site: Site, new_page: Any
) -> None:
    """The edge relays the screen's hello as it is: the broker checks the token, and its
    refusal reaches the page (no second, weaker check on the PC)."""
    store.configure(station_config())
    client = site.store_client(
        broker.ws, store.store_id, token("store", store=store.store_id), lan=True
    )
    assert client.lan_port is not None
    other = token("kds", store="s-someone-else")
    url = on_edge(store.kds_url("grill"), client.lan_port)
    page = new_page(re.sub(r"token=[^&]+", f"token={other}", url))
    expect(page.locator("body")).not_to_have_attribute("data-link", "live", timeout=3000)
    expect(page.locator("body")).to_contain_text(re.compile("not for this store|token"))
