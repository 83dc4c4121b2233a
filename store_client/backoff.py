"""Reconnect delays: exponential with full jitter (AWS architecture blog's variant)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """Delay before the next attempt; grows until ``reset``."""
        ceiling = min(self.cap_s, self.base_s * 2**self.attempts)
        self.attempts = min(self.attempts + 1, 30)
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempts = 0
