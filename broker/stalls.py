"""What holds the event loop (``stall_log_ms``): every store link waits while it is held.

A thread of its own watches a beat the loop gives every few milliseconds. When the loop
has not turned for ``stall_log_ms``, the thread logs the loop thread's stack as it is at
that moment, once per stall, with how long the loop has been held so far; a garbage
collection that held it that long is logged when it ends (a collection never lets the
watching thread run meanwhile). Off by default: the beat costs a timer callback every
``TICK_S``, and the watcher a wake-up as often.

For the p99 of issue 13: the broker's own answer to "what stalled for 100 ms at 500
orders/s", under the real load, without a profiler attached.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from typing import Any

log = logging.getLogger(__name__)

TICK_S = 0.005
STACK_DEPTH = 14


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
        reported = 0.0
        while not self._stop.wait(TICK_S):
            beat = self.beat
            held = time.monotonic() - beat
            if held < self.threshold_s or beat == reported:
                continue
            reported = beat
            frame = sys._current_frames().get(self.loop_thread)
            if frame is None:
                continue
            self.stalls += 1
            stack = "".join(traceback.format_stack(frame)[-STACK_DEPTH:])
            log.warning("event loop held %.0f ms so far, at:\n%s", held * 1000, stack)
