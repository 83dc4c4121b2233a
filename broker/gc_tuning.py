"""The cyclic garbage collector's pauses: the broker's p99 stalls at light load (issue 13).

With a thousand store links open, a full (generation 2) collection walks every container
object the process holds — the imported modules, FastAPI's and pydantic's schemas, each
link's websockets state — and held the event loop 110–170 ms every two seconds at
400 orders/s while finding nothing to free (``bench/compare.py`` with a GC probe, 2026-11-29).
Every link waited meanwhile: that was the 150–300 ms p99 of a broker that was mostly
idle. So the broker process, once it is ready:

- freezes what is alive then (``gc.freeze``): imports and application setup live as long
  as the process and are never walked again;
- raises the youngest generation's threshold (700 → ``GEN0_THRESHOLD`` allocations): an
  order allocates hundreds of short-lived containers, and with the default most of them
  were promoted — and later walked by full collections — before they died.

Cycles are still collected, only less often; ``passline_gc_pause_seconds`` shows every
pause by generation, so an operator sees whether the collector stalls the loop.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

GEN0_THRESHOLD = 20_000
PAUSE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class GcPauses:
    """A ``gc.callbacks`` hook that observes each collection's pause."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.histogram.labels(str(info["generation"])).observe(pause)


def tune(histogram: Histogram | None = None) -> GcPauses | None:
    """Collect once, freeze what survives, raise the young threshold; observe pauses into
    ``histogram`` (labelled by generation). Call once the process is ready to serve."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
    if histogram is None:
        return None
    hook = GcPauses(histogram)
    gc.callbacks.append(hook)
    return hook
