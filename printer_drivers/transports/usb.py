"""``usb://VID:PID[?interface=0]`` (hex ids, e.g. ``usb://04b8:0202``): USB printers
through pyusb (the optional ``passline[usb]`` extra), in a thread."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from printer_drivers.errors import TransportError, TransportUnavailableError
from printer_drivers.transports.base import query_options
from printer_drivers.transports.threaded import ThreadedTransport

USB_DIR_IN = 0x80
MS = 1000


class UsbTransport(ThreadedTransport):
    def __init__(self, vendor_id: int, product_id: int, interface: int = 0) -> None:
        super().__init__()
        self.vendor_id, self.product_id, self.interface = vendor_id, product_id, interface
        self.uri = f"usb://{vendor_id:04x}:{product_id:04x}"
        self._device: Any = None
        self._out: Any = None
        self._in: Any = None

    @classmethod
    def from_uri(cls, uri: str) -> UsbTransport:
        vid, _, pid = urlsplit(uri).netloc.partition(":")
        try:
            interface = int(query_options(uri).get("interface", 0))
            return cls(int(vid, 16), int(pid, 16), interface)
        except ValueError:
            raise TransportError(f"expected usb://VID:PID in hex, got {uri!r}") from None

    def _open(self, timeout_s: float) -> None:
        try:
            import usb.core
            import usb.util
        except ImportError:
            raise TransportUnavailableError(
                f"{self.uri}: pyusb is not installed (pip install 'passline[usb]')"
            ) from None
        try:
            device = usb.core.find(idVendor=self.vendor_id, idProduct=self.product_id)
        except usb.core.NoBackendError:
            raise TransportUnavailableError(f"{self.uri}: no libusb backend") from None
        if device is None:
            raise OSError("no such USB device")
        self._claim(device)

    def _claim(self, device: Any) -> None:
        import usb.core
        import usb.util

        try:
            if device.is_kernel_driver_active(self.interface):
                device.detach_kernel_driver(self.interface)
        except (NotImplementedError, usb.core.USBError):
            pass  # not supported on this OS, or nothing attached
        try:
            interface = device.get_active_configuration()[(self.interface, 0)]
            self._out = usb.util.find_descriptor(interface, custom_match=_direction(out=True))
            self._in = usb.util.find_descriptor(interface, custom_match=_direction(out=False))
        except usb.core.USBError as exc:
            raise OSError(str(exc)) from None
        if self._out is None:
            raise OSError("the device has no bulk OUT endpoint")
        self._device = device

    def _write(self, data: bytes, timeout_s: float) -> None:
        import usb.core

        try:
            self._out.write(data, timeout=int(timeout_s * MS))
        except usb.core.USBError as exc:
            raise OSError(str(exc)) from None

    def _read(self, max_bytes: int, timeout_s: float) -> bytes:
        import usb.core

        if self._in is None:
            return b""
        try:
            return bytes(self._in.read(max_bytes, timeout=int(timeout_s * MS)))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise OSError(str(exc)) from None

    def _close(self) -> None:
        import usb.util

        device, self._device = self._device, None
        if device is not None:
            usb.util.dispose_resources(device)


def _direction(*, out: bool) -> Any:
    def match(endpoint: Any) -> bool:
        is_in = bool(endpoint.bEndpointAddress & USB_DIR_IN)
        return is_in != out

    return match
