"""Base for transports over blocking libraries (pyserial, pyusb, files).

The blocking calls run in one worker thread per transport and nowhere else (STYLE.md
rule 3), each bounded by the device's own timeout and by ``asyncio.wait_for``: a device
that wedges its driver can cost a thread, never the event loop or the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from printer_drivers.errors import TransportError

T = TypeVar("T")
#: Extra time given to a blocking call beyond its own device timeout.
THREAD_GRACE_S = 1.0


class ThreadedTransport:
    """Subclasses implement the ``_open``/``_write``/``_read``/``_close`` blocking calls."""

    uri: str = ""
    readable: bool = True

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._open_now = False

    @property
    def connected(self) -> bool:
        return self._open_now

    async def _call(
        self, what: str, fn: Callable[[], T], timeout_s: float, *, written: bool = False
    ) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="printer-io")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s + THREAD_GRACE_S):
                return await loop.run_in_executor(self._executor, fn)
        except TimeoutError:
            self._abandon()
            raise TransportError(f"{what} {self.uri}: timed out", written=written) from None
        except TransportError:
            raise
        except (OSError, ValueError) as exc:
            raise TransportError(f"{what} {self.uri}: {exc}", written=written) from None

    def _abandon(self) -> None:
        """A call overran: leave its thread behind and start afresh on reconnect."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor, self._open_now = None, False

    async def connect(self, timeout_s: float) -> None:
        if self._open_now:
            return
        await self._call("open", lambda: self._open(timeout_s), timeout_s)
        self._open_now = True

    async def write(self, data: bytes, timeout_s: float) -> None:
        self._require_open()
        try:
            await self._call("write", lambda: self._write(data, timeout_s), timeout_s, written=True)
        except TransportError:
            await self.close()
            raise

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        self._require_open()
        if not self.readable:
            return b""
        return await self._call("read", lambda: self._read(max_bytes, timeout_s), timeout_s)

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._open_now:
            self._open_now = False
            try:
                await self._call("close", self._close, THREAD_GRACE_S)
            except TransportError:
                pass  # closing a dead device: nothing more to do
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def _require_open(self) -> None:
        if not self._open_now:
            raise TransportError(f"{self.uri}: not connected")

    # --- blocking side, run in the worker thread ---------------------------------------
    def _open(self, timeout_s: float) -> None:
        raise NotImplementedError

    def _write(self, data: bytes, timeout_s: float) -> None:
        raise NotImplementedError

    def _read(self, max_bytes: int, timeout_s: float) -> bytes:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError
