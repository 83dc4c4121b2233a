"""The printer emulator of DESIGN.md §5.4: ``PrinterEmulator`` and its parts."""

from printer_drivers.emulator.paper import PaperMachine, PrintedLine, Receipt
from printer_drivers.emulator.server import PrinterEmulator

__all__ = ["PaperMachine", "PrintedLine", "PrinterEmulator", "Receipt"]
