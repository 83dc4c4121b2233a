from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from printer_drivers.emulator import PrinterEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[PrinterEmulator]:
    """A fresh 80 mm printer on 127.0.0.1 random ports."""
    async with PrinterEmulator(name="test") as emu:
        yield emu
