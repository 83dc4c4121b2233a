"""ESC/POS command bytes passline sends or understands, named after the Epson reference.

python-escpos's constants are reused where it has them; what it lacks (kanji mode, GS r,
GS ( H, ASB) is spelled out here once.
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
