"""Sort the bytes a printer sends back into the replies we are waiting for. Sans-I/O.

The answers share one byte stream and look alike, so each is recognised by its shape:
DLE EOT replies are one byte ``0xx1xx10``; GS r replies one byte ``0xx0xxxx``; GS ( H
responses the frame ``37 22 d1 d2 d3 d4 00``; ASB blocks start with ``0xx1xx00`` and
run four bytes. Bytes that fit nothing asked for are dropped (and logged).

Whatever a printer (or something posing as one) sends, the inbox keeps at most
``MAX_PENDING_BYTES`` (the newest: an answer comes after what it answers) and looks at
each byte once per pop, so a stream of junk costs time in proportion to its length.
"""

from __future__ import annotations

import logging

from printer_drivers import commands as cmd
from printer_drivers import status as st

log = logging.getLogger(__name__)

#: Far more than any answer we wait for (7 bytes at most); a status poll reads 4 KiB.
MAX_PENDING_BYTES = 64 * 1024


class ReplyInbox:
    def __init__(self) -> None:
        self._buf = bytearray()
        self.asb: bytes | None = None
        """The latest complete ASB block seen, if the printer sends them."""

    def feed(self, data: bytes) -> None:
        self._buf += data
        excess = len(self._buf) - MAX_PENDING_BYTES
        if excess > 0:
            log.debug("dropped %d unasked-for bytes", excess)
            del self._buf[:excess]

    def clear(self) -> None:
        self._buf.clear()

    @staticmethod
    def _frame_len(first: int) -> int | None:
        """Length of a response frame or ASB block starting with ``first``, else None."""
        if first == cmd.RESPONSE_HEADER[0]:
            return cmd.RESPONSE_LENGTH
        if first & st.REALTIME_FIXED_MASK == st.ASB_HEAD_FIXED_VALUE:
            return st.ASB_LENGTH
        return None

    def _pop(self, want: str, response: bytes = b"") -> bytes | None:
        buf, i, found = self._buf, 0, None
        while i < len(buf) and found is None:
            size = self._frame_len(buf[i])
            if size is not None:
                if len(buf) - i < size:
                    break  # wait for the rest of the frame
                frame = bytes(buf[i : i + size])
                i += size
                if want == "response" and frame == response:
                    found = frame
                elif size == st.ASB_LENGTH and frame[0] != cmd.RESPONSE_HEADER[0]:
                    self.asb = frame
                else:
                    log.debug("dropped response frame %s", frame.hex())
                continue
            byte = buf[i]
            i += 1
            if (want == "realtime" and st.is_realtime_byte(byte)) or (
                want == "paper_sensor" and st.is_paper_sensor_byte(byte)
            ):
                found = bytes((byte,))
            else:
                log.debug("dropped unexpected status byte %02x", byte)
        del buf[:i]  # once: popping byte by byte from the front was quadratic
        return found

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
