"""HQ dashboard against a real broker, store clients and printer emulators (issue #6,
done-when 2, 4, 5)."""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from tests.kds_web.helpers import RunningBroker, Store, save_screenshot, token

if TYPE_CHECKING:
    from tests.kds_web.site import Site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """Emulated printers and real store clients."""
    from tests.kds_web.site import Site

    s = Site(tmp_path)
    yield s
    s.close()


def printer_config(store: Store, site: Site, names: list[str]) -> tuple[dict[str, Any], list[Any]]:
    emus = [site.printer(n) for n in names]
    printers = [
        {
            "printer_id": n.lower().replace(" ", "-"),
            "name": n,
            "transport": f"tcp://127.0.0.1:{e.port}",
        }
        for n, e in zip(names, emus, strict=True)
    ]
    config = {
        "name": f"Noodle House {store.store_id[-3:]}",
        "printers": printers,
        "stations": [
            {
                "station_id": "grill",
                "name": "Grill",
                "categories": ["mains"],
                "printer": printers[0]["printer_id"],
            }
        ],
    }
    return config, emus


def store_row(page: Any, store_id: str) -> Any:
    return page.locator(f".store[data-store='{store_id}']")


def printer_chip(page: Any, store_id: str, printer_id: str) -> Any:
    return store_row(page, store_id).locator(f".printer[data-printer='{printer_id}']")


def test_hq_shows_paper_out_and_its_recovery(
    broker: RunningBroker, store: Store, site: Site, new_page: Any
) -> None:
    config, (kitchen,) = printer_config(store, site, ["Hot line"])
    store.configure(config)
    page = new_page(store.hq_url())
    expect(page.locator("body")).to_have_attribute("data-link", "live")
    row = store_row(page, store.store_id)
    expect(row).to_have_class(re.compile(r"\bis-offline\b"))

    site.store_client(broker.ws, store.store_id, token("store", store=store.store_id))
    expect(row).not_to_have_class(re.compile(r"\bis-offline\b"))
    expect(row.locator(".store-link")).to_contain_text("online since")
    chip = printer_chip(page, store.store_id, "hot-line")
    expect(chip).to_have_attribute("data-state", "ready")

    site.set_state(kitchen, paper="out")
    expect(chip).to_have_attribute("data-state", "error")
    expect(chip.locator(".chip")).to_have_text(["paper out"])
    expect(chip.locator(".p-since")).to_contain_text("for ")
    expect(page.locator("#printers-error .n")).not_to_have_text("0")

    problems_only = page.locator("#problems-only")
    problems_only.check()
    expect(row).to_be_visible()
    problems_only.uncheck()

    site.set_state(kitchen, paper="ok")
    expect(chip).to_have_attribute("data-state", "ready")
    expect(chip.locator(".chip")).to_have_count(0)
    expect(page.locator("#printers-error .n")).to_have_text("0")
    problems_only.check()
    expect(row).to_have_count(0)  # a healthy store leaves the problems list
    assert page.js_errors == []


def test_hq_says_why_a_printer_is_refused_on_its_store_pc(
    broker: RunningBroker, store: Store, site: Site, new_page: Any, tmp_path: Path
) -> None:
    """Issue 14 point 3: a config naming a file on the cashier PC is refused there."""
    config, _ = printer_config(store, site, ["Hot line"])
    target = tmp_path / "passwd"
    config["printers"][0]["transport"] = f"file://{target}"
    store.configure(config)
    page = new_page(store.hq_url())
    site.store_client(broker.ws, store.store_id, token("store", store=store.store_id))
    chip = printer_chip(page, store.store_id, "hot-line")
    expect(chip).to_have_attribute("data-state", "offline")
    expect(chip.locator(".p-detail")).to_have_text(
        f"transport not allowed on this PC: file://{target} (see store-client --allow-transport)"
    )
    assert not target.exists()
    assert page.js_errors == []


def test_order_text_and_store_names_are_text_on_hq(
    broker: RunningBroker, store: Store, new_page: Any
) -> None:
    evil = "<img src=x onerror=alert(1)>"
    store.configure({"name": evil, "printers": [], "stations": []})
    page = new_page(store.hq_url())
    row = store_row(page, store.store_id)
    expect(row.locator(".store-name")).to_have_text(evil)
    assert row.locator("img").count() == 0
    assert page.js_errors == []


FLEET = [
    # (name, printers: (printer name, emulator fault or None = no printer at that address))
    ("Demo Noodle House 旗舰店", [("Hot line", {}), ("Bar", {}), ("Front", {})]),
    ("Dumpling Bar 南京西路", [("Kitchen", {}), ("Bar", {"paper": "near_end"})]),
    ("Burger Lab Xuhui", [("Grill", {"paper": "out"}), ("Front", {})]),
    ("Tea Corner 茶角", [("Drinks", {"cover_open": True}), ("Labels", None)]),
    ("Hotpot 火锅 Jing'an", [("Kitchen", {})]),
    ("Rice Bowl Pudong", [("Kitchen", {}), ("Front", {})]),
]
OFFLINE_STORES = {"Hotpot 火锅 Jing'an", "Rice Bowl Pudong"}


