"""A chit under construction: styled, wrapped text lines and the commands around them.

Commands come from ``printer_drivers.commands`` (python-escpos's constants, and the bytes
its ``cut``, ``buzzer`` and native ``qr`` send). Only a QR code on a printer without
native QR goes through python-escpos's ``Dummy`` printer, to rasterise it with qrcode and
Pillow; they are imported then, not with this module (DESIGN.md §7: the store client
stays under 40 MB). Text is encoded here because python-escpos sends Chinese as GB18030
without entering kanji mode and switches code pages on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from printer_drivers import commands as cmd
from printer_drivers import text as tx
from printer_drivers.profile import RenderProfile
from protocol.config import ChitStyle

Align = Literal["left", "center", "right"]
QR_MODULE_DOTS = 6
QR_MODULE_DOTS_58 = 5
CUT_FEED_LINES = 6  # what python-escpos feeds before a cut: past the tear bar


@dataclass(frozen=True, slots=True)
class Style:
    width: int = 1
    height: int = 1
    bold: bool = False
    invert: bool = False
    align: Align = "left"


NORMAL = Style()


class Chit:
    """Builds one chit's bytes for one profile; ``bytes()`` when done."""

    def __init__(self, profile: RenderProfile, look: ChitStyle | None = None) -> None:
        self.profile = profile
        self.look = look or ChitStyle()
        """The store's chit layout (``StoreConfig.chit``): what the templates vary."""
        self._out: list[bytes] = []
        self._raw = self._out.append
        self._style = NORMAL
        self._raw(cmd.INIT)
        self._select_charset()

    def _select_charset(self) -> None:
        if self.profile.multibyte:
            self._raw(cmd.KANJI_ON)
        else:  # Chinese-market printers start in kanji mode: leave it for code-page text
            _, slot = self.profile.codepage()
            self._raw(cmd.KANJI_OFF + cmd.CODEPAGE + bytes((slot,)))

    def _set_style(self, style: Style) -> None:
        old, raw = self._style, self._raw
        if style.align != old.align:
            raw(cmd.ALIGN[style.align])
        if (style.width, style.height) != (old.width, old.height):
            raw(cmd.char_size(style.width, style.height))
        if style.bold != old.bold:
            raw(cmd.BOLD_ON if style.bold else cmd.BOLD_OFF)
        if style.invert != old.invert:
            raw(cmd.INVERT_ON if style.invert else cmd.INVERT_OFF)
        self._style = style

    def columns(self, style: Style = NORMAL) -> int:
        return self.profile.columns // style.width

    def text(
        self, text: str, style: Style = NORMAL, *, indent: int = 0, hang: int = 0, pad: int = 0
    ) -> None:
        """Wrapped lines of ``text``, each ended by LF; ``pad`` spaces around each line."""
        shown = tx.printable(text, self.profile)
        room = self.columns(style) - 2 * pad
        lines = tx.wrap(shown, room, multibyte=self.profile.multibyte, indent=indent, hang=hang)
        self._set_style(style)
        for line in lines:
            self._raw(tx.encode(" " * pad + line + " " * pad, self.profile) + cmd.LF)

    def banner(self, text: str, style: Style) -> None:
        """Reverse-printed text, a space each side so it reads as a block."""
        inverted = Style(style.width, style.height, style.bold, True, style.align)
        self.text(text, inverted, pad=1)

    def rule(self, char: str = "-") -> None:
        self._set_style(NORMAL)
        self._raw(char.encode("ascii") * self.profile.columns + cmd.LF)

    def titled_rule(self, title: str) -> None:
        """``---- Course 2 ----`` across the line."""
        inner = f" {tx.printable(title, self.profile)} "
        room = self.profile.columns - tx.width(inner, self.profile.multibyte)
        left = max(room // 2, 2)
        self._set_style(NORMAL)
        line = "-" * left + inner + "-" * max(room - left, 2)
        self._raw(tx.encode(line, self.profile) + cmd.LF)

    def blank(self, lines: int = 1) -> None:
        self._set_style(NORMAL)
        self._raw(cmd.LF * lines)

    def qr(self, content: str) -> None:
        """A centred QR code: native GS ( k where the profile has it, else a raster image."""
        self._set_style(Style(align="center"))
        if self.profile.native_qr:
            size = QR_MODULE_DOTS if self.profile.width_mm == 80 else QR_MODULE_DOTS_58
            self._raw(cmd.qr_code(content, size))
        else:
            self._raw(_raster_qr(content, self.profile))
        self._raw(cmd.LF)

    def buzz(self) -> None:
        if self.profile.buzzer:
            self._raw(cmd.buzzer(times=2, duration=3))

    def cut(self) -> None:
        """Feed past the tear bar and cut; styles back to normal for the next chit."""
        self._set_style(NORMAL)
        self._raw(cmd.feed_lines(CUT_FEED_LINES) + self.profile.cut)

    def bytes(self) -> bytes:
        return b"".join(self._out)


def _raster_qr(content: str, profile: RenderProfile) -> bytes:
    """A QR code drawn by qrcode and rasterised by python-escpos (GS v 0)."""
    import qrcode  # type: ignore[import-untyped]
    from escpos.printer import Dummy

    code = qrcode.QRCode(box_size=QR_MODULE_DOTS_58, border=1)
    code.add_data(content)
    code.make(fit=True)
    image = code.make_image()._img.convert("RGB")
    printer = Dummy(profile=profile.escpos_profile)
    printer.image(image, impl="bitImageRaster")
    output: bytes = printer.output
    return output
