"""The one exception tree of ``printer_drivers``.

``TransportError`` means the printer or the link misbehaved (refused, timed out, closed):
the ``Printer`` facade turns it into an outcome or a status and never lets it reach its
caller. ``StatusReplyError`` means a status byte failed validation. ``RenderError`` and
``UnsupportedEncodingError`` mean the caller asked for something we cannot do (a bug or a
bad config), and they do propagate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PrinterDriverError(Exception):
    """Root of every error raised by ``printer_drivers``."""


class TransportError(PrinterDriverError):
    """The link to a printer failed: connect refused, timeout, connection lost.

    ``written`` says whether some bytes of the current write may have reached the printer.
    """

    def __init__(self, message: str, *, written: bool = False) -> None:
        super().__init__(message)
        self.written = written


class TransportUnavailableError(TransportError):
    """The transport cannot work here at all (missing optional dependency, no device)."""


class StatusReplyError(PrinterDriverError, ValueError):
    """A status reply that does not have the shape the ESC/POS manual gives it."""


class RenderError(PrinterDriverError, ValueError):
    """A document or profile the renderer cannot turn into bytes."""


class UnsupportedEncodingError(RenderError):
    """The configured encoding is not one the printer profile can print."""


@contextmanager
def map_os_errors(what: str, *, written: bool = False) -> Iterator[None]:
    """Translate ``OSError`` and timeouts at a transport boundary (after httpcore)."""
    try:
        yield
    except TimeoutError:
        raise TransportError(f"{what}: timed out", written=written) from None
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise TransportError(f"{what}: {detail}", written=written) from None
