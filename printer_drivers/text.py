"""Text for the print head: sanitising, encoding and width-aware wrapping. Pure.

In kanji mode (gb18030, gbk, big5) every non-ASCII character is a double-byte glyph
two font-A columns wide; in a single-byte code page every character takes one column.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from printer_drivers.profile import RenderProfile

if TYPE_CHECKING:
    from escpos.magicencode import Encoder

#: C0 controls and DEL in user text would be ESC/POS commands: never send them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REPLACEMENT = "?"
#: Closing punctuation that must not start a line (kinsoku shori): the character before
#: it moves down with it.
NO_LINE_START = frozenset("，。、！？；：）」』】》〉’”,.!?;:)")


def clean(text: str) -> str:
    """User text with control characters turned into spaces."""
    return _CONTROL.sub(" ", text)


@lru_cache(maxsize=8)
def _encoder(profile_name: str) -> Encoder:
    # Only single-byte code pages need python-escpos's code page tables, which come with
    # its YAML-loaded database (~4 MB): a gb18030 printer never loads them.
    from escpos.capabilities import get_profile
    from escpos.magicencode import Encoder

    return Encoder(get_profile(profile_name).get_code_pages())


def printable(text: str, profile: RenderProfile) -> str:
    """``text`` as the printer will show it: unprintable characters become ``?``."""
    text = clean(text)
    if text.isascii():
        return text
    if profile.multibyte:
        return "".join(_multibyte_char(c, profile.encoding) for c in text)
    name, _ = profile.codepage()
    enc = _encoder(profile.escpos_profile)
    return "".join(c if enc.can_encode(name, c) else REPLACEMENT for c in text)


def _multibyte_char(char: str, encoding: str) -> str:
    if ord(char) > 0xFFFF:  # 4-byte GB18030 (emoji …): no glyph in printer fonts
        return REPLACEMENT
    try:
        char.encode(encoding)
    except UnicodeEncodeError:
        return REPLACEMENT
    return char


def encode(text: str, profile: RenderProfile) -> bytes:
    """Bytes of already ``printable`` text in the printer's encoding."""
    if profile.multibyte:
        return text.encode(profile.encoding, errors="replace")
    name, _ = profile.codepage()
    out: bytes = _encoder(profile.escpos_profile).encode(text, name, REPLACEMENT)
    return out


def char_width(char: str, multibyte: bool) -> int:
    return 2 if multibyte and ord(char) >= 0x80 else 1


def width(text: str, multibyte: bool) -> int:
    """Columns of font A that ``text`` takes."""
    if not multibyte or text.isascii():
        return len(text)
    return sum(2 if ord(c) >= 0x80 else 1 for c in text)


_WIDE_UNITS = re.compile(r"\s+|[!-~]+|\S")  # ASCII words; each wide character alone
_NARROW_UNITS = re.compile(r"\s+|\S+")


def _units(text: str, multibyte: bool) -> list[str]:
    """Words, spaces and single wide characters: the places a line may break."""
    pattern = _WIDE_UNITS if multibyte else _NARROW_UNITS
    return pattern.findall(text)


def wrap(text: str, columns: int, *, multibyte: bool, indent: int = 0, hang: int = 0) -> list[str]:
    """Greedy wrap to ``columns``; first line indented by ``indent``, the rest by ``hang``.

    Latin words move whole to the next line unless longer than a line; CJK may break
    between any two characters; a wide character never straddles the edge.
    """
    if columns < 2:
        raise ValueError(f"expected at least 2 columns, got {columns}")
    lines: list[str] = []
    current, used = " " * indent, indent
    for unit in _units(text, multibyte):
        size = width(unit, multibyte)
        if unit.isspace():
            if used > len(current) - len(current.lstrip()) and used + size < columns:
                current, used = current + " ", used + 1
            continue
        if used + size > columns and current.strip():
            carry = _carry(current, unit, hang, multibyte)
            lines.append(current[: len(current) - len(carry)].rstrip())
            current, used = " " * hang + carry, hang + width(carry, multibyte)
        while used + size > columns:  # a word longer than a line: hard break
            head, unit = _split_at(unit, columns - used, multibyte)
            lines.append(current + head)
            current, used = " " * hang, hang
            size = width(unit, multibyte)
        current, used = current + unit, used + size
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def _carry(line: str, unit: str, hang: int, multibyte: bool) -> str:
    """What moves down with ``unit``: the last wide character, if ``unit`` may not lead."""
    body = line[hang:].rstrip()
    if unit in NO_LINE_START and len(body) > 1 and char_width(body[-1], multibyte) == 2:
        return body[-1] if line.endswith(body[-1]) else ""
    return ""


def _split_at(word: str, room: int, multibyte: bool) -> tuple[str, str]:
    used = 0
    for i, char in enumerate(word):
        w = char_width(char, multibyte)
        if used + w > room:
            return word[: max(i, 1)], word[max(i, 1) :]
        used += w
    return word, ""
