"""Sort the bytes a printer sends back into the replies we are waiting for. Sans-I/O.

The answers share one byte stream and look alike, so each is recognised by its shape:
DLE EOT replies are one byte ``0xx1xx10``; GS r replies one byte ``0xx0xxxx``; GS ( H
responses the frame ``37 22 d1 d2 d3 d4 00``; ASB blocks start with ``0xx1xx00`` and
run four bytes. Bytes that fit nothing asked for are dropped (and logged).
"""

from __future__ import annotations

import logging

from printer_drivers import commands as cmd
from printer_drivers import status as st

log = logging.getLogger(__name__)


class ReplyInbox:
    def __init__(self) -> None:
        self._buf = bytearray()
        self.asb: bytes | None = None
        """The latest complete ASB block seen, if the printer sends them."""

    def feed(self, data: bytes) -> None:
        self._buf += data

    def clear(self) -> None:
        self._buf.clear()

    def _frame_len(self) -> int | None:
        """Length of a response frame or ASB block at the front, None if not one."""
        if self._buf[:1] == cmd.RESPONSE_HEADER[:1]:
            return cmd.RESPONSE_LENGTH
        if self._buf[0] & st.REALTIME_FIXED_MASK == st.ASB_HEAD_FIXED_VALUE:
            return st.ASB_LENGTH
        return None

    def _pop(self, want: str, response: bytes = b"") -> bytes | None:
        while self._buf:
            size = self._frame_len()
            if size is not None:
                if len(self._buf) < size:
                    return None  # wait for the rest of the frame
                frame = bytes(self._buf[:size])
                del self._buf[:size]
                if want == "response" and frame == response:
                    return frame
                if size == st.ASB_LENGTH and frame[0] != cmd.RESPONSE_HEADER[0]:
                    self.asb = frame
                else:
                    log.debug("dropped response frame %s", frame.hex())
                continue
            byte = self._buf.pop(0)
            if want == "realtime" and st.is_realtime_byte(byte):
                return bytes((byte,))
            if want == "paper_sensor" and st.is_paper_sensor_byte(byte):
                return bytes((byte,))
            log.debug("dropped unexpected status byte %02x", byte)
        return None

    def pop_realtime(self) -> bytes | None:
        """The next DLE EOT reply byte, if one has arrived."""
        return self._pop("realtime")

    def pop_paper_sensor(self) -> bytes | None:
        """The next GS r reply byte, if one has arrived."""
        return self._pop("paper_sensor")

    def pop_response(self, process_id: int) -> bool:
        """True once the GS ( H response for ``process_id`` has arrived."""
        digits = f"{process_id % 10000:04d}".encode("ascii")
        return self._pop("response", cmd.response_reply(digits)) is not None
