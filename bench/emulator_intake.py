"""Emulator intake rate: how fast ``passline printer-sim`` takes and prints chits over TCP.

One client writes N copies of a 20-line kitchen chit over one connection, then waits for
a GS r barrier (answered after the last one printed). Instant print speed (no --cps).

    .venv/bin/python bench/emulator_intake.py [--chits 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from printer_drivers import RenderProfile, render
from printer_drivers import commands as cmd
from printer_drivers.emulator import PrinterEmulator
from tests.printer_drivers import samples


async def run(chits: int) -> None:
    data = render(samples.big_order(), RenderProfile.build("default", 80, "gb18030"))
    async with PrinterEmulator(control_port=None) as emu:
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        start = time.perf_counter()
        for _ in range(chits):
            writer.write(data)
            await writer.drain()
        writer.write(cmd.PAPER_SENSOR_STATUS)
        await asyncio.wait_for(reader.readexactly(1), 600)
        elapsed = time.perf_counter() - start
        writer.close()
        assert len(emu.receipts) == chits, len(emu.receipts)
    total = len(data) * chits
    print(
        f"{chits} chits of {len(data)} bytes in {elapsed:.2f}s: "
        f"{chits / elapsed:.0f} chits/s, {total / elapsed / 1e6:.2f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chits", type=int, default=2000)
    asyncio.run(run(parser.parse_args().chits))


if __name__ == "__main__":
    main()
