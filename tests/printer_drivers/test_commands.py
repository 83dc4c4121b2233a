"""Command bytes built without python-escpos's printer classes are the bytes they send,
for every model in its database, and rendering a chit does not load them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from escpos.capabilities import CAPABILITIES, get_profile
from escpos.printer import Dummy

from printer_drivers import RenderProfile
from printer_drivers import commands as cmd
from printer_drivers.profile import code_pages

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted(CAPABILITIES["profiles"])


def dummy(profile: str = "default") -> Dummy:
    return Dummy(profile=profile)


@pytest.mark.parametrize("name", PROFILES)
def test_feed_and_cut_is_what_python_escpos_sends(name: str) -> None:
    printer = dummy(name)
    printer.cut(mode="FULL", feed=True)
    profile = RenderProfile.build(name, 80, "gb18030")
    assert cmd.feed_lines(6) + profile.cut == printer.output


@pytest.mark.parametrize("name", PROFILES)
def test_code_pages_are_python_escpos_code_pages(name: str) -> None:
    expected = {page: int(slot) for page, slot in get_profile(name).get_code_pages().items()}
    assert code_pages(name) == expected


@pytest.mark.parametrize("content", ["A017", "取餐 42", "x" * 40, ""])
@pytest.mark.parametrize("size", [1, 5, 6, 16])
def test_native_qr_is_what_python_escpos_sends(content: str, size: int) -> None:
    printer = dummy()
    printer.qr(content, size=size, native=True)
    assert cmd.qr_code(content, size) == printer.output


def test_buzzer_is_what_python_escpos_sends() -> None:
    printer = dummy("KR-306")
    printer.buzzer(times=2, duration=3)
    assert cmd.buzzer(2, 3) == printer.output


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: cmd.qr_code("x", 17), "1..16"),
        (lambda: cmd.buzzer(0, 3), "1..9"),
        (lambda: cmd.feed_lines(256), "0..255"),
    ],
)
def test_out_of_range_arguments_are_refused(call: Callable[[], bytes], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        call()


def test_rendering_a_chit_leaves_pillow_and_qrcode_unloaded() -> None:
    """The store client renders every chit (DESIGN.md §7: under 40 MB): a Chinese-market
    receipt with a pickup QR code needs neither python-escpos's printer classes (Pillow,
    qrcode, python-barcode) nor its YAML-loaded database module."""
    code = (
        "import sys\n"
        "from printer_drivers import RenderProfile, render\n"
        "from tests.printer_drivers import samples\n"
        "from protocol.orders import Template\n"
        "doc = samples.chinese(Template.RECEIPT)\n"
        "assert doc.pickup_code\n"
        "data = render(doc, RenderProfile.build('KR-306', 80, 'gb18030'))\n"
        "assert b'\\x1d(k' in data\n"
        "heavy = ('PIL', 'qrcode', 'barcode', 'yaml', 'escpos.printer', 'escpos.capabilities')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
