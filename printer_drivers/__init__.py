"""ESC/POS rendering, status decoding, async transports and the printer emulator.

- ``render(doc, profile) -> bytes`` and ``RenderProfile.from_config(printer)``: pure.
- ``decode_status(...) -> PrinterStatus``: pure, never "ok" without an answer.
- ``open_printer(config) -> Printer``: ``print_job``, ``status``, ``aclose``.
- ``printer_drivers.emulator.PrinterEmulator``: the printer for tests and demos.
"""

from printer_drivers.errors import (
    PrinterDriverError,
    RenderError,
    StatusReplyError,
    TransportError,
    TransportUnavailableError,
    UnsupportedEncodingError,
)
from printer_drivers.printer import Printer, PrintOutcome, PrintResult, Timeouts, open_printer
from printer_drivers.profile import Barrier, RenderProfile
from printer_drivers.status import Reply, decode_status
from printer_drivers.templates import render
from printer_drivers.transports.base import Transport, open_transport

__all__ = [
    "Barrier",
    "PrintOutcome",
    "PrintResult",
    "Printer",
    "PrinterDriverError",
    "RenderError",
    "RenderProfile",
    "Reply",
    "StatusReplyError",
    "Timeouts",
    "Transport",
    "TransportError",
    "TransportUnavailableError",
    "UnsupportedEncodingError",
    "decode_status",
    "open_printer",
    "open_transport",
    "render",
]
