"""``serial:///dev/ttyUSB0?baud=19200`` (also ``bytesize``, ``parity``, ``stopbits``,
``rtscts``, ``xonxoff``): RS-232 and USB-serial printers through pyserial, in a thread."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from printer_drivers.errors import TransportError
from printer_drivers.transports.base import query_options
from printer_drivers.transports.threaded import ThreadedTransport

DEFAULT_BAUD = 9600


TRUE_VALUES = ("1", "true", "yes", "on")


class SerialTransport(ThreadedTransport):
    def __init__(self, port: str, **settings: Any) -> None:
        super().__init__()
        self.port = port
        self.settings = settings
        self.uri = f"serial://{port}"
        self._serial: Any = None

    @classmethod
    def from_uri(cls, uri: str) -> SerialTransport:
        parts = urlsplit(uri)
        port = unquote(parts.netloc + parts.path)
        if not port:
            raise TransportError(f"expected serial:///dev/ttyX[?baud=N], got {uri!r}")
        opts = query_options(uri)
        try:
            settings: dict[str, Any] = {
                "baudrate": int(opts.get("baud", DEFAULT_BAUD)),
                "bytesize": int(opts.get("bytesize", 8)),
                "parity": opts.get("parity", "N").upper()[:1],
                "stopbits": float(opts.get("stopbits", 1)),
                "rtscts": opts.get("rtscts", "0").lower() in TRUE_VALUES,
                "xonxoff": opts.get("xonxoff", "0").lower() in TRUE_VALUES,
            }
        except ValueError as exc:
            raise TransportError(f"bad serial option in {uri!r}: {exc}") from None
        if settings["stopbits"] == int(settings["stopbits"]):
            settings["stopbits"] = int(settings["stopbits"])
        return cls(port, **settings)

    def _open(self, timeout_s: float) -> None:
        import serial

        try:
            self._serial = serial.serial_for_url(
                self.port, timeout=timeout_s, write_timeout=timeout_s, **self.settings
            )
        except serial.SerialException as exc:
            raise OSError(str(exc)) from None

    def _write(self, data: bytes, timeout_s: float) -> None:
        import serial

        self._serial.write_timeout = timeout_s
        try:
            self._serial.write(data)
            self._serial.flush()
        except serial.SerialException as exc:  # includes SerialTimeoutException
            raise OSError(str(exc)) from None

    def _read(self, max_bytes: int, timeout_s: float) -> bytes:
        import serial

        self._serial.timeout = timeout_s
        try:
            waiting = self._serial.in_waiting
            data: bytes = self._serial.read(min(waiting, max_bytes) if waiting else 1)
            more = min(self._serial.in_waiting, max_bytes - len(data))
            if data and more > 0:  # what else is already there, without waiting for it
                data += self._serial.read(more)
        except serial.SerialException as exc:
            raise OSError(str(exc)) from None
        return data

    def _close(self) -> None:
        serial_port, self._serial = self._serial, None
        if serial_port is not None:
            serial_port.close()
