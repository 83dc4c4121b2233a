"""What holds the event loop (``stall_log_ms``): every store link waits while it is held.

A thread of its own watches a beat the loop gives every few milliseconds. When the loop
has not turned for ``stall_log_ms``, the thread logs the loop thread's stack as it is at
that moment, once per stall, with how long the loop has been held so far; a garbage
collection that held it that long is logged when it ends (a collection never lets the
watching thread run meanwhile). Off by default: the beat costs a timer callback every
``TICK_S``, and the watcher a wake-up as often.

For the p99 of issue 13: the broker's own answer to "what stalled for 100 ms at 500
orders/s", under the real load, without a profiler attached.

When the loop turns again, a second line says how much of the stall the loop thread spent
on a CPU (its own CPU clock) and how much CPU time the host stole from this machine
meanwhile (``/proc/stat``). On CPU for most of it: the logged stack was working (a big
request, a collection). Mostly off CPU: the thread was not running at all — it waited for
the GIL behind another thread, sat in a blocking call, or the host did not schedule it
(a steal figure near the stall's length says which). A stack then shows only where the
thread happened to be, not what held it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TICK_S = 0.005
STACK_DEPTH = 14
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu_clock(thread_id: int) -> int | None:
    """The CPU-time clock of the thread ``thread_id`` (``threading.get_ident()``), or None
    where the platform has none."""
    try:
        return time.pthread_getcpuclockid(thread_id)
    except (AttributeError, OSError):
        return None


def machine_steal_s() -> float | None:
    """CPU time the hypervisor gave to others while this machine's CPUs wanted it, summed
    over its CPUs since boot (``/proc/stat``); None where there is no such figure."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
        return int(fields[8]) / USER_HZ
    except (OSError, IndexError, ValueError):
        return None


@dataclass(slots=True)
class Stall:
    """The stall being reported: its last beat, and the clocks as read just after it."""

    beat: float
    cpu_s: float | None
    steal_s: float | None


class StallWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, threshold_s: float) -> None:
        self.loop = loop
        self.threshold_s = threshold_s
        self.beat = time.monotonic()
        self.loop_thread = threading.get_ident()
        self.stalls = 0
        self._gc_started = 0.0
        self._stop = threading.Event()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Call on the loop's thread."""
        self.loop_thread = threading.get_ident()
        self._beat()
        gc.callbacks.append(self._gc)
        threading.Thread(target=self._watch, name="stall-watch", daemon=True).start()
        log.info("logging event-loop stalls over %.0f ms", self.threshold_s * 1000)

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)

    def _beat(self) -> None:
        self.beat = time.monotonic()
        self._timer = self.loop.call_later(TICK_S, self._beat)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != self.loop_thread:
            return
        if phase == "start":
            self._gc_started = time.monotonic()
            return
        held = time.monotonic() - self._gc_started
        if held >= self.threshold_s:
            self.stalls += 1
            log.warning(
                "event loop held %.0f ms by a generation-%d garbage collection (%d collected)",
                held * 1000,
                info.get("generation", -1),
                info.get("collected", 0),
            )

    def _watch(self) -> None:
        clock = thread_cpu_clock(self.loop_thread)
        last_beat, beat_cpu, beat_steal = self.beat, self._cpu(clock), machine_steal_s()
        stall: Stall | None = None
        while not self._stop.wait(TICK_S):
            beat = self.beat
            if beat != last_beat:  # the loop turned since the last look
                if stall is not None:
                    self._ended(stall, beat, clock)
                    stall = None
                last_beat, beat_cpu, beat_steal = beat, self._cpu(clock), machine_steal_s()
                continue
            held = time.monotonic() - beat
            if held < self.threshold_s or stall is not None:
                continue
            frame = sys._current_frames().get(self.loop_thread)
            if frame is None:
                continue
            self.stalls += 1
            stall = Stall(beat, beat_cpu, beat_steal)
            stack = "".join(traceback.format_stack(frame)[-STACK_DEPTH:])
            log.warning("event loop held %.0f ms so far, at:\n%s", held * 1000, stack)

    def _ended(self, stall: Stall, beat: float, clock: int | None) -> None:
        """The loop turned again after ``stall``: how long it was held, and whether the
        loop thread was running meanwhile."""
        held = max(0.0, beat - stall.beat - TICK_S)  # the next beat was due TICK_S later
        parts = [f"event loop stall ended: held {held * 1000:.0f} ms"]
        cpu = self._cpu(clock)
        if cpu is not None and stall.cpu_s is not None:
            parts.append(f"the loop thread on a CPU for {(cpu - stall.cpu_s) * 1000:.0f} ms of it")
        steal = machine_steal_s()
        if steal is not None and stall.steal_s is not None:
            parts.append(
                f"CPU time stolen by the host meanwhile {(steal - stall.steal_s) * 1000:.0f} ms"
            )
        log.warning("; ".join(parts))

    @staticmethod
    def _cpu(clock: int | None) -> float | None:
        if clock is None:
            return None
        try:
            return time.clock_gettime(clock)
        except OSError:  # the thread is gone
            return None
