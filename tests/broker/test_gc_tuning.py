"""The broker process tunes its garbage collector once ready (broker/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from broker import gc_tuning
from broker.metrics import Metrics


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks


def test_tune_freezes_what_is_alive_raises_the_young_threshold_and_observes_pauses(
    restore_gc: None,
) -> None:
    histogram = Metrics().gc_pauses
    alive = [[i] for i in range(1000)]  # containers alive at tuning time
    hook = gc_tuning.tune(histogram)
    assert hook is not None and hook in gc.callbacks
    assert gc.get_freeze_count() >= len(alive)
    assert gc.get_threshold()[0] == gc_tuning.GEN0_THRESHOLD
    gc.collect(2)
    gc.collect(0)
    samples = {
        s.labels["generation"]: s.value
        for m in histogram.collect()
        for s in m.samples
        if s.name.endswith("_count")
    }
    assert samples["2"] >= 1 and samples["0"] >= 1


def test_pauses_are_observed_by_generation() -> None:
    histogram = Histogram("h_seconds", "h", ["generation"], registry=CollectorRegistry())
    hook = gc_tuning.GcPauses(histogram)
    hook("start", {"generation": 1})
    hook("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    (metric,) = histogram.collect()
    counts = [s for s in metric.samples if s.name == "h_seconds_count"]
    assert [(s.labels["generation"], s.value) for s in counts] == [("1", 1.0)]
