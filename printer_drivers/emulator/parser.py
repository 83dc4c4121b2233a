"""Split an ESC/POS byte stream into commands. Sans-I/O: bytes in, commands out.

The parser knows each command's length, so a parameter byte that happens to look like
DLE EOT (inside a raster image, say) is never taken for a real-time request. Commands it
does not know are passed on as ``UNKNOWN`` with a best-guess length instead of stalling.

What it holds back is bounded, whatever a sender announces: a raster image longer than
``MAX_COMMAND_BYTES`` is passed on as its 8-byte header and its data is consumed as it
streams by, unkept (``GS v 0`` can announce 65535 x 65535 bytes); a command that ends at
a NUL (``ESC D``, ``GS k`` format A) ends after ``MAX_TERMINATED_BYTES`` without one, as a
real printer stops reading tab stops or barcode data at its limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

#: The longest command kept whole (a full-width 80 mm raster of ~14,000 dot rows).
MAX_COMMAND_BYTES = 1024 * 1024
#: A NUL-terminated command ends here without its NUL (ESC D takes 32 stops, GS k ~255).
MAX_TERMINATED_BYTES = 256
RASTER_HEADER_BYTES = 8  # GS v 0 m xL xH yL yH


class Op(StrEnum):
    TEXT = "text"
    LF = "lf"
    CR = "cr"
    HT = "ht"
    FF = "ff"
    BEL = "bel"
    REALTIME_STATUS = "dle_eot"  # DLE EOT n
    REALTIME_REQUEST = "dle_enq"  # DLE ENQ n: recover from error / clear buffer
    REALTIME_PULSE = "dle_dc4"  # DLE DC4 fn ...
    INIT = "esc_@"
    PRINT_MODE = "esc_!"
    BOLD = "esc_E"
    DOUBLE_STRIKE = "esc_G"
    UNDERLINE = "esc_-"
    ALIGN = "esc_a"
    CODEPAGE = "esc_t"
    FEED_LINES = "esc_d"
    FEED_DOTS = "esc_J"
    BUZZER = "esc_B"
    DRAWER_PULSE = "esc_p"
    SIZE = "gs_!"
    INVERT = "gs_B"
    CUT = "gs_V"
    PAPER_SENSOR = "gs_r"
    ASB = "gs_a"
    RASTER = "gs_v0"
    COLUMN_IMAGE = "esc_*"
    EXTENDED = "gs_("  # GS ( k (QR), GS ( H (response), GS ( L (graphics) …
    BARCODE = "gs_k"
    KANJI_ON = "fs_&"
    KANJI_OFF = "fs_."
    KANJI_MODE = "fs_!"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Command:
    op: Op
    raw: bytes
    """The command's bytes as received (text bytes for TEXT)."""

    @property
    def arg(self) -> int:
        """The last parameter byte (``n`` of ``ESC a n``)."""
        return self.raw[-1] if self.raw else 0


REALTIME_OPS = frozenset({Op.REALTIME_STATUS, Op.REALTIME_REQUEST, Op.REALTIME_PULSE})
_CONTROL = {0x0A: Op.LF, 0x0D: Op.CR, 0x09: Op.HT, 0x0C: Op.FF, 0x07: Op.BEL}

# ESC x, GS x, FS x commands of fixed total length.
_ESC_FIXED: dict[int, tuple[Op, int]] = {
    ord("@"): (Op.INIT, 2),
    ord("!"): (Op.PRINT_MODE, 3),
    ord("E"): (Op.BOLD, 3),
    ord("G"): (Op.DOUBLE_STRIKE, 3),
    ord("-"): (Op.UNDERLINE, 3),
    ord("a"): (Op.ALIGN, 3),
    ord("t"): (Op.CODEPAGE, 3),
    ord("d"): (Op.FEED_LINES, 3),
    ord("J"): (Op.FEED_DOTS, 3),
    ord("B"): (Op.BUZZER, 4),
    ord("p"): (Op.DRAWER_PULSE, 5),
    ord("2"): (Op.OTHER, 2),
    ord("3"): (Op.OTHER, 3),
    ord("M"): (Op.OTHER, 3),
    ord("R"): (Op.OTHER, 3),
    ord("{"): (Op.OTHER, 3),
    ord("V"): (Op.OTHER, 3),
    ord(" "): (Op.OTHER, 3),
    ord("="): (Op.OTHER, 3),
    ord("r"): (Op.OTHER, 3),
    ord("U"): (Op.OTHER, 3),
    ord("$"): (Op.OTHER, 4),
    ord("\\"): (Op.OTHER, 4),
    ord("c"): (Op.OTHER, 4),
}
_GS_FIXED: dict[int, tuple[Op, int]] = {
    ord("!"): (Op.SIZE, 3),
    ord("B"): (Op.INVERT, 3),
    ord("r"): (Op.PAPER_SENSOR, 3),
    ord("a"): (Op.ASB, 3),
    ord("H"): (Op.OTHER, 3),
    ord("h"): (Op.OTHER, 3),
    ord("w"): (Op.OTHER, 3),
    ord("f"): (Op.OTHER, 3),
    ord("b"): (Op.OTHER, 3),
    ord("|"): (Op.OTHER, 3),
    ord("I"): (Op.OTHER, 3),
    ord("L"): (Op.OTHER, 4),
    ord("W"): (Op.OTHER, 4),
    ord("P"): (Op.OTHER, 4),
    ord("\\"): (Op.OTHER, 4),
}
_FS_FIXED: dict[int, tuple[Op, int]] = {
    ord("&"): (Op.KANJI_ON, 2),
    ord("."): (Op.KANJI_OFF, 2),
    ord("!"): (Op.KANJI_MODE, 3),
    ord("-"): (Op.OTHER, 3),
    ord("C"): (Op.OTHER, 3),
    ord("W"): (Op.OTHER, 3),
    ord("S"): (Op.OTHER, 4),
    ord("p"): (Op.OTHER, 4),
}
_TEXT_RUN = re.compile(rb"[\x20-\x7e\x80-\xff]+")
_CUT_WITH_FEED = frozenset({65, 66, 97, 98, 103, 104})


