"""The emulated printer's condition, and the status bytes it answers with.

The inverse of ``printer_drivers.status``: the bit layouts are those of the Epson
ESC/POS reference for DLE EOT 1-4, GS r 1/2 and ASB (see that module's docstring).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from printer_drivers import status as st
from protocol.status import Paper

ERROR_FLAGS = ("cutter_error", "mechanical_error", "unrecoverable_error", "auto_recoverable_error")


@dataclass
class FaultState:
    """What ``POST /state`` sets. Every field defaults to a healthy printer."""

    paper: Paper = Paper.OK
    cover_open: bool = False
    cutter_error: bool = False
    mechanical_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False
    offline: bool = False
    """Offline for any other reason (offline button, waiting for recovery)."""
    hang: bool = False
    """Firmware wedged: bytes are accepted, nothing is printed or answered."""
    unreachable: bool = False
    """Sessions are dropped and new connections closed at once."""
    drawer_open: bool = False
    feed_button: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (all or nothing); ``ValueError`` names the bad field."""
        if changes.get("reset"):
            changes = {f.name: f.default for f in fields(self)} | {
                k: v for k, v in changes.items() if k != "reset"
            }
        staged = asdict(self)
        known = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown field {key!r}; expected one of {sorted(known)}")
            if key == "paper":
                try:
                    staged[key] = Paper(value)
                except ValueError:
                    raise ValueError(
                        f"paper: expected ok, near_end or out, got {value!r}"
                    ) from None
            elif not isinstance(value, bool):
                raise ValueError(f"{key}: expected true or false, got {value!r}")
            else:
                staged[key] = value
        for key, value in staged.items():
            setattr(self, key, value)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["paper"] = self.paper.value
        data["can_print"] = self.can_print
        return data

    @property
    def error(self) -> bool:
        return any(getattr(self, f) for f in ERROR_FLAGS)

    @property
    def can_print(self) -> bool:
        """A printer with no paper, an open cover or an error stops and buffers."""
        stopped = self.paper is Paper.OUT or self.cover_open or self.error
        return not (stopped or self.offline or self.hang)

    @property
    def online(self) -> bool:
        return not (self.paper is Paper.OUT or self.cover_open or self.error or self.offline)

    def realtime_reply(self, n: int) -> bytes:
        """The one byte answering DLE EOT ``n``."""
        byte = st.REALTIME_FIXED_VALUE
        if n == 1:
            byte |= st.BIT_DRAWER if self.drawer_open else 0
            byte |= 0 if self.online else st.BIT_OFFLINE
            byte |= st.BIT_FEED_BUTTON if self.feed_button else 0
        elif n == 2:
            byte |= st.BIT_COVER_OPEN if self.cover_open else 0
            byte |= st.BIT_FEEDING if self.feed_button else 0
            byte |= st.BIT_STOPPED_PAPER_END if self.paper is Paper.OUT else 0
            byte |= st.BIT_ERROR if self.error else 0
        elif n == 3:
            byte |= self._error_bits()
        elif n == 4:
            byte |= st.BITS_NEAR_END if self.paper is not Paper.OK else 0
            byte |= st.BITS_PAPER_END if self.paper is Paper.OUT else 0
        return bytes((byte,))

    def _error_bits(self) -> int:
        return (
            (st.BIT_MECHANICAL if self.mechanical_error else 0)
            | (st.BIT_CUTTER if self.cutter_error else 0)
            | (st.BIT_UNRECOVERABLE if self.unrecoverable_error else 0)
            | (st.BIT_AUTO_RECOVERABLE if self.auto_recoverable_error else 0)
        )

    def paper_sensor_byte(self) -> int:
        byte = st.BITS_SENSOR_NEAR_END if self.paper is not Paper.OK else 0
        return byte | (st.BITS_SENSOR_PAPER_END if self.paper is Paper.OUT else 0)

    def asb_block(self) -> bytes:
        """The four bytes of an automatic status back."""
        first = st.ASB_HEAD_FIXED_VALUE
        first |= st.BIT_DRAWER if self.drawer_open else 0
        first |= 0 if self.online else st.BIT_OFFLINE
        first |= st.BIT_ASB_COVER if self.cover_open else 0
        first |= st.BIT_ASB_FEED_BUTTON if self.feed_button else 0
        second = self._error_bits() | (st.BIT_ASB_WAITING_RECOVERY if self.offline else 0)
        return bytes((first, second, self.paper_sensor_byte(), 0))
