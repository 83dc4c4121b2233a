"""The broker's time as seen from a cashier PC whose own clock may be wrong.

Job expiry compares the broker's ``expires_at`` with "now", so "now" must be the broker's
clock: a PC 30 minutes fast would otherwise expire every job on arrival, and one that is
slow would print stale tickets. Every ``welcome`` carries the broker's clock (``now``);
the client measures ``offset_s = broker time - local time`` there, keeps it in the spool
(an offline restart goes on with the last measurement) and reads the time as local time
plus that offset. The measurement is late by the welcome's one-way trip (milliseconds),
which is nothing next to a job's TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

LocalClock = Callable[[], datetime]
#: An offset beyond this is logged and shown on the local status page (DESIGN.md §4:
#: expiry depends on it); below it, ordinary NTP-less drift is not worth a word.
SKEW_WARN_S = 60.0


class Clock(Protocol):
    """The seam: what workers and the spool read the time from."""

    def now(self) -> datetime: ...


def system_clock() -> datetime:
    return datetime.now(UTC)


def shifted(clock: LocalClock, skew_s: float) -> LocalClock:
    """``clock`` running ``skew_s`` seconds ahead (negative: behind): a PC with a wrong
    clock, for tests and for ``PASSLINE_CLOCK_SKEW_S``."""
    if not skew_s:
        return clock
    delta = timedelta(seconds=skew_s)
    return lambda: clock() + delta


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One measurement: broker time minus local time, and (broker) when it was taken."""

    offset_s: float
    measured_at: datetime
    mono: float | None = None
    """``time.monotonic()`` when it was taken: the system's clock since boot, shared by
    every process and untouched when someone sets the wall clock."""
    boot: str | None = None
    """The boot it was taken in (``mono`` means nothing in another one)."""

    def broker_now(self, boot: str | None, mono: float) -> datetime | None:
        """The broker's time now, from this reading alone: exact within the same boot
        however the PC's wall clock has been set since; None in another boot."""
        if self.mono is None or self.boot is None or self.boot != boot:
            return None
        return self.measured_at + timedelta(seconds=mono - self.mono)


#: Before expiry can be trusted: a time every ``expires_at`` is later than.
NEVER = datetime.min.replace(tzinfo=UTC)


def boot_id() -> str | None:
    """This boot's id (Linux); None where it cannot be told."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


@dataclass
class SkewedClock:
    """Local time corrected by the last measured offset to the broker's clock."""

    local: LocalClock = system_clock
    reading: ClockReading | None = None
    verified: bool = False
    """The offset was measured by this process (not restored from an earlier run)."""
    mono: Callable[[], float] = time.monotonic
    boot: str | None = field(default_factory=boot_id)

    @property
    def offset_s(self) -> float:
        return self.reading.offset_s if self.reading else 0.0

    @property
    def skewed(self) -> bool:
        return abs(self.offset_s) > SKEW_WARN_S

    def local_now(self) -> datetime:
        """This PC's own clock (for ``Hello.clock``), uncorrected."""
        return self.local()

    def now(self) -> datetime:
        """The broker's time, as well as this PC can tell: the last reading plus the time
        since by the monotonic clock (so setting the wall clock changes nothing), else
        local time plus the last offset."""
        if self.reading is not None:
            anchored = self.reading.broker_now(self.boot, self.mono())
            if anchored is not None:
                return anchored
        return self.local() + timedelta(seconds=self.offset_s)

    def expiry_now(self) -> datetime:
        """The time job expiry goes by. A reading from this boot holds however the wall
        clock has been set since (found by the fault run: a PC restarted with its clock
        hours ahead expired every held job). After a reboot, with no reading yet, the wall
        clock may be anything (a dead CMOS battery): nothing expires until the broker has
        been heard — printing a stale ticket beats dropping a fresh one."""
        if self.verified:
            return self.now()
        if self.reading is not None and self.reading.broker_now(self.boot, self.mono()):
            return self.now()
        return NEVER

    def observe(self, broker_now: datetime, local_now: datetime | None = None) -> ClockReading:
        """A welcome said the broker's clock reads ``broker_now`` (here at ``local_now``)."""
        local_now = local_now or self.local()
        offset = (broker_now - local_now).total_seconds()
        self.reading = ClockReading(offset, broker_now, self.mono(), self.boot)
        self.verified = True
        return self.reading

    def restore(self, reading: ClockReading | None) -> None:
        """Go on with a measurement kept from an earlier run."""
        self.reading = reading

    def describe(self) -> str:
        """``this PC's clock is 2h 0m ahead of the broker`` (or ``in step with``)."""
        ahead = -self.offset_s  # broker - local < 0: local runs ahead
        if abs(ahead) < 1:
            return "this PC's clock is in step with the broker"
        minutes = round(abs(ahead) / 60)
        size = f"{minutes // 60}h {minutes % 60}m" if minutes else f"{abs(ahead):.0f}s"
        side = "ahead of" if ahead > 0 else "behind"
        return f"this PC's clock is {size} {side} the broker"
