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


def test_with_the_uplink_cut_a_screen_on_the_edge_keeps_working_in_local_mode(
    broker: RunningBroker, store: Store, site: Site, new_page: Any
) -> None:
    """Issue 15, done-when 1 and 2 for screens: with the uplink cut, the screen on the edge
    says "local mode", shows what it showed and the orders the edge takes on the LAN, and
    bumps work; when the uplink is back, the broker has the bumps and the screen is back
    on the broker."""
    from tests.faults.proxy import LinkProxy

    store.configure(station_config())
    proxy = LinkProxy(broker.ws_port)
    try:
        client = site.store_client(
            f"ws://127.0.0.1:{proxy.port}",
            store.store_id,
            token("store", store=store.store_id),
            lan=True,
        )
        assert client.lan_port is not None
        before = store.submit([BURGER], table="5")  # the cloud's, before the cut
        edge = new_page(on_edge(store.kds_url("grill"), client.lan_port))
        body = edge.locator("body")
        expect(body).to_have_attribute("data-link", "live")
        expect(body).to_have_attribute("data-local", "no")
        expect(ticket_card(edge, before["order_id"])).to_be_visible()

        proxy.stall()
        proxy.cut()
        expect(body).to_have_attribute("data-local", "yes", timeout=30_000)
        expect(edge.locator("#link-bar")).to_contain_text("LOCAL MODE")
        expect(ticket_card(edge, before["order_id"])).to_be_visible()  # what it showed

        lan_order = {
            "store_id": store.store_id, "channel": "pos", "external_id": "LAN-1",
            "service": "dine_in", "placed_at": "2026-11-29T12:00:00+00:00", "items": [NOODLES],
        }  # fmt: skip
        r = httpx.post(
            f"http://127.0.0.1:{client.lan_port}/v1/orders",
            json=lan_order,
            headers={"Authorization": f"Bearer {token('store', store=store.store_id)}"},
        )
        assert r.status_code == 401  # site clients link with their own token: use it
        r = httpx.post(
            f"http://127.0.0.1:{client.lan_port}/v1/orders",
            json=lan_order,
            headers={"Authorization": f"Bearer {client.settings.token}"},
        )
        assert r.status_code == 202, r.text
        lan_id = r.json()["order_id"]
        expect(ticket_card(edge, lan_id)).to_be_visible()
        ticket_card(edge, lan_id).locator("button.bump").click()  # bumped offline
        expect(ticket_card(edge, lan_id)).to_have_count(0)
        ticket_card(edge, before["order_id"]).locator("button.bump").click()
        expect(ticket_card(edge, before["order_id"])).to_have_count(0)

        proxy.resume()
        expect(body).to_have_attribute("data-local", "no", timeout=60_000)  # back on the broker
        expect(ticket_card(edge, lan_id)).to_have_count(0)
        expect(ticket_card(edge, before["order_id"])).to_have_count(0)
        for order_id in (lan_id, before["order_id"]):
            view = store.hq.get(f"/v1/orders/{order_id}").json()
            assert [t["state"] for t in view["tickets"]] == ["ready"], view["tickets"]
        cloud = new_page(store.kds_url("grill"))
        expect(cloud.locator("body")).to_have_attribute("data-link", "live")
        expect(ticket_card(cloud, lan_id)).to_have_count(0)
        assert edge.js_errors == [] and cloud.js_errors == []
    finally:
        proxy.close()
