"""Render rate: kitchen chits per second, one core, for the printer-driver samples.

.venv/bin/python bench/render.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from printer_drivers import RenderProfile, render
from protocol.orders import Template
from tests.printer_drivers import samples

CASES = {
    "kitchen 80 mm Latin (2 lines)": (samples.latin(Template.KITCHEN), ("TM-T20II", 80, "cp1252")),
    "kitchen 80 mm Chinese (2 lines)": (
        samples.chinese(Template.KITCHEN),
        ("KR-306", 80, "gb18030"),
    ),
    "kitchen 58 mm 20-line order": (samples.big_order(), ("default", 58, "gb18030")),
    "receipt 80 mm with QR": (samples.chinese(Template.RECEIPT), ("KR-306", 80, "gb18030")),
}


def rate(doc: object, profile: RenderProfile, seconds: float) -> tuple[float, int]:
    count, start = 0, time.perf_counter()
    size = 0
    while time.perf_counter() - start < seconds:
        size = len(render(doc, profile))  # type: ignore[arg-type]
        count += 1
    return count / (time.perf_counter() - start), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{'case':40} {'chits/s':>10} {'bytes':>7}")
    for name, (doc, (profile, width, encoding)) in CASES.items():
        per_s, size = rate(doc, RenderProfile.build(profile, width, encoding), args.seconds)  # type: ignore[arg-type]
        print(f"{name:40} {per_s:10.0f} {size:7d}")


if __name__ == "__main__":
    main()
