"""Async byte links to printers: tcp://, serial://, usb://, file://, and in-memory."""

from printer_drivers.transports.base import Transport, open_transport

__all__ = ["Transport", "open_transport"]
