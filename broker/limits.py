"""Token buckets: ingest per token; websocket handshakes per address, per store and per
token (``admission.Admission``); messages per link (DESIGN.md §7)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 100_000  # buckets kept (least recently used dropped first)


class RateLimiter:
    """``take(key)`` → 0.0 when allowed, else seconds until a token is back."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket (its connection is gone)."""
        self._buckets.pop(key, None)

    def take(self, key: str, cost: float = 1.0) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / self.rate
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        self._drop_full(now)
        return wait

    def _drop_full(self, now: float) -> None:
        """Forget the least recently used buckets that have filled up again: a full bucket
        is what a key without one gets. (A handshake's store and token buckets, kept for
        every idle link, were 0.45 KiB of each: ``bench/link_memory.py``.)"""
        buckets = self._buckets
        while buckets:
            key = next(iter(buckets))
            tokens, last = buckets[key]
            if tokens + (now - last) * self.rate < self.burst:
                return
            del buckets[key]

    def __len__(self) -> int:
        """Buckets held."""
        return len(self._buckets)
