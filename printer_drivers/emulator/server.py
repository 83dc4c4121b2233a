"""``PrinterEmulator``: an 80 mm ESC/POS LAN printer on TCP, with a JSON control port.

Like a real printer it serves one session at a time (a second connection waits until the
first closes), answers DLE EOT at once, prints what it receives at ``cps`` characters a
second and stops while it cannot print. Each cut receipt is kept in ``receipts`` and,
with ``out_dir``, written as ``NAME-NNNN.txt`` (decoded text) and ``NAME-NNNN.bin``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from printer_drivers.emulator.control import connection_handler, parse_json_object
from printer_drivers.emulator.engine import Engine, describe_receipt
from printer_drivers.emulator.paper import PaperMachine, Receipt
from printer_drivers.emulator.parser import CommandParser
from printer_drivers.local_http import host_allowed, listens_beyond_loopback

log = logging.getLogger(__name__)

READ_CHUNK = 4096
COLUMNS = {80: 48, 58: 32}


class PrinterEmulator:
    """Use as ``async with PrinterEmulator() as emu:``; ports are chosen when 0."""

    def __init__(
        self,
        out_dir: str | Path | None = None,
        cps: float | None = None,
        name: str = "printer-sim",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = 0,
        width_mm: int = 80,
        encoding: str = "gb18030",
        profile: str = "default",
    ) -> None:
        self.name = name
        self.host = host
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.receipts: list[Receipt] = []
        machine = PaperMachine(
            columns=COLUMNS.get(width_mm, 48),
            encoding=encoding,
            profile=profile,
            on_receipt=self._on_receipt,
        )
        self.engine = Engine(machine, cps=cps)
        self._want_ports = (port, control_port)
        self._servers: list[asyncio.Server] = []
        self._session = asyncio.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._receipt_added = asyncio.Condition()
        self.port = 0
        self.control_port = 0
        self.sessions = 0

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        port, control_port = self._want_ports
        printer = await asyncio.start_server(self._serve_session, self.host, port)
        self._servers.append(printer)
        self.port = printer.sockets[0].getsockname()[1]
        if control_port is not None:
            handler = connection_handler(self._control, self._host_ok)
            control = await asyncio.start_server(handler, self.host, control_port)
            self._servers.append(control)
            self.control_port = control.sockets[0].getsockname()[1]
        self._spawn(self.engine.run())
        log.info(
            "printer %s on %s:%d (control %d)", self.name, self.host, self.port, self.control_port
        )

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()

    async def __aenter__(self) -> PrinterEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        await asyncio.Event().wait()

    # --- state ----------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        return self.engine.state.to_json()

    async def set_state(self, **changes: Any) -> dict[str, Any]:
        """Set faults, e.g. ``paper="out"``, ``cover_open=True``, ``hang=True``, ``reset=True``."""
        await self.engine.state_changed(changes)
        if self.engine.state.unreachable:
            for writer in list(self._writers):
                writer.close()
        return self.state

    def set_state_now(self, **changes: Any) -> None:
        """``set_state`` from synchronous code running in the emulator's loop thread."""
        self.engine.state.update(dict(changes))  # validate now, notify the loop next
        self._spawn(self.engine.state_changed({}))
        if self.engine.state.unreachable:
            for writer in list(self._writers):
                writer.close()

    async def wait_receipts(self, count: int, timeout_s: float = 10.0) -> list[Receipt]:
        """The first ``count`` receipts, waiting up to ``timeout_s`` seconds for them."""
        async with self._receipt_added:
            await asyncio.wait_for(
                self._receipt_added.wait_for(lambda: len(self.receipts) >= count), timeout_s
            )
        return self.receipts[:count]

    async def drained(self, timeout_s: float = 10.0) -> None:
        """Wait until everything received so far has been printed."""
        await asyncio.wait_for(self.engine.drained(), timeout_s)

    def _on_receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)
        if self.out_dir is not None:
            stem = self.out_dir / f"{self.name}-{receipt.index:04d}"
            stem.with_suffix(".txt").write_text(receipt.text + "\n", encoding="utf-8")
            stem.with_suffix(".bin").write_bytes(receipt.raw)
        self._spawn(self._notify_receipt())

    async def _notify_receipt(self) -> None:
        async with self._receipt_added:
            self._receipt_added.notify_all()

    # --- printer port -----------------------------------------------------------------
    async def _serve_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            if self.engine.state.unreachable:
                return
            async with self._session:  # one session at a time, like a real printer
                if self.engine.state.unreachable or writer.is_closing():
                    return
                self.sessions += 1
                self.engine.attach(self._sink(writer))
                try:
                    await self._pump(reader)
                finally:
                    self.engine.attach(None)
        except (ConnectionError, OSError) as exc:
            log.debug("session on %s ended: %s", self.name, exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    def _sink(writer: asyncio.StreamWriter) -> Any:
        def send(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        return send

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        parser = CommandParser()
        while data := await reader.read(READ_CHUNK):
            await self.engine.intake(parser.feed(data))

    # --- control port -------------------------------------------------------------------
    def _host_ok(self, header: str | None) -> bool:
        wide = listens_beyond_loopback(self.host)
        return host_allowed(header, beyond_loopback=wide, also=(self.host,))

    async def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/state" and method == "GET":
            return 200, self.state
        if path == "/state" and method == "POST":
            try:
                return 200, await self.set_state(**parse_json_object(body))
            except ValueError as exc:
                return 400, {"error": str(exc)}
        if path == "/receipts" and method == "GET":
            return 200, [describe_receipt(r) for r in self.receipts]
        if path == "/receipts" and method == "DELETE":
            self.receipts.clear()
            return 200, []
        if path in ("/state", "/receipts"):
            return 405, {"error": f"{method} not allowed on {path}"}
        return 404, {"error": f"no such path {path}; try /state or /receipts"}
