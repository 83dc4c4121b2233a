"""``file:///dev/usb/lp0`` (or any path): write-only, so status is ``source: none`` and a
job can at best be ``uncertain`` — never "printed" without an answer."""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import unquote, urlsplit

from printer_drivers.errors import TransportError
from printer_drivers.transports.threaded import ThreadedTransport


class FileTransport(ThreadedTransport):
    readable = False

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.uri = f"file://{path}"
        self._file: IO[bytes] | None = None

    @classmethod
    def from_uri(cls, uri: str) -> FileTransport:
        parts = urlsplit(uri)
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise TransportError(f"expected file:///path, got {uri!r}")
        return cls(path)

    def _open(self, timeout_s: float) -> None:
        self._file = open(self.path, "ab", buffering=0)

    def _write(self, data: bytes, timeout_s: float) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()

    def _read(self, max_bytes: int, timeout_s: float) -> bytes:
        return b""

    def _close(self) -> None:
        file: Any = self._file
        self._file = None
        if file is not None:
            file.close()
