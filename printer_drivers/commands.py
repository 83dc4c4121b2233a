"""ESC/POS command bytes passline sends or understands, named after the Epson reference.

python-escpos's constants are reused where it has them; what it lacks (kanji mode, GS r,
GS ( H, ASB) is spelled out here once. The feed-and-cut, buzzer and native QR sequences
are those python-escpos's ``Escpos.cut``/``buzzer``/``qr(native=True)`` send, built from
its constants so that rendering a chit does not import its printer classes (and Pillow,
qrcode, python-barcode with them): ~4 MB of the store client's 40 (DESIGN.md §7).
"""

from __future__ import annotations

from escpos import constants as C

DLE: bytes = C.DLE
EOT: bytes = C.EOT
ESC: bytes = C.ESC
FS: bytes = C.FS
GS: bytes = C.GS
LF: bytes = C.CTL_LF

#: ESC @: clear the buffer and reset modes to the power-on settings.
INIT: bytes = C.HW_INIT

#: DLE EOT n (n = 1..4): real-time status; answered at once, even while printing.
REALTIME_STATUS_KINDS = (1, 2, 3, 4)


def realtime_status(n: int) -> bytes:
    """DLE EOT n: printer (1), offline cause (2), error cause (3), paper sensor (4)."""
    if n not in REALTIME_STATUS_KINDS:
        raise ValueError(f"expected DLE EOT n with n in 1..4, got {n}")
    return DLE + EOT + bytes((n,))


#: GS r 1: paper sensor status. Processed in order with the data: the end-of-job barrier.
PAPER_SENSOR_STATUS: bytes = GS + b"r\x01"
#: GS r 2: drawer kick-out connector status.
DRAWER_STATUS: bytes = GS + b"r\x02"

#: GS ( H fn=48 m=48: "transmit response" with a 4-digit process id (Epson TM series).
RESPONSE_REQUEST_PREFIX: bytes = GS + b"(H\x06\x00\x30\x30"
#: The answer to GS ( H: header 0x37, id 0x22, the 4 digits, NUL.
RESPONSE_HEADER: bytes = b"\x37\x22"
RESPONSE_LENGTH = 7


def response_request(process_id: int) -> bytes:
    """GS ( H asking the printer to echo ``process_id`` (0..9999) after buffered data."""
    return RESPONSE_REQUEST_PREFIX + f"{process_id % 10000:04d}".encode("ascii")


def response_reply(digits: bytes) -> bytes:
    """What a printer answers to GS ( H with these 4 id digits."""
    return RESPONSE_HEADER + digits + b"\x00"


#: GS a n: automatic status back; n = 0 disables it.
def automatic_status_back(n: int) -> bytes:
    return GS + b"a" + bytes((n & 0xFF,))


#: FS &: select kanji (double-byte) character mode; FS .: cancel it.
KANJI_ON: bytes = FS + b"&"
KANJI_OFF: bytes = FS + b"."
#: ESC t n: select a single-byte character code table.
CODEPAGE: bytes = C.CODEPAGE_CHANGE
#: GS ! n: character size, width multiplier in the high nibble, height in the low one.
CHAR_SIZE: bytes = C.TXT_SIZE
#: ESC E n: emphasis (bold).
BOLD_ON: bytes = C.TXT_STYLE["bold"][True]
BOLD_OFF: bytes = C.TXT_STYLE["bold"][False]
#: GS B n: white/black reverse printing.
INVERT_ON: bytes = C.TXT_STYLE["invert"][True]
INVERT_OFF: bytes = C.TXT_STYLE["invert"][False]
ALIGN: dict[str, bytes] = dict(C.TXT_STYLE["align"])


def char_size(width: int, height: int) -> bytes:
    """GS ! with 1..8 times width and height."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError(f"expected size multipliers 1..8, got {width}x{height}")
    return CHAR_SIZE + bytes((((width - 1) << 4) | (height - 1),))


#: ESC d n: print the buffer and feed n lines.
def feed_lines(n: int) -> bytes:
    if not 0 <= n <= 255:
        raise ValueError(f"expected 0..255 lines, got {n}")
    return ESC + b"d" + bytes((n,))


#: GS V m: full cut, partial cut (what python-escpos's ``cut`` sends after its feed).
FULL_CUT: bytes = C.PAPER_FULL_CUT
PARTIAL_CUT: bytes = C.PAPER_PART_CUT


#: ESC B: the buzzer of kitchen models (vendor command, not in the Epson reference).
BUZZER: bytes = C.BUZZER


def buzzer(times: int, duration: int) -> bytes:
    """ESC B n t: beep ``times`` times for ``duration`` × 100 ms (1..9 each)."""
    if not (1 <= times <= 9 and 1 <= duration <= 9):
        raise ValueError(f"expected buzzer times and duration 1..9, got {times}, {duration}")
    return BUZZER + bytes((times, duration))


#: GS ( k cn=49: QR code functions 165 (model), 167 (module size), 169 (error correction),
#: 180 (store the data) and 181 (print it), as in the Epson reference.
_QR_SYMBOL = b"1"
_QR_MODEL, _QR_MODULE_SIZE, _QR_ERROR_LEVEL, _QR_STORE, _QR_PRINT = 65, 67, 69, 80, 81


def _qr_function(fn: int, data: bytes, m: bytes = b"") -> bytes:
    """GS ( k pL pH cn fn [m] [data]: pL pH count the bytes after themselves."""
    size = (len(data) + len(m) + 2).to_bytes(2, "little")
    return GS + b"(k" + size + _QR_SYMBOL + bytes((fn,)) + m + data


def qr_code(content: str, module_dots: int) -> bytes:
    """A QR code printed by the printer itself: model 2, error correction L, modules of
    ``module_dots`` (1..16) dots; nothing for empty content."""
    if not 1 <= module_dots <= 16:
        raise ValueError(f"expected a QR module size of 1..16 dots, got {module_dots}")
    if not content:
        return b""
    return b"".join(
        (
            _qr_function(_QR_MODEL, bytes((48 + C.QR_MODEL_2, 0))),
            _qr_function(_QR_MODULE_SIZE, bytes((module_dots,))),
            _qr_function(_QR_ERROR_LEVEL, bytes((48 + C.QR_ECLEVEL_L,))),
            _qr_function(_QR_STORE, content.encode("utf-8"), b"0"),
            _qr_function(_QR_PRINT, b"", b"0"),
        )
    )
