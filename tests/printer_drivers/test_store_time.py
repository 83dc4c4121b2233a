"""Chits print the store's wall-clock time (DESIGN.md §8.7, issue 17 done-when 6): an
order a channel stamped in UTC prints "15:46" in a kitchen in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from printer_drivers import RenderProfile, render
from protocol.jobs import TicketDoc
from protocol.orders import Template
from tests.printer_drivers import samples
from tests.printer_drivers.golden import GOLDEN_DIR, PROFILES, cases, print_on_emulator

CASES = list(cases())
UTC_STAMP = datetime(2026, 11, 29, 7, 46, tzinfo=UTC)


def printed(doc: TicketDoc, profile: RenderProfile) -> list[str]:
    return [line.text for r in print_on_emulator(render(doc, profile), profile) for line in r.lines]


@pytest.mark.parametrize(("name", "doc", "profile"), CASES, ids=[c[0] for c in CASES])
def test_a_stamp_in_the_stores_own_offset_prints_byte_for_byte_as_before(
    name: str, doc: TicketDoc, profile: RenderProfile
) -> None:
    """The golden documents are stamped +08:00: in Asia/Shanghai nothing changes."""
    zoned = doc.model_copy(update={"timezone": "Asia/Shanghai"})
    assert render(zoned, profile) == (GOLDEN_DIR / f"{name}.bin").read_bytes()


@pytest.mark.parametrize("template", [Template.KITCHEN, Template.RECEIPT, Template.DELTA])
def test_a_utc_stamp_prints_in_store_time(template: Template) -> None:
    doc = samples.latin(template).model_copy(
        update={
            "placed_at": UTC_STAMP,
            "due_at": UTC_STAMP + timedelta(minutes=44),
            "timezone": "Asia/Shanghai",
        }
    )
    lines = printed(doc, PROFILES[("latin", 80)])
    assert any(line.startswith("Placed 15:46") for line in lines), lines
    assert "DUE 16:30" in lines
    assert not any("07:46" in line or "08:30" in line for line in lines)


def test_labels_print_store_time_too() -> None:
    doc = samples.latin(Template.LABEL).model_copy(
        update={"placed_at": UTC_STAMP, "timezone": "Asia/Shanghai"}
    )
    tails = [line for line in printed(doc, PROFILES[("latin", 58)]) if "DELIVERY" in line]
    assert tails and all("15:46" in line for line in tails)


def test_without_a_zone_a_stamp_prints_in_its_own_offset() -> None:
    """Jobs made before stores had zones (spooled across an upgrade) print as before."""
    doc = samples.latin(Template.KITCHEN).model_copy(update={"placed_at": UTC_STAMP})
    assert "Placed 07:46" in printed(doc, PROFILES[("latin", 80)])
