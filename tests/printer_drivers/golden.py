"""The golden cases: (name, document, profile). ``UPDATE_GOLDEN=1 pytest …`` rewrites
``golden/*.bin`` (rendered bytes) and ``golden/*.txt`` (the emulator's decoded text)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from printer_drivers import RenderProfile
from printer_drivers.emulator.paper import PaperMachine, Receipt
from printer_drivers.emulator.parser import CommandParser
from protocol.jobs import TicketDoc
from protocol.orders import Template
from tests.printer_drivers import samples

GOLDEN_DIR = Path(__file__).parent / "golden"

PROFILES = {
    ("latin", 80): RenderProfile.build("TM-T20II", 80, "cp1252"),
    ("latin", 58): RenderProfile.build("RP-F10-58mm", 58, "cp850"),
    ("chinese", 80): RenderProfile.build("KR-306", 80, "gb18030"),
    ("chinese", 58): RenderProfile.build("default", 58, "gb18030"),
}


def cases() -> Iterator[tuple[str, TicketDoc, RenderProfile]]:
    for template in Template:
        for (lang, width), profile in PROFILES.items():
            doc = samples.latin(template) if lang == "latin" else samples.chinese(template)
            yield f"{template.value}-{width}-{lang}", doc, profile
    yield "kitchen-80-big", samples.big_order(), PROFILES[("latin", 80)]
    yield "kitchen-58-big", samples.big_order(), PROFILES[("chinese", 58)]


def print_on_emulator(data: bytes, profile: RenderProfile) -> list[Receipt]:
    """What an emulated printer of this width and code page table makes of ``data``."""
    receipts: list[Receipt] = []
    machine = PaperMachine(
        columns=profile.columns,
        profile=profile.escpos_profile,
        encoding="gb18030" if not profile.multibyte else profile.encoding,
        on_receipt=receipts.append,
    )
    for command in CommandParser().feed(data):
        machine.execute(command)
    machine.finish_sheet(cut=False)
    return receipts


def decoded_text(receipts: list[Receipt]) -> str:
    return "\n=== cut ===\n".join(r.text for r in receipts) + "\n"
