"""``passline printer-sim``: the ESC/POS printer emulator of DESIGN.md §5.4."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click


@click.command("printer-sim")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=9100,
    show_default=True,
    help="TCP port of the printer (0: pick a free one).",
)
@click.option(
    "--control-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="JSON control port (default: --port + 1; 0: pick a free one).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--name",
    default="printer-sim",
    show_default=True,
    help="Printer name, used in receipt file names.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each cut receipt here as NAME-NNNN.txt and NAME-NNNN.bin.",
)
@click.option(
    "--cps",
    type=click.FloatRange(min=1),
    default=None,
    help="Print speed in characters per second (default: instant).",
)
@click.option(
    "--width",
    "width_mm",
    type=click.Choice(["58", "80"]),
    default="80",
    show_default=True,
    help="Paper width in mm.",
)
@click.option(
    "--encoding",
    default="gb18030",
    show_default=True,
    help="Kanji-mode encoding the printer is set to (gb18030, gbk, big5).",
)
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="python-escpos profile whose code page table ESC t uses.",
)
def printer_sim(
    port: int,
    control_port: int | None,
    host: str,
    name: str,
    out: Path | None,
    cps: float | None,
    width_mm: str,
    encoding: str,
    profile: str,
) -> None:
    """Emulate an 80 mm ESC/POS LAN printer, with faults set over a JSON control port."""
    from printer_drivers.emulator import PrinterEmulator

    if control_port is None:
        control_port = port + 1 if port else 0
    emulator = PrinterEmulator(
        out,
        cps,
        name,
        host=host,
        port=port,
        control_port=control_port,
        width_mm=int(width_mm),
        encoding=encoding,
        profile=profile,
    )
    try:
        asyncio.run(_serve(emulator))
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port} / {control_port}: {exc.strerror or exc}"
        ) from None


async def _serve(emulator: object) -> None:
    from printer_drivers.emulator import PrinterEmulator

    assert isinstance(emulator, PrinterEmulator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still raises
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        click.echo(
            f"{emulator.name}: listening on {emulator.host}:{emulator.port} "
            f"control {emulator.host}:{emulator.control_port}",
            nl=True,
        )
        import sys

        sys.stdout.flush()
        await stop.wait()
    click.echo(f"{emulator.name}: stopped after {len(emulator.receipts)} receipts")
