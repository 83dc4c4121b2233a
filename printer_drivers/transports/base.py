"""The one seam between the printer facade and a byte link (STYLE.md rule 4).

A transport only moves bytes; it never interprets them. Every call takes a timeout,
failures raise ``TransportError`` (with ``written`` saying whether bytes may have left),
and a transport that was closed or failed may be ``connect``-ed again.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from printer_drivers.errors import TransportError

DEFAULT_TCP_PORT = 9100
READ_CHUNK = 256


@runtime_checkable
class Transport(Protocol):
    """An async byte link to one printer."""

    uri: str
    readable: bool
    """False for links that cannot carry the printer's answers (``file://``)."""

    @property
    def connected(self) -> bool: ...

    async def connect(self, timeout_s: float) -> None:
        """Open the link (no-op if open); ``TransportError`` when it cannot be opened."""

    async def write(self, data: bytes, timeout_s: float) -> None:
        """Send all of ``data``, waiting until the OS has taken it (drain)."""

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        """Bytes that arrive within ``timeout_s`` (``b""`` if none); error if the link died."""

    async def close(self) -> None:
        """Release the link; safe to call twice."""


def query_options(uri: str) -> dict[str, str]:
    """``?baud=19200&timeout=2`` as a dict of the last value of each key."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(uri).query).items()}


def open_transport(uri: str) -> Transport:
    """The transport for a DESIGN.md §3 URI: tcp://, serial://, usb://, file://, memory://."""
    scheme = urlsplit(uri).scheme
    if scheme == "tcp":
        from printer_drivers.transports.tcp import TcpTransport

        return TcpTransport.from_uri(uri)
    if scheme == "serial":
        from printer_drivers.transports.serial import SerialTransport

        return SerialTransport.from_uri(uri)
    if scheme == "usb":
        from printer_drivers.transports.usb import UsbTransport

        return UsbTransport.from_uri(uri)
    if scheme == "file":
        from printer_drivers.transports.file import FileTransport

        return FileTransport.from_uri(uri)
    raise TransportError(
        f"unsupported transport {uri!r}; expected tcp://, serial://, usb://, file://"
    )
