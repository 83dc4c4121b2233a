"""``tcp://host:port`` (port 9100 by default): raw ESC/POS over a LAN socket."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from printer_drivers.errors import TransportError, map_os_errors
from printer_drivers.transports.base import DEFAULT_TCP_PORT

CLOSE_TIMEOUT_S = 2.0


class TcpTransport:
    """One TCP session to one printer; reconnects on the next ``connect`` after a failure."""

    readable = True

    def __init__(self, host: str, port: int = DEFAULT_TCP_PORT) -> None:
        self.host, self.port = host, port
        self.uri = f"tcp://{host}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def from_uri(cls, uri: str) -> TcpTransport:
        parts = urlsplit(uri)
        if not parts.hostname:
            raise TransportError(f"expected tcp://host[:port], got {uri!r}")
        try:
            port = parts.port or DEFAULT_TCP_PORT
        except ValueError:
            raise TransportError(f"bad port in {uri!r}") from None
        return cls(parts.hostname, port)

    @property
    def connected(self) -> bool:
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            return False
        return not (writer.is_closing() or reader.at_eof())

    async def connect(self, timeout_s: float) -> None:
        if self.connected:
            return
        await self.close()
        with map_os_errors(f"connect {self.uri}"):
            async with asyncio.timeout(timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            raise TransportError(f"{self.uri}: not connected")
        return self._reader, self._writer

    async def write(self, data: bytes, timeout_s: float) -> None:
        _, writer = self._streams()
        try:
            with map_os_errors(f"write {self.uri}", written=True):
                writer.write(data)
                async with asyncio.timeout(timeout_s):
                    await writer.drain()
        except TransportError:
            await self.close()
            raise

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        reader, _ = self._streams()
        try:
            async with asyncio.timeout(timeout_s):
                data = await reader.read(max_bytes)
        except TimeoutError:
            return b""
        except OSError as exc:
            await self.close()
            raise TransportError(f"read {self.uri}: {exc.strerror or exc}") from None
        if not data:
            await self.close()
            raise TransportError(f"{self.uri}: the printer closed the connection")
        return data

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await writer.wait_closed()
