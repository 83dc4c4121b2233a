"""The print head: executes parsed commands onto paper and cuts it into receipts. Pure.

It keeps the modes a real 80 mm printer keeps (size, bold, reverse, alignment, kanji
mode, code page), wraps text at the paper's edge like the printer does, and turns each
cut into a ``Receipt`` with its decoded text and raw bytes. Commands that must answer
(GS r, GS ( H) return their reply bytes; the caller decides when to run them.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from escpos.capabilities import get_profile
from escpos.codepages import CodePages

from printer_drivers import commands as cmd
from printer_drivers.emulator.parser import Command, Op
from printer_drivers.emulator.state import FaultState

#: The longest piece of paper before it is torn off (a receipt with ``cut`` false), as
#: staff would tear off a printout that never ends: ~40 m of 80 mm paper, and the bytes
#: that made it. A sender that never cuts cannot grow the emulator's memory past this.
MAX_SHEET_LINES = 10_000
MAX_SHEET_BYTES = 4 * 1024 * 1024
QR_CODE_TYPE = 0x31  # cn = 49: QR code
QR_STORE, QR_PRINT = 0x50, 0x51  # fn = 80 store data, 81 print stored data
RESPONSE_FN = 0x48  # GS ( H
ALIGNS = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}


@dataclass(frozen=True, slots=True)
class PrintedLine:
    text: str
    width: int = 1
    height: int = 1
    bold: bool = False
    invert: bool = False
    align: str = "left"


@dataclass(frozen=True)
class Receipt:
    """One cut piece of paper."""

    index: int
    lines: tuple[PrintedLine, ...]
    raw: bytes
    qr_codes: tuple[str, ...] = ()
    images: int = 0
    buzzer: int = 0
    cut: bool = True

    @property
    def text(self) -> str:
        """Decoded text, one line per printed line, trailing feed lines dropped."""
        return "\n".join(line.text for line in self.lines)


class _Modes(NamedTuple):
    width: int = 1
    height: int = 1
    bold: bool = False
    invert: bool = False
    align: str = "left"
    kanji: bool = False
    codepage: int = 0


@dataclass
class _Sheet:
    lines: list[PrintedLine] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    qr_codes: list[str] = field(default_factory=list)
    images: int = 0
    buzzer: int = 0


@lru_cache(maxsize=128)
def _python_encoding(name: str) -> str:
    """The Python codec of a python-escpos code page name (cp437 when unknown)."""
    try:
        python_name: str = CodePages.get_encoding(name).get("python_encode", "cp437")
    except KeyError:
        python_name = "cp437"
    return python_name


class PaperMachine:
    """Executes non-real-time commands; ``on_receipt`` gets each cut receipt."""

    def __init__(
        self,
        *,
        columns: int = 48,
        encoding: str = "gb18030",
        profile: str = "default",
        kanji_default: bool | None = None,
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        self.columns = columns
        self.encoding = encoding
        self._pages = {int(k): v for k, v in get_profile(profile).codePages.items()}
        self._kanji_default = encoding in ("gb18030", "gbk", "gb2312", "big5")
        if kanji_default is not None:
            self._kanji_default = kanji_default
        self._on_receipt = on_receipt
        self.state = FaultState()
        self.asb_mask = 0
        self.receipts_cut = 0
        self._reset_modes()
        self._sheet = _Sheet()
        self._line: list[str] = []
        self._used = 0
        self._line_modes = self._modes
        self._qr_data = ""

    def _reset_modes(self) -> None:
        self._modes = _Modes(kanji=self._kanji_default)
        self._decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")

    # --- text ---------------------------------------------------------------------
    def _codepage_encoding(self) -> str:
        return _python_encoding(self._pages.get(self._modes.codepage, "CP437"))

    def _text(self, data: bytes) -> bytes:
        if self._modes.kanji:
            chars = self._decoder.decode(data)
        else:
            chars = data.decode(self._codepage_encoding(), errors="replace")
        modes = self._modes
        size = len(chars) if not modes.kanji or chars.isascii() else -1
        if self._line and 0 <= size * modes.width <= self.columns - self._used:
            self._line.append(chars)  # fast path: fits on the current line as it is
            self._used += size * modes.width
            return b""
        for char in chars:
            self._put(char)
        return b""

    def _put(self, char: str) -> None:
        modes = self._modes
        size = (2 if modes.kanji and ord(char) >= 0x80 else 1) * modes.width
        if self._used + size > self.columns:  # the printer wraps at the paper's edge
            self._end_line()
        if not self._line:
            self._line_modes = self._modes
        self._line.append(char)
        self._used += size

    def _end_line(self) -> None:
        m = self._line_modes if self._line else self._modes
        text = "".join(self._line).rstrip()
        self._sheet.lines.append(PrintedLine(text, m.width, m.height, m.bold, m.invert, m.align))
        self._line, self._used = [], 0
        if len(self._sheet.lines) >= MAX_SHEET_LINES:
            self._tear_off()

    def _tear_off(self) -> None:
        """The sheet is as long as a sheet gets: torn off here, as staff would."""
        line, used, modes = self._line, self._used, self._line_modes
        self._line, self._used = [], 0
        self.finish_sheet(cut=False)
        self._line, self._used, self._line_modes = line, used, modes

    def _flush_decoder(self) -> None:
        for char in self._decoder.decode(b"", final=True):
            self._put(char)

    # --- commands -------------------------------------------------------------------
    def execute(self, command: Command) -> bytes:
        """Run one command; returns the bytes the printer sends back (usually none)."""
        if len(self._sheet.raw) + len(command.raw) > MAX_SHEET_BYTES:
            self._tear_off()
        self._sheet.raw += command.raw
        handler = _HANDLERS.get(command.op)
        if handler is None:
            return b""
        return handler(self, command)

    def _lf(self, _: Command) -> bytes:
        self._end_line()
        return b""

    def _feed(self, c: Command) -> bytes:
        if self._line:
            self._end_line()
        for _ in range(c.arg):
            self._end_line()
        return b""

    def _feed_dots(self, _: Command) -> bytes:
        if self._line:
            self._end_line()
        return b""

    def _init(self, _: Command) -> bytes:
        self._flush_decoder()
        self._reset_modes()
        return b""

    def _set(self, **changes: Any) -> bytes:
        self._modes = self._modes._replace(**changes)
        return b""

    def _kanji(self, on: bool) -> bytes:
        if self._modes.kanji and not on:
            self._flush_decoder()
        return self._set(kanji=on)

    def _cut(self, _: Command) -> bytes:
        self._flush_decoder()
        if self._line:
            self._end_line()
        self.finish_sheet(cut=True)
        return b""

    def finish_sheet(self, *, cut: bool) -> Receipt | None:
        """End the current piece of paper (a cut, or torn off by hand when ``cut`` is false)."""
        sheet, self._sheet = self._sheet, _Sheet()
        lines = list(sheet.lines)
        while lines and not lines[-1].text:
            lines.pop()
        if not lines and not sheet.qr_codes and not sheet.images and not cut:
            return None
        self.receipts_cut += 1
        receipt = Receipt(
            self.receipts_cut,
            tuple(lines),
            bytes(sheet.raw),
            tuple(sheet.qr_codes),
            sheet.images,
            sheet.buzzer,
            cut,
        )
        if self._on_receipt is not None:
            self._on_receipt(receipt)
        return receipt

    def _image(self, c: Command) -> bytes:
        if self._line:
            self._end_line()
        if c.op is Op.RASTER:
            width, height = (c.raw[4] | c.raw[5] << 8) * 8, c.raw[6] | c.raw[7] << 8
            self._sheet.lines.append(PrintedLine(f"[image {width}x{height}]"))
        self._sheet.images += 1
        return b""

    def _extended(self, c: Command) -> bytes:
        """GS ( k (QR code) and GS ( H (transmit response); other functions ignored."""
        fn_group, body = c.raw[2], c.raw[5:]
        if fn_group == ord("k") and len(body) >= 2 and body[0] == QR_CODE_TYPE:
            if body[1] == QR_STORE:
                self._qr_data = body[3:].decode("utf-8", errors="replace")
            elif body[1] == QR_PRINT:
                if self._line:
                    self._end_line()
                self._sheet.qr_codes.append(self._qr_data)
                self._sheet.lines.append(PrintedLine(f"[QR {self._qr_data}]", align="center"))
        elif fn_group == ord("H") and len(body) == 6 and body[:2] == b"\x30\x30":
            return cmd.response_reply(body[2:6])
        return b""

    def _paper_sensor(self, c: Command) -> bytes:
        if c.arg in (1, 49):
            return bytes((self.state.paper_sensor_byte(),))
        if c.arg in (2, 50):
            return b"\x01" if self.state.drawer_open else b"\x00"
        return b""

    def _asb(self, c: Command) -> bytes:
        self.asb_mask = c.arg
        return self.state.asb_block() if c.arg else b""

    def _buzz(self, _: Command) -> bytes:
        self._sheet.buzzer += 1
        return b""

    def _print_mode(self, c: Command) -> bytes:
        n = c.arg  # ESC !: bit 3 bold, bit 4 double height, bit 5 double width
        return self._set(
            bold=bool(n & 0x08), height=2 if n & 0x10 else 1, width=2 if n & 0x20 else 1
        )


_HANDLERS: dict[Op, Callable[[PaperMachine, Command], bytes]] = {
    Op.TEXT: lambda m, c: m._text(c.raw),
    Op.LF: PaperMachine._lf,
    Op.FEED_LINES: PaperMachine._feed,
    Op.FEED_DOTS: PaperMachine._feed_dots,
    Op.INIT: PaperMachine._init,
    Op.CUT: PaperMachine._cut,
    Op.RASTER: PaperMachine._image,
    Op.COLUMN_IMAGE: PaperMachine._image,
    Op.EXTENDED: PaperMachine._extended,
    Op.PAPER_SENSOR: PaperMachine._paper_sensor,
    Op.ASB: PaperMachine._asb,
    Op.BUZZER: PaperMachine._buzz,
    Op.BEL: PaperMachine._buzz,
    Op.PRINT_MODE: PaperMachine._print_mode,
    Op.SIZE: lambda m, c: m._set(width=(c.arg >> 4 & 7) + 1, height=(c.arg & 7) + 1),
    Op.BOLD: lambda m, c: m._set(bold=bool(c.arg & 1)),
    Op.INVERT: lambda m, c: m._set(invert=bool(c.arg & 1)),
    Op.ALIGN: lambda m, c: m._set(align=ALIGNS.get(c.arg, "left")),
    Op.CODEPAGE: lambda m, c: m._set(codepage=c.arg),
    Op.KANJI_ON: lambda m, c: m._kanji(True),
    Op.KANJI_OFF: lambda m, c: m._kanji(False),
}
