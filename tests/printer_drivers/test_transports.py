"""Transports other than TCP: serial (over a pseudo-terminal), usb, file, by URI."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from printer_drivers import PrintResult, TransportError, open_printer, open_transport
from printer_drivers.emulator.paper import PaperMachine, Receipt
from printer_drivers.emulator.parser import REALTIME_OPS, CommandParser
from printer_drivers.transports.file import FileTransport
from printer_drivers.transports.serial import SerialTransport
from printer_drivers.transports.tcp import TcpTransport
from printer_drivers.transports.usb import UsbTransport
from protocol.config import PrinterConfig
from protocol.status import PrinterState, StatusSource


class PtyPrinter:
    """A serial printer on the far side of a pseudo-terminal, served by a thread."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.receipts: list[Receipt] = []
        self.machine = PaperMachine(on_receipt=self.receipts.append)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        parser = CommandParser()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for command in parser.feed(data):
                if command.op in REALTIME_OPS:
                    reply = self.machine.state.realtime_reply(command.arg)
                else:
                    reply = self.machine.execute(command)
                if reply:
                    os.write(self.master, reply)

    def __enter__(self) -> PtyPrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_printer() -> Iterator[PtyPrinter]:
    with PtyPrinter() as printer:
        yield printer


async def test_serial_printer_prints_and_reports_status(pty_printer: PtyPrinter) -> None:
    cfg = PrinterConfig(
        printer_id="s", name="Serial", transport=f"serial://{pty_printer.path}?baud=19200"
    )
    async with open_printer(cfg, barrier_timeout=10) as printer:
        status = await printer.status()
        assert status.state is PrinterState.READY and status.source is StatusSource.REALTIME
        outcome = await printer.print_job(b"\x1b@serial hello\n\x1dV\x00")
        assert outcome.result is PrintResult.PRINTED
        pty_printer.machine.state.update({"paper": "out"})
        assert (await printer.status()).state is PrinterState.ERROR
    assert [r.text for r in pty_printer.receipts] == ["serial hello"]


async def test_missing_serial_device_is_offline() -> None:
    cfg = PrinterConfig(printer_id="s", name="S", transport="serial:///dev/does-not-exist")
    async with open_printer(cfg, connect_timeout=1) as printer:
        assert (await printer.status()).state is PrinterState.OFFLINE
        assert (await printer.print_job(b"x")).result is PrintResult.FAILED


async def test_usb_without_a_device_is_offline_not_an_exception() -> None:
    cfg = PrinterConfig(printer_id="u", name="U", transport="usb://04b8:0202")
    async with open_printer(cfg, connect_timeout=1) as printer:
        status = await printer.status()
        assert status.state is PrinterState.OFFLINE and not status.reachable
        assert (await printer.print_job(b"x")).result is PrintResult.FAILED


async def test_file_transport_reports_a_missing_directory(tmp_path: Path) -> None:
    transport = FileTransport(str(tmp_path / "no" / "such" / "lp0"))
    with pytest.raises(TransportError, match="open"):
        await transport.connect(1)


def test_uris() -> None:
    serial = open_transport("serial:///dev/ttyUSB0?baud=19200&parity=e&stopbits=2&rtscts=1")
    assert isinstance(serial, SerialTransport) and serial.port == "/dev/ttyUSB0"
    assert serial.settings == {
        "baudrate": 19200,
        "bytesize": 8,
        "parity": "E",
        "stopbits": 2,
        "rtscts": True,
        "xonxoff": False,
    }
    usb = open_transport("usb://04b8:0e15?interface=1")
    assert isinstance(usb, UsbTransport) and (usb.vendor_id, usb.product_id, usb.interface) == (
        0x04B8,
        0x0E15,
        1,
    )
    assert isinstance(open_transport("file:///dev/usb/lp0"), FileTransport)
    assert isinstance(open_transport("tcp://printer.local"), TcpTransport)
    for bad in (
        "ipp://x",
        "usb://zz:01",
        "serial://?baud=1",
        "serial:///dev/x?baud=fast",
        "tcp://h:99999",
    ):
        with pytest.raises(TransportError):
            open_transport(bad)
