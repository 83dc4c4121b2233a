"""Golden chits per template, 58 and 80 mm, Latin and Chinese; decoded by the emulator."""

from __future__ import annotations

import os

import pytest

from printer_drivers import RenderProfile, render
from printer_drivers.text import width
from protocol.jobs import TicketDoc
from protocol.orders import Template
from tests.printer_drivers import samples
from tests.printer_drivers.golden import (
    GOLDEN_DIR,
    PROFILES,
    cases,
    decoded_text,
    print_on_emulator,
)

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = list(cases())


@pytest.mark.parametrize(("name", "doc", "profile"), CASES, ids=[c[0] for c in CASES])
def test_golden(name: str, doc: TicketDoc, profile: RenderProfile) -> None:
    data = render(doc, profile)
    text = decoded_text(print_on_emulator(data, profile))
    bin_path, txt_path = GOLDEN_DIR / f"{name}.bin", GOLDEN_DIR / f"{name}.txt"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        bin_path.write_bytes(data)
        txt_path.write_text(text, encoding="utf-8")
    assert data == bin_path.read_bytes(), f"{name}: bytes differ (UPDATE_GOLDEN=1 to accept)"
    assert text == txt_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "doc", "profile"), CASES, ids=[c[0] for c in CASES])
def test_no_line_is_wrapped_by_the_printer(
    name: str, doc: TicketDoc, profile: RenderProfile
) -> None:
    """Each rendered line fits the paper: the printer never has to wrap it."""
    for receipt in print_on_emulator(render(doc, profile), profile):
        rendered = [line for line in receipt.raw.split(b"\n")]
        printed = [line for line in receipt.lines if not line.text.startswith("[")]
        assert len(printed) <= len(rendered)
        for line in printed:
            assert width(line.text, profile.multibyte) * line.width <= profile.columns, line


def lines_of(template: Template, lang: str, width_mm: int) -> list[str]:
    doc = samples.latin(template) if lang == "latin" else samples.chinese(template)
    profile = PROFILES[(lang, width_mm)]
    receipts = print_on_emulator(render(doc, profile), profile)
    return [line.text for r in receipts for line in r.lines]


def test_kitchen_80_latin_reads_as_expected() -> None:
    assert lines_of(Template.KITCHEN, "latin", 80) == [
        "Grill",
        "#42",
        "MEITUAN / DELIVERY",
        " RUSH",
        "Customer Léa",
        "Placed 12:03",
        "-" * 48,
        "------------------- Course 1 -------------------",
        "2 x Double cheeseburger",
        "    - no onion",
        "    - extra pickles",
        " ALLERGENS: gluten, dairy",
        "------------------- Course 2 -------------------",
        "1 x Crème brûlée",
        "    * serve after mains",
        "-" * 48,
        "NOTE: no cutlery",
    ]


def test_kitchen_58_chinese_wraps_cjk_at_two_columns() -> None:
    lines = lines_of(Template.KITCHEN, "chinese", 58)
    assert lines[:3] == ["热菜", "#A017", "ELE.ME / DINE IN"]
    assert "Table 12" in lines and "Guests 4" in lines
    assert "1 x 宫保鸡丁" in lines and "    - 少辣" in lines and "    * 不要花生" in lines
    assert " ALLERGENS: 花生" in lines
    # 32 columns: "NOTE: " + 13 wide characters does not fit one line
    note = [line for line in lines if line.startswith("NOTE")]
    assert note == ["NOTE: 少放盐，多加香菜，谢谢老"]
    assert lines[lines.index(note[0]) + 1] == "板！"


def test_delta_marks_each_change() -> None:
    latin = lines_of(Template.DELTA, "latin", 80)
    assert " CHANGED rev 1" in latin
    assert "+ ADD 2 x Double cheeseburger" in latin
    assert "VOID 1 x Crème brûlée" in latin
    chinese = lines_of(Template.DELTA, "chinese", 58)
    assert "~ CHANGE 1 x 宫保鸡丁" in chinese and "+ ADD 2 x 牛肉拉面 Beef noodles" in chinese


def test_void_strikes_every_line() -> None:
    lines = lines_of(Template.VOID, "latin", 58)
    assert lines[:3] == [" VOID", "Grill", "#42"] and "ORDER CANCELLED" in lines
    assert "VOID 2 x Double cheeseburger" in lines and " DO NOT MAKE" in lines


def test_label_prints_one_sticker_per_unit() -> None:
    doc = samples.latin(Template.LABEL)
    profile = PROFILES[("latin", 58)]
    receipts = print_on_emulator(render(doc, profile), profile)
    assert len(receipts) == 3 and all(r.cut for r in receipts)
    assert [r.lines[0].text for r in receipts] == ["#42 1/3", "#42 2/3", "#42 3/3"]
    assert receipts[2].lines[1].text == "Crème brûlée"


def test_receipt_has_a_qr_pickup_code() -> None:
    profile = PROFILES[("chinese", 80)]
    receipts = print_on_emulator(render(samples.chinese(Template.RECEIPT), profile), profile)
    assert receipts[0].qr_codes == ("A017",)
    assert receipts[0].lines[0].text == "老王面馆"


def test_big_order_has_all_twenty_lines_in_course_order() -> None:
    profile = PROFILES[("latin", 80)]
    lines = [
        x.text for x in print_on_emulator(render(samples.big_order(), profile), profile)[0].lines
    ]
    dishes = [x for x in lines if " x Dish " in x]
    assert len(dishes) == 20
    assert [x for x in lines if "Course" in x] == [
        f"{'-' * 19} Course {n} {'-' * 19}" for n in (1, 2, 3)
    ]
    assert "DUE 12:33" in lines and "Placed 12:03, revision 2" in lines


def test_the_store_chit_layout_header_and_big_items() -> None:
    """``StoreConfig.chit`` (docs/rollout.md): a header line on kitchen, delta and void
    chits, item lines at double width; the standard look without it is the golden one."""
    from protocol.config import ChitStyle

    profile = RenderProfile.build("default", 80, "gb18030")
    doc = samples.latin(Template.KITCHEN)
    plain = render(doc, profile)
    assert render(doc, profile, ChitStyle()) == plain
    styled = render(doc, profile, ChitStyle(header="NEW MENU WEEK", big_items=True))
    text = decoded_text(print_on_emulator(styled, profile))
    assert text.splitlines()[0].strip() == "NEW MENU WEEK"
    assert "NEW MENU WEEK" not in decoded_text(print_on_emulator(plain, profile))
    big = b"\x1d!\x11"  # GS ! double width and height: RUSH only, then every item too
    assert styled.count(big) == plain.count(big) + len(doc.lines)
    receipt = samples.latin(Template.RECEIPT)
    assert render(receipt, profile, ChitStyle(header="NEW MENU WEEK")) == render(receipt, profile)
