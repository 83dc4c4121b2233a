"""Run a ``PrinterEmulator`` for synchronous code: in a thread, or as a subprocess.

``EmulatorThread`` gives blocking tests (python-escpos's own ``Network`` printer, say) a
printer whose event loop is not theirs. ``EmulatorProcess`` starts
``passline printer-sim`` and reads the ports it prints.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from printer_drivers.emulator.paper import Receipt
from printer_drivers.emulator.server import PrinterEmulator

T = TypeVar("T")
START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 10.0
READY_LINE = re.compile(r"listening on (\S+):(\d+) control \S+:(\d+)")


class EmulatorThread:
    """``with EmulatorThread(**kwargs) as emu:`` — a ``PrinterEmulator`` on its own loop."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.emulator: PrinterEmulator | None = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(CALL_TIMEOUT_S)

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self.emulator = self._call(self._start())
        return self

    async def _start(self) -> PrinterEmulator:
        emulator = PrinterEmulator(**self._kwargs)
        await emulator.start()
        return emulator

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.emulator is not None:
            self._call(self.emulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self._loop.close()

    def _emu(self) -> PrinterEmulator:
        if self.emulator is None:
            raise RuntimeError("expected the emulator to be started (use it in a with block)")
        return self.emulator

    @property
    def port(self) -> int:
        return self._emu().port

    @property
    def control_port(self) -> int:
        return self._emu().control_port

    @property
    def receipts(self) -> list[Receipt]:
        return list(self._emu().receipts)

    def set_state(self, **changes: Any) -> dict[str, Any]:
        return self._call(self._emu().set_state(**changes))

    def wait_receipts(self, count: int, timeout_s: float = 10.0) -> list[Receipt]:
        future = asyncio.run_coroutine_threadsafe(
            self._emu().wait_receipts(count, timeout_s), self._loop
        )
        return future.result(timeout_s + 1)


class EmulatorProcess:
    """``with EmulatorProcess("--cps", "200") as sim:`` — ``passline printer-sim`` running."""

    def __init__(self, *args: str) -> None:
        self.args = ["-m", "passline", "printer-sim", "--port", "0", "--control-port", "0", *args]
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.control_port = 0

    def __enter__(self) -> EmulatorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, *self.args], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printer-sim prints its ports first
        match = READY_LINE.search(line)
        if match is None:
            self.proc.kill()
            raise RuntimeError(f"printer-sim did not start: {line!r}")
        self.port, self.control_port = int(match.group(2)), int(match.group(3))
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(START_TIMEOUT_S)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request to the control port; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        url = f"http://127.0.0.1:{self.control_port}{path}"
        request = urllib.request.Request(url, data=data, method=method)
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            return json.loads(response.read())
