"""``MemoryTransport``: an in-process printer behind the transport interface.

It runs the emulator's parser and print head synchronously: real-time requests are
answered at once, other commands are executed while the printer can print and held
otherwise, replies wait in an inbox for ``read``. Tests and benchmarks use it to drive
the ``Printer`` facade without sockets.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from printer_drivers.emulator.paper import PaperMachine, Receipt
from printer_drivers.emulator.parser import REALTIME_OPS, Command, CommandParser, Op
from printer_drivers.errors import TransportError


class MemoryTransport:
    readable = True

    def __init__(self, machine: PaperMachine | None = None, *, refuse: bool = False) -> None:
        self.receipts: list[Receipt] = []
        self.machine = machine or PaperMachine(on_receipt=self.receipts.append)
        self.uri = "memory://printer"
        self.refuse = refuse
        self._parser = CommandParser()
        self._held: deque[Command] = deque()
        self._inbox = bytearray()
        self._arrived = asyncio.Event()
        self._open = False

    @property
    def connected(self) -> bool:
        return self._open

    def set_state(self, **changes: Any) -> None:
        """Change faults; held commands run as soon as the printer can print again."""
        self.machine.state.update(changes)
        self._run_held()

    async def connect(self, timeout_s: float) -> None:
        if self.refuse:
            raise TransportError(f"connect {self.uri}: connection refused")
        self._open = True

    async def write(self, data: bytes, timeout_s: float) -> None:
        if not self._open:
            raise TransportError(f"{self.uri}: not connected")
        for command in self._parser.feed(data):
            if command.op in REALTIME_OPS:
                self._realtime(command)
            else:
                self._held.append(command)
        self._run_held()

    def _realtime(self, command: Command) -> None:
        state = self.machine.state
        if command.op is Op.REALTIME_STATUS and command.arg in (1, 2, 3, 4) and not state.hang:
            self._reply(state.realtime_reply(command.arg))

    def _run_held(self) -> None:
        while self._held and self.machine.state.can_print:
            self._reply(self.machine.execute(self._held.popleft()))

    def _reply(self, data: bytes) -> None:
        if data:
            self._inbox += data
            self._arrived.set()

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        if not self._open:
            raise TransportError(f"{self.uri}: not connected")
        if not self._inbox:
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._arrived.wait()
            except TimeoutError:
                return b""
        data = bytes(self._inbox[:max_bytes])
        del self._inbox[:max_bytes]
        return data

    async def close(self) -> None:
        self._open = False
