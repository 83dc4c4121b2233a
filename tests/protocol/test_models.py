"""Model validation users notice: clear errors naming the field, derived printer state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from protocol import Amendment, Order, PrinterStatus, StoreConfig
from protocol.status import PrinterState

NOW = datetime(2026, 11, 21, 12, 3, tzinfo=UTC)

DESIGN_CONFIG: dict[str, Any] = {
    "name": "Demo Noodle House",
    "printers": [
        {"printer_id": "kitchen", "name": "Hot line", "transport": "tcp://127.0.0.1:9100",
         "profile": "default", "width_mm": 80, "encoding": "gb18030", "backup": "receipt"},
        {"printer_id": "bar", "name": "Bar", "transport": "tcp://127.0.0.1:9102", "width_mm": 58},
        {"printer_id": "receipt", "name": "Front", "transport": "tcp://127.0.0.1:9104", "width_mm": 80},
    ],
    "stations": [
        {"station_id": "grill", "name": "Grill", "categories": ["burgers", "mains"],
         "printer": "kitchen", "warn_after_s": 300, "late_after_s": 480},
        {"station_id": "bar", "name": "Bar", "categories": ["drinks"], "printer": "bar"},
        {"station_id": "expo", "name": "Expo", "categories": [], "expo": True},
    ],
    "receipt_printer": "receipt",
    "failover_after_s": 30,
    "job_ttl_s": 1800,
}  # fmt: skip

DESIGN_ORDER: dict[str, Any] = {
    "store_id": "s-001", "channel": "meituan", "external_id": "MT-20261121-0042",
    "service": "delivery", "pickup_code": "42", "customer": "Li", "priority": "rush",
    "placed_at": "2026-11-21T12:03:00+08:00", "note": "no cutlery",
    "items": [
        {"line_id": "1", "sku": "B01", "name": "Double cheeseburger", "qty": 2,
         "category": "burgers", "modifiers": ["no onion", "extra pickles"],
         "allergens": ["gluten", "dairy"]},
        {"line_id": "2", "sku": "N07", "name": "宫保鸡丁", "qty": 1, "category": "mains",
         "note": "少辣"},
        {"line_id": "3", "sku": "D02", "name": "Iced lemon tea", "qty": 2, "category": "drinks"},
    ],
}  # fmt: skip


def test_design_examples_validate() -> None:
    config = StoreConfig.model_validate(DESIGN_CONFIG)
    assert config.printer("kitchen") and config.printer("kitchen").backup == "receipt"  # type: ignore[union-attr]
    order = Order.model_validate(DESIGN_ORDER)
    assert order.items[1].name == "宫保鸡丁" and order.priority == "rush"


def error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [e["loc"] for e in exc.value.errors()]


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"items": [{**DESIGN_ORDER["items"][0], "qty": 0}]}, ("items", 0, "qty")),
        ({"channel": "fax"}, ("channel",)),
        ({"placed_at": "2026-11-21T12:03:00"}, ("placed_at",)),
        ({"items": []}, ("items",)),
        ({"surprise": 1}, ("surprise",)),
        ({"store_id": "has space"}, ("store_id",)),
    ],
)
def test_order_errors_name_the_field(patch: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        Order.model_validate({**DESIGN_ORDER, **patch})
    assert loc in error_locs(info)


def test_duplicate_line_ids_refused() -> None:
    items = [DESIGN_ORDER["items"][0], DESIGN_ORDER["items"][0]]
    with pytest.raises(ValidationError, match="duplicate line_id '1'"):
        Order.model_validate({**DESIGN_ORDER, "items": items})


def test_custom_channel_allowed() -> None:
    assert (
        Order.model_validate({**DESIGN_ORDER, "channel": "x-wechat-shop"}).channel
        == "x-wechat-shop"
    )


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"receipt_printer": "nope"}, "receipt_printer 'nope' is not a printer"),
        ({"default_station": "nope"}, "station 'nope' is not defined"),
        (
            {
                "stations": [
                    *DESIGN_CONFIG["stations"],
                    {"station_id": "fry", "name": "Fry", "categories": ["mains"]},
                ]
            },
            "category 'mains' is listed by 'grill' and 'fry'",
        ),
        (
            {"printers": [*DESIGN_CONFIG["printers"], DESIGN_CONFIG["printers"][0]]},
            "duplicate printer_id",
        ),
        (
            {"stations": [{"station_id": "g", "name": "G", "printer": "ghost"}]},
            "station 'g': unknown printer 'ghost'",
        ),
        (
            {"stations": [{"station_id": "g", "name": "G", "warn_after_s": 10, "late_after_s": 5}]},
            "late_after_s must be >= warn_after_s",
        ),
    ],
)
def test_config_reference_errors(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StoreConfig.model_validate({**DESIGN_CONFIG, **patch})


def test_bad_transport_uri() -> None:
    printers = [{**DESIGN_CONFIG["printers"][1], "transport": "http://x"}]
    with pytest.raises(ValidationError) as info:
        StoreConfig.model_validate({**DESIGN_CONFIG, "printers": printers, "stations": []})
    assert ("printers", 0, "transport") in error_locs(info)


def test_empty_amendment_refused() -> None:
    with pytest.raises(ValidationError, match="at least one of add, change, void"):
        Amendment()


def status(**fields: Any) -> PrinterStatus:
    return PrinterStatus.model_validate({"since": NOW, **fields})


@pytest.mark.parametrize(
    ("fields", "state", "reasons"),
    [
        ({"reachable": False}, "offline", ("offline-report",)),
        ({"reachable": True, "source": "none"}, "unknown", ("none",)),
        ({"reachable": True, "online": True, "source": "realtime"}, "ready", ("none",)),
        ({"reachable": True, "online": True, "source": "asb", "paper": "near_end"}, "warning", ("media-low-warning",)),
        ({"reachable": True, "online": False, "source": "realtime", "paper": "out"}, "error", ("media-empty-error",)),
        ({"reachable": True, "online": False, "source": "realtime", "cover_open": True}, "error", ("cover-open-error",)),
        ({"reachable": True, "online": True, "source": "realtime", "cutter_error": True}, "error", ("media-jam-error",)),
        ({"reachable": True, "online": True, "source": "realtime", "auto_recoverable_error": True}, "error", ("other-warning",)),
        ({"reachable": True, "online": False, "source": "realtime"}, "error", ("paused-report",)),
    ],
)  # fmt: skip
def test_printer_state_is_derived(
    fields: dict[str, Any], state: str, reasons: tuple[str, ...]
) -> None:
    s = status(**fields)
    assert s.state == PrinterState(state)
    assert s.reasons == reasons


def test_no_status_is_never_ok() -> None:
    # A transport that cannot read status must not look ready (python-escpos's mistake).
    assert status(reachable=True).state is PrinterState.UNKNOWN


def test_contradicting_state_refused() -> None:
    with pytest.raises(ValidationError, match="state must be 'error'"):
        status(reachable=True, online=True, source="realtime", paper="out", state="ready")


def test_same_condition_ignores_since() -> None:
    a = status(reachable=True, online=True, source="realtime")
    b = status(
        reachable=True, online=True, source="realtime", since=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert a.same_condition(b)
    assert not a.same_condition(status(reachable=True, online=True, source="realtime", paper="out"))
