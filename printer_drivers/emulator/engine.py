"""The emulated printer's mechanism: a bounded receive buffer and a print loop.

Real-time requests (DLE EOT) are answered as they arrive, from the current state.
Everything else waits in the receive buffer and is executed in order by the print loop,
which stops while the printer cannot print (paper out, cover open, error, offline,
hang) — so GS r and GS ( H, which sit in that order, are answered only once everything
before them has printed: exactly what makes them an end-of-job barrier (DESIGN.md §4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from printer_drivers.emulator.paper import PaperMachine, Receipt
from printer_drivers.emulator.parser import REALTIME_OPS, Command, Op

log = logging.getLogger(__name__)

#: Receive buffer: a sender blocks (TCP flow control) when this much is waiting.
RECEIVE_BUFFER_BYTES = 64 * 1024
Sink = Callable[[bytes], None]


class Engine:
    """Owns the paper machine, the fault state and the print loop task."""

    def __init__(self, machine: PaperMachine, *, cps: float | None = None) -> None:
        self.machine = machine
        self.state = machine.state
        self.cps = cps
        self._queue: asyncio.Queue[list[Command]] = asyncio.Queue()
        self._buffered = 0
        self._changed = asyncio.Condition()
        self._sink: Sink | None = None
        self.bytes_in = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet printed."""
        return self._buffered

    def attach(self, sink: Sink | None) -> None:
        """Where replies go: the current session, or nowhere."""
        self._sink = sink

    def _send(self, data: bytes) -> None:
        if data and self._sink is not None and not self.state.hang:
            self._sink(data)

    async def state_changed(self, changes: dict[str, Any]) -> None:
        """Apply fault changes; ``ValueError`` for a bad field; ASB reports them."""
        before = self.state.asb_block()
        self.state.update(changes)
        if self.machine.asb_mask and self.state.asb_block() != before:
            self._send(self.state.asb_block())
        async with self._changed:
            self._changed.notify_all()

    async def intake(self, commands: list[Command]) -> None:
        """Answer real-time requests now; queue the rest (waits while the buffer is full)."""
        batch: list[Command] = []
        for command in commands:
            self.bytes_in += len(command.raw)
            if command.op in REALTIME_OPS:
                self._realtime(command)
            else:
                batch.append(command)
        if not batch:
            return
        if self._buffered >= RECEIVE_BUFFER_BYTES:
            async with self._changed:
                await self._changed.wait_for(lambda: self._buffered < RECEIVE_BUFFER_BYTES)
        self._buffered += sum(len(c.raw) for c in batch)
        self._queue.put_nowait(batch)

    def _realtime(self, command: Command) -> None:
        if command.op is Op.REALTIME_STATUS and command.arg in (1, 2, 3, 4):
            self._send(self.state.realtime_reply(command.arg))

    async def run(self) -> None:
        """The print loop; runs until cancelled."""
        while True:
            batch = await self._queue.get()
            for command in batch:
                await self._print(command)
            async with self._changed:
                self._changed.notify_all()

    async def _print(self, command: Command) -> None:
        if not self.state.can_print:
            async with self._changed:
                await self._changed.wait_for(lambda: self.state.can_print)
        reply = self.machine.execute(command)
        self._buffered -= len(command.raw)
        self._send(reply)
        if self.cps:
            await asyncio.sleep(self._print_time(command))

    def _print_time(self, command: Command) -> float:
        """``cps`` characters a second; a line feed costs one character."""
        assert self.cps
        chars = len(command.raw) if command.op is Op.TEXT else 1
        return chars / self.cps

    async def drained(self) -> None:
        """Wait until everything received has been printed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._buffered == 0)


def describe_receipt(receipt: Receipt) -> dict[str, Any]:
    return {
        "index": receipt.index,
        "text": receipt.text,
        "bytes": len(receipt.raw),
        "qr_codes": list(receipt.qr_codes),
        "images": receipt.images,
        "buzzer": receipt.buzzer,
        "cut": receipt.cut,
    }
