"""What the renderer and the printer facade need to know about one printer model.

``RenderProfile.from_config`` combines a store's ``PrinterConfig`` (paper width, encoding,
python-escpos profile name) with python-escpos's capability database (code page table,
media width, native QR, cutter) and passline's own small tables for what that database
does not record (buzzer, GS ( H barrier).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from printer_drivers import commands as cmd
from printer_drivers.errors import RenderError, UnsupportedEncodingError
from protocol.config import PrinterConfig

#: Encodings printed in kanji (double-byte) mode, entered with FS &. Every non-ASCII
#: character is then a double-width glyph: two columns of font A.
MULTIBYTE_ENCODINGS = frozenset({"gb18030", "gbk", "gb2312", "big5"})
#: Printable columns and dots of font A (12 dots a character) on standard thermal heads.
STANDARD_COLUMNS = {80: 48, 58: 32}
STANDARD_DOTS = {80: 576, 58: 384}
FONT_A_DOTS = 12
MIN_SANE_COLUMNS = 20

#: Profiles whose vendors document the ESC B n t buzzer (kitchen models). The
#: python-escpos database has no "buzzer" feature, so passline keeps this list.
BUZZER_PROFILES = frozenset({"KR-306", "RP326", "P822D"})
#: Profiles that answer GS ( H fn=48 (Epson TM series): a barrier with a process id.
RESPONSE_BARRIER_PROFILES = frozenset(
    {"TM-T20II", "TM-T20II-42col", "TM-T88IV", "TM-T88V", "TM-L90", "TM-P80", "TM-P80-42col"}
)


#: Error texts end up in a job's reason, which must stay short: they name a few choices
#: (the closest, else these common ones), never the whole database.
HINTS = 3
COMMON_PROFILES = ("default", "TM-T88V", "TM-T20II")
COMMON_ENCODINGS = ("gb18030", "cp437", "cp1252")
SHOWN_NAME_CHARS = 32
#: Set to another database file, python-escpos reads that one (JSON or YAML); so do we.
CAPABILITIES_FILE_ENV = "ESCPOS_CAPABILITIES_FILE"


class Barrier(StrEnum):
    """How the end of a job is confirmed (DESIGN.md §4)."""

    PAPER_SENSOR = "gs_r"  # GS r 1: every ESC/POS printer
    RESPONSE = "gs_paren_h"  # GS ( H: echoes a process id, so a late answer is never mistaken


@dataclass(frozen=True, slots=True)
class RenderProfile:
    """Everything ``render`` needs; build it with ``from_config``."""

    width_mm: Literal[58, 80] = 80
    encoding: str = "gb18030"
    escpos_profile: str = "default"
    columns: int = 48
    """Font A characters per line."""
    dots: int = 576
    """Printable width in dots, for raster images."""
    native_qr: bool = True
    """GS ( k QR codes; else QR codes are rasterised and sent as GS v 0 images."""
    buzzer: bool = False
    barrier: Barrier = Barrier.PAPER_SENSOR
    cut: bytes = cmd.FULL_CUT
    """GS V after the feed: a full cut, else a partial one, else none (no cutter)."""

    @classmethod
    def from_config(cls, printer: PrinterConfig) -> RenderProfile:
        return cls.build(printer.profile, printer.width_mm, printer.encoding)

    @classmethod
    def build(
        cls,
        escpos_profile: str = "default",
        width_mm: Literal[58, 80] = 80,
        encoding: str = "gb18030",
    ) -> RenderProfile:
        return _build(escpos_profile, width_mm, encoding.lower())

    @property
    def multibyte(self) -> bool:
        return self.encoding in MULTIBYTE_ENCODINGS

    def codepage(self) -> tuple[str, int]:
        """python-escpos encoding name and ESC t slot of a single-byte encoding."""
        return _codepage(self.escpos_profile, self.encoding)


@lru_cache(maxsize=64)
def _build(name: str, width_mm: Literal[58, 80], encoding: str) -> RenderProfile:
    data = _profile_data(name)
    profile = RenderProfile(
        width_mm=width_mm,
        encoding=encoding,
        escpos_profile=name,
        columns=_columns(data, width_mm),
        dots=_dots(data, width_mm),
        native_qr=bool(data["features"].get("qrCode")),
        cut=_cut(data),
        buzzer=name in BUZZER_PROFILES,
        barrier=Barrier.RESPONSE if name in RESPONSE_BARRIER_PROFILES else Barrier.PAPER_SENSOR,
    )
    if not profile.multibyte:
        profile.codepage()  # fail now, not in the middle of a chit
    return profile


@lru_cache(maxsize=1)
def _profiles() -> dict[str, Any]:
    """The printer profiles of python-escpos's capability database, read on first use.

    Read as the JSON file it ships rather than through ``escpos.capabilities``, which on
    import loads PyYAML and importlib_resources, pickles the database to a new temporary
    directory and configures logging: ~4 MB the store client would keep from its first
    chit on (DESIGN.md §7: under 40 MB). Another database named in
    ``ESCPOS_CAPABILITIES_FILE`` (JSON or YAML) is left to python-escpos to read.
    """
    if os.environ.get(CAPABILITIES_FILE_ENV):
        from escpos.capabilities import CAPABILITIES

        database: dict[str, Any] = CAPABILITIES
    else:
        from importlib.resources import files

        database = json.loads(files("escpos").joinpath("capabilities.json").read_bytes())
    profiles: dict[str, Any] = database["profiles"]
    return profiles


def _profile_data(name: str) -> dict[str, Any]:
    profiles = _profiles()
    if name not in profiles:
        hint = _hint(name, profiles, COMMON_PROFILES)
        raise RenderError(f"unknown python-escpos profile {_shown(name)}; {hint}")
    data: dict[str, Any] = profiles[name]
    return data


def _pixels(data: dict[str, Any]) -> int | None:
    pixels = data.get("media", {}).get("width", {}).get("pixels")
    return pixels if isinstance(pixels, int) and pixels > 0 else None


def _columns(data: dict[str, Any], width_mm: int) -> int:
    """Font A columns: the profile's own when it is plausible for its head width."""
    standard = STANDARD_COLUMNS[width_mm]
    pixels = _pixels(data)
    if pixels is None:
        return standard
    by_dots = min(pixels // FONT_A_DOTS, standard)
    font_columns = data.get("fonts", {}).get("0", {}).get("columns")
    if isinstance(font_columns, int) and MIN_SANE_COLUMNS <= font_columns <= by_dots:
        return font_columns
    return by_dots


def _cut(data: dict[str, Any]) -> bytes:
    """What python-escpos's ``cut(mode="FULL")`` sends after its feed for this model."""
    features = data["features"]
    if features.get("paperFullCut"):
        return cmd.FULL_CUT
    return cmd.PARTIAL_CUT if features.get("paperPartCut") else b""


def _dots(data: dict[str, Any], width_mm: int) -> int:
    pixels = _pixels(data)
    standard = STANDARD_DOTS[width_mm]
    return standard if pixels is None else min(pixels, standard)


@lru_cache(maxsize=64)
def _codepage(profile_name: str, encoding: str) -> tuple[str, int]:
    pages = code_pages(profile_name)
    name = encoding.upper()
    if name not in pages or name == "UNKNOWN":
        usable = sorted(MULTIBYTE_ENCODINGS) + sorted(p.lower() for p in pages if p != "Unknown")
        raise UnsupportedEncodingError(
            f"encoding {_shown(encoding)} is not in profile {_shown(profile_name)}; "
            + _hint(encoding, usable, COMMON_ENCODINGS)
        )
    return name, int(pages[name])


def code_pages(profile_name: str) -> dict[str, int]:
    """``{python-escpos encoding name: ESC t slot}`` of a profile (its ``get_code_pages``)."""
    slots: dict[str, str] = _profile_data(profile_name)["codePages"]
    return {name: int(slot) for slot, name in slots.items()}


def _shown(name: str) -> str:
    """``name`` quoted, cut to ``SHOWN_NAME_CHARS``."""
    if len(name) <= SHOWN_NAME_CHARS:
        return repr(name)
    return repr(name[:SHOWN_NAME_CHARS] + "…")


def _hint(given: str, known: Collection[str], common: tuple[str, ...]) -> str:
    """``did you mean 'a', 'b'? (35 known)`` or ``e.g. 'x', 'y' (35 known)``."""
    import difflib  # only for a bad config: not worth its memory in every daemon

    close = difflib.get_close_matches(given, list(known), n=HINTS, cutoff=0.6)
    picks = close or [c for c in common if c in known][:HINTS]
    names = ", ".join(repr(p) for p in picks)
    lead = f"did you mean {names}?" if close else f"e.g. {names}"
    return f"{lead} ({len(known)} known)"
