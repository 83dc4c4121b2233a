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

That still left the full collections. Each link holds ~250 tracked objects, so at 10,000
links a full collection walks ~2.5 million and holds the loop 0.73–0.95 s (measured as the
links closed: ``bench/broker_load.py --clients 10000`` with a GC probe, 2026-11-30).
CPython starts one after ten generation-1 collections once the objects promoted since the
last reach a quarter of the oldest generation: with the young threshold raised that is
rare (none in a 300 s run at 200 orders/s), but each is a pause of most of a second. So
``FreezeSurvivors`` also freezes what survives each full collection: the next one walks
only what was promoted since. What is frozen and later becomes cyclic garbage (some of a
closed link's objects) is not collected while frozen; once the frozen heap has grown by
``WHOLE_AFTER_GROWTH`` since the last collection that walked it all, the next full
collection unfreezes first and walks everything, then freezes again. With the links
steady, that happens only as links come and go: a quarter more frozen objects is the most
garbage left waiting.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

GEN0_THRESHOLD = 20_000
WHOLE_AFTER_GROWTH = 0.25
"""A full collection walks the frozen heap too once it has grown by this fraction."""
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


class FreezeSurvivors:
    """A ``gc.callbacks`` hook: what survives a full collection is frozen, and a full
    collection walks the frozen heap too once it has grown by ``WHOLE_AFTER_GROWTH``.
    (Freezing and unfreezing move list heads: they cost nothing. A callback may run on
    any thread that allocates; the GIL is held.)"""

    def __init__(self) -> None:
        self.walked = gc.get_freeze_count()
        """The frozen heap after the last collection that walked all of it."""
        self._whole = False
        self.whole_collections = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            # unfrozen objects join the oldest generation: this collection walks them
            if gc.get_freeze_count() > self.walked * (1 + WHOLE_AFTER_GROWTH):
                gc.unfreeze()
                self._whole = True
            return
        gc.freeze()
        if self._whole:
            self._whole = False
            self.walked = gc.get_freeze_count()
            self.whole_collections += 1


def tune(histogram: Histogram | None = None) -> GcPauses | None:
    """Collect once, freeze what survives, raise the young threshold, freeze what survives
    each full collection (``FreezeSurvivors``); observe pauses into ``histogram`` (labelled
    by generation). Call once the process is ready to serve."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
    gc.callbacks.append(FreezeSurvivors())
    if histogram is None:
        return None
    hook = GcPauses(histogram)
    gc.callbacks.append(hook)
    return hook