def test_hq_screenshot(private_broker: RunningBroker, site: Site, new_page: Any) -> None:
    page = new_page()
    stuck: Store | None = None
    for n, (name, printers) in enumerate(FLEET):
        store = Store(private_broker, f"s-{101 + n:04d}", itertools.count(1))
        emus = {p: site.printer(p) if fault is not None else None for p, fault in printers}
        config = {
            "name": name,
            "printers": [
                {
                    "printer_id": p.lower().replace(" ", "-"),
                    "name": p,
                    "transport": f"tcp://127.0.0.1:{emu.port if emu else closed_port()}",
                }
                for p, emu in emus.items()
            ],
            "stations": [
                {
                    "station_id": "grill",
                    "name": "Grill",
                    "categories": ["mains"],
                    "printer": printers[0][0].lower().replace(" ", "-"),
                }
            ],
        }
        store.configure(config)
        if name in OFFLINE_STORES:
            continue
        for p, fault in printers:
            if fault:
                site.set_state(emus[p], **fault)
        site.store_client(private_broker.ws, store.store_id, token("store", store=store.store_id))
        if name == "Burger Lab Xuhui":
            stuck = store
    page.goto(Store(private_broker, "s-0101", itertools.count(1)).hq_url())
    expect(page.locator("#stores-online .n")).to_have_text("4")
    expect(page.locator("#printers-error .n")).to_have_text("2")
    expect(page.locator("#printers-warning .n")).to_have_text("1")
    expect(page.locator("#printers-offline .n")).to_have_text("1")
    assert stuck is not None
    stuck.submit(
        [
            {
                "line_id": "1",
                "sku": "B1",
                "name": "Double cheeseburger",
                "qty": 2,
                "category": "mains",
            }
        ],
        pickup_code="42",
    )
    expect(page.locator("#alerts li.alert")).to_have_count(1)
    page.mouse.move(0, 0)
    save_screenshot(page, "hq.png")


def closed_port() -> int:
    """A port nobody listens on: the printer there is unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _store_link(broker: RunningBroker, store_id: str, offline_orders: int = 0) -> Iterator[Any]:
    """A raw store link (msgpack) that says hello and reads its welcome."""
    import msgpack
    from websockets.sync.client import connect

    with connect(
        f"{broker.ws}/v1/ws/store",
        subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token('store', store=store_id)}"},
        max_size=None,
    ) as ws:
        hello = {"type": "hello", "store_id": store_id, "client_version": "hq-test/1",
             "protocol": 1, "resume": None, "printers": [], "client_id": "c-hq",
                 "offline_orders": offline_orders}  # fmt: skip
        ws.send(msgpack.packb(hello))
        while msgpack.unpackb(ws.recv(timeout=10))["type"] != "snapshot_end":
            pass
        yield ws


def test_hq_shows_a_stores_last_outage_and_the_orders_its_edge_took_meanwhile(
    broker: RunningBroker, store: Store, site: Site, new_page: Any
) -> None:
    """Issue 15 (visible state): once a store is back, HQ shows when it was away and how
    many orders its LAN edge took meanwhile (the count its store client's hello carries)."""
    config, _ = printer_config(store, site, ["Hot line"])
    store.configure(config)
    page = new_page(store.hq_url())
    row = store_row(page, store.store_id)
    with _store_link(broker, store.store_id):
        expect(row).not_to_have_class(re.compile(r"\bis-offline\b"))
        expect(row.locator(".store-outage")).to_have_count(0)
    expect(row).to_have_class(re.compile(r"\bis-offline\b"))

    with _store_link(broker, store.store_id, offline_orders=3):
        expect(row).not_to_have_class(re.compile(r"\bis-offline\b"))
        outage = row.locator(".store-outage")
        expect(outage).to_contain_text("last outage")
        expect(outage).to_contain_text("3 orders taken offline")
        with broker.client(token("hq")) as http:
            link = http.get(f"/v1/stores/{store.store_id}").json()["link"]
        assert link["online"] is True and link["last_outage"]["lan_orders"] == 3
        assert link["last_outage"]["started"] <= link["last_outage"]["ended"] == link["since"]
    assert page.js_errors == []


def test_hq_shows_each_stores_ring_release_and_the_client_versions(
    broker: RunningBroker, store: Store, site: Site, new_page: Any
) -> None:
    """Gray release on the dashboard (docs/rollout.md): which ring and releases a store
    runs, and how many stores run which store client version."""
    from protocol.version import __version__

    config, _ = printer_config(store, site, ["Hot line"])
    store.configure({**config, "ring": "canary"})
    with broker.client(token("hq")) as http:
        body = {
            "release_id": "big-items",
            "rings": ["canary"],
            "patch": {"chit": {"big_items": True}},
        }
        assert http.post("/v1/releases", json=body).status_code == 201
    site.store_client(broker.ws, store.store_id, token("store", store=store.store_id))
    page = new_page(store.hq_url())
    row = store_row(page, store.store_id)
    expect(row.locator(".store-link")).to_contain_text("online since")
    expect(row.locator(".store-ring")).to_have_text("ring canary · big-items")
    versions = page.locator("#client-versions .tile")
    expect(versions.first.locator(".l")).to_have_text(f"v{__version__}")
    assert int(versions.first.locator(".n").inner_text()) >= 1
    assert page.js_errors == []