def _u16(buf: bytes | bytearray, i: int) -> int:
    return buf[i] | (buf[i + 1] << 8)


class CommandParser:
    """Incremental: ``feed`` any chunking of a stream, get the complete commands."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0
        """Data bytes of an oversized image still to come, consumed unkept."""

    @property
    def pending(self) -> int:
        """Bytes held back because a command is not complete yet (at most
        ``MAX_COMMAND_BYTES``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Command]:
        self._buf += data[self._take_skip(len(data)) :]
        out: list[Command] = []
        i, buf = 0, self._buf
        while i < len(buf):
            parsed = self._one(buf, i)
            if parsed is None:
                break
            out.append(parsed)
            i += len(parsed.raw)
            i += self._take_skip(len(buf) - i)
        del self._buf[:i]
        return out

    def _take_skip(self, available: int) -> int:
        """How many of ``available`` bytes belong to an oversized image's data."""
        take = min(self._skip, available)
        self._skip -= take
        return take

    def _one(self, buf: bytearray, i: int) -> Command | None:
        b = buf[i]
        if b >= 0x20 and b != 0x7F:
            run = _TEXT_RUN.match(buf, i)
            assert run is not None
            return Command(Op.TEXT, run.group())
        if b in _CONTROL:
            return Command(_CONTROL[b], bytes(buf[i : i + 1]))
        if b in (0x10, 0x1B, 0x1D, 0x1C):
            if i + 1 >= len(buf):
                return None
            size = self._size(buf, i)
            if size is None:
                return None
            op, length = size
            if length > MAX_COMMAND_BYTES:  # only GS v 0 can announce this much
                self._skip = length - RASTER_HEADER_BYTES
                return Command(op, bytes(buf[i : i + RASTER_HEADER_BYTES]))
            if i + length > len(buf):
                return None
            return Command(op, bytes(buf[i : i + length]))
        return Command(Op.OTHER, bytes(buf[i : i + 1]))  # NUL, CAN, …: ignored

    def _size(self, buf: bytearray, i: int) -> tuple[Op, int] | None:
        lead, code = buf[i], buf[i + 1]
        if lead == 0x10:
            return self._dle(code)
        table = {0x1B: _ESC_FIXED, 0x1D: _GS_FIXED, 0x1C: _FS_FIXED}[lead]
        if code in table:
            return table[code]
        return self._variable(buf, i, lead, code)

    @staticmethod
    def _dle(code: int) -> tuple[Op, int]:
        if code == 0x04:
            return (Op.REALTIME_STATUS, 3)
        if code == 0x05:
            return (Op.REALTIME_REQUEST, 3)
        if code == 0x14:
            return (Op.REALTIME_PULSE, 5)
        return (Op.UNKNOWN, 2)

    def _variable(self, buf: bytearray, i: int, lead: int, code: int) -> tuple[Op, int] | None:
        avail = len(buf) - i
        if lead == 0x1D and code == ord("V"):
            if avail < 3:
                return None
            return (Op.CUT, 4 if buf[i + 2] in _CUT_WITH_FEED else 3)
        if (lead == 0x1D and code == ord("(")) or (lead == 0x1C and code == ord("(")):
            if avail < 5:
                return None
            op = Op.EXTENDED if lead == 0x1D else Op.OTHER
            return (op, 5 + _u16(buf, i + 3))
        if lead == 0x1D and code == ord("v"):
            if avail < RASTER_HEADER_BYTES:
                return None
            return (Op.RASTER, RASTER_HEADER_BYTES + _u16(buf, i + 4) * _u16(buf, i + 6))
        if lead == 0x1B and code == ord("*"):
            if avail < 5:
                return None
            per_column = 3 if buf[i + 2] in (32, 33) else 1
            return (Op.COLUMN_IMAGE, 5 + per_column * _u16(buf, i + 3))
        if lead == 0x1D and code == ord("k"):
            return self._barcode(buf, i)
        if lead == 0x1B and code == ord("D"):
            return _terminated(buf, i, i + 2, Op.OTHER)
        return (Op.UNKNOWN, 2)

    @staticmethod
    def _barcode(buf: bytearray, i: int) -> tuple[Op, int] | None:
        if len(buf) - i < 3:
            return None
        if buf[i + 2] >= 65:  # GS k m n d1..dn
            return None if len(buf) - i < 4 else (Op.BARCODE, 4 + buf[i + 3])
        return _terminated(buf, i, i + 3, Op.BARCODE)  # GS k m d1..dk NUL


def _terminated(buf: bytearray, i: int, data_at: int, op: Op) -> tuple[Op, int] | None:
    """A command from ``i`` to its NUL, or ``MAX_TERMINATED_BYTES`` long without one;
    None while neither has arrived."""
    limit = i + MAX_TERMINATED_BYTES
    end = buf.find(b"\x00", data_at, limit)
    if end >= 0:
        return (op, end + 1 - i)
    return (op, MAX_TERMINATED_BYTES) if len(buf) >= limit else None
